"""Newer price data without a release: snapshots from a file and from a URL (a real HTTP server on
127.0.0.1), a bad snapshot refused with the book in force kept, prices shown at a moment, the refresher."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest
from clickhouse_connect.driver.client import Client
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from tests.fixtures.api import api_client, api_settings, make_key
from tests.fixtures.clickhouse import priced_store, store_environment
from tests.fixtures.snapshots import NEW_MODEL, Served, installed_raw, served, with_model
from usagemeter.api.app import create_app
from usagemeter.cli.app import app
from usagemeter.consumers.settings import ClickHouseSettings
from usagemeter.pricing import price_updates, pricebook
from usagemeter.query.prices import unit_prices
from usagemeter.schemas.errors import SnapshotRejected

pytestmark = pytest.mark.clickhouse
__all__ = ["served"]

JSON = {"content-type": "application/json"}
PRICE_CHANGE = [
    {"prices": {"input_mtok": "2", "output_mtok": "8"}},
    {"constraint": {"start_date": "2026-06-01"}, "prices": {"input_mtok": "1.5", "output_mtok": "6"}},
]


@pytest.fixture
def book(clickhouse: Client) -> Client:
    pricebook.load(clickhouse)
    return clickhouse


@pytest.fixture(scope="module")
def kept_book(store_dsn: str) -> Iterator[Client]:
    """One book for the refused-snapshot cases: each asserts it is still version 1 after its refusal, so a
    case that wrongly loaded its snapshot fails itself (and every case after it)."""
    with priced_store(store_dsn) as client:
        yield client


def _version(client: Client) -> int:
    return int(client.query("SELECT max(book_version) FROM model_alias_source").result_rows[0][0])


def test_the_installed_data_round_trips_through_its_json() -> None:
    again = price_updates.read_snapshot(price_updates.snapshot_json(price_updates.read_snapshot(with_model({}))))
    assert price_updates.snapshot_json(again) == with_model({})


def test_update_from_a_file_then_show_at_two_moments(
    book: Client, clickhouse_settings: ClickHouseSettings, tmp_path: Path
) -> None:
    assert not unit_prices(book, NEW_MODEL, provider="openai").priced
    snapshot = tmp_path / "data.json"
    snapshot.write_bytes(with_model(PRICE_CHANGE))
    env = store_environment(clickhouse_settings)

    result = CliRunner().invoke(app, ["prices", "update", "--file", str(snapshot), "--direct"], env=env)
    assert result.exit_code == 0, result.output
    assert "price book v2 in force" in result.output

    before = unit_prices(book, NEW_MODEL, provider="openai", at=datetime(2026, 5, 31, 23, 59, 59, tzinfo=UTC))
    after = unit_prices(book, NEW_MODEL, provider="openai", at=datetime(2026, 6, 1, tzinfo=UTC))
    assert (before.prices["input_mtok"], before.prices["output_mtok"]) == (Decimal(2), Decimal(8))
    assert (after.prices["input_mtok"], after.prices["output_mtok"]) == (Decimal("1.5"), Decimal(6))
    assert (after.provider, after.model, after.book_version) == ("openai", NEW_MODEL, 2)

    shown = CliRunner().invoke(
        app, ["prices", "show", NEW_MODEL, "--provider", "openai", "--at", "2026-05-01", "--json", "--direct"], env=env
    )
    assert shown.exit_code == 0, shown.output
    assert json.loads(shown.output)["prices"]["input_mtok"] == "2.000000000000000000"


def test_update_from_a_url(book: Client, served: Served) -> None:
    url = served.put("data.json", with_model({"input_mtok": "3", "output_mtok": "9"}))
    stats = price_updates.apply(book, price_updates.read_url(url))
    assert stats.book_version == 2
    assert unit_prices(book, NEW_MODEL, provider="openai").prices["output_mtok"] == Decimal(9)


BAD_SNAPSHOTS = [
    pytest.param(b"{not json", "is not JSON", id="not JSON"),
    pytest.param(b'{"providers": []}', "non-empty JSON array of providers", id="an object, not the array"),
    pytest.param(b"[]", "non-empty JSON array of providers", id="empty"),
    pytest.param(b"[" * 100_000 + b"]" * 100_000, "nested too deeply", id="nested too deeply"),
    pytest.param(with_model({"input_mtok": "lots"}), "not valid genai-prices data", id="a price that is no number"),
    pytest.param(
        json.dumps([{**installed_raw()[0], "models": [{"id": "x"}]}]).encode(),
        "not valid genai-prices data",
        id="a model without match",
    ),
]


@pytest.mark.parametrize(("content", "message"), BAD_SNAPSHOTS)
def test_a_bad_snapshot_is_refused_and_the_book_stays(kept_book: Client, content: bytes, message: str) -> None:
    with pytest.raises(SnapshotRejected, match=message):
        price_updates.read_snapshot(content)
    api = _admin_api(kept_book)
    answer = api.post("/v1/prices/snapshot", content=content, headers=JSON)
    assert answer.status_code == 422
    assert message in answer.json()["detail"]
    assert _version(kept_book) == 1
    assert unit_prices(kept_book, "gpt-4o-mini", provider="openai").priced


def test_the_cli_refuses_a_bad_file_with_its_name(
    book: Client, clickhouse_settings: ClickHouseSettings, tmp_path: Path
) -> None:
    bad = tmp_path / "broken.json"
    bad.write_bytes(b"[1, 2]")
    result = CliRunner().invoke(
        app, ["prices", "update", "--file", str(bad), "--direct"], env=store_environment(clickhouse_settings)
    )
    assert result.exit_code == 2
    assert "broken.json is not valid genai-prices data" in " ".join(result.output.split())
    assert _version(book) == 1


def _admin_api(book: Client) -> TestClient:
    return api_client(create_app(lambda: book, settings=api_settings()), make_key(book, admin=True))


def test_the_api_shows_and_loads(book: Client) -> None:
    server = create_app(lambda: book, settings=api_settings())
    api, as_client = (api_client(server, make_key(book, **scope)) for scope in ({"admin": True}, {"clients": ["acme"]}))
    snapshot = with_model({"input_mtok": "4"})
    assert as_client.post("/v1/prices/snapshot", content=snapshot, headers=JSON).status_code == 403
    assert api.post("/v1/prices/snapshot", content=snapshot).status_code == 415
    loaded = api.post("/v1/prices/snapshot", content=snapshot, headers=JSON)
    assert loaded.status_code == 200, loaded.text
    assert loaded.json()["book_version"] == 2
    shown = as_client.get("/v1/prices", params={"model": NEW_MODEL, "provider": "openai"}).json()
    assert (shown["priced"], shown["prices"]["input_mtok"]) == (True, "4.000000000000000000")


def test_the_refresher_loads_good_snapshots_and_keeps_the_book_on_bad_ones(book: Client, served: Served) -> None:
    url = served.put("data.json", b"[]")
    refresher = price_updates.PriceRefresher(book, url, interval_s=3600)
    refresher.refresh_once()
    assert (refresher.loaded, refresher.failed, _version(book)) == (0, 1, 1)
    served.put("data.json", with_model({"input_mtok": "5"}))
    refresher.refresh_once()
    assert (refresher.loaded, refresher.failed, _version(book)) == (1, 1, 2)
    assert price_updates.start_refresher(book, None, 3600) is None, "no URL configured: nothing fetches"
