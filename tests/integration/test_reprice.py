"""Repricing on the real engine: unknown models priced once a price exists, corrected prices for a past
period, idempotence, a crash half-way, and the CLI through a running API (as with an embedded store).

"A fresh pricing" is the same events staged into another database that had the new book from the start:
events and aggregates after a reprice must equal it to the Decimal.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import httpx
import pytest
from clickhouse_connect.driver.client import Client
from typer.testing import CliRunner

from tests.fixtures.api import api_settings, make_key, running_api
from tests.fixtures.snapshots import NEW_MODEL, with_model
from tests.fixtures.staging import event, stage
from usagemeter.api.app import create_app
from usagemeter.cli.app import app
from usagemeter.consumers.settings import ClickHouseSettings
from usagemeter.consumers.store import connect
from usagemeter.pricing import price_updates, pricebook, reprice

pytestmark = pytest.mark.clickhouse

NOW = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
SINCE = NOW - timedelta(days=10)
PRICE = {"input_mtok": "1.25", "cache_read_mtok": "0.125", "output_mtok": "5"}
CORRECTED = {"input_mtok": "1", "cache_read_mtok": "0.1", "output_mtok": "4.5"}

_EVENT_COLUMNS = (
    "toString(event_id), provider, model, price_status, cost_source, cost_input, cost_cache_read, cost_output, "
    "cost_reasoning, cost_total"
)
_AGGREGATES = """
SELECT client_id, bucket, user_id, provider, model, sum(events), sum(requests), sum(unpriced), sum(input_tokens),
       sum(output_tokens), sum(cost_input), sum(cost_cache_read), sum(cost_output), sum(cost_total)
FROM {table:Identifier}
GROUP BY client_id, bucket, user_id, provider, model
HAVING sum(events) != 0 OR sum(cost_total) != 0
ORDER BY ALL
"""
_LABEL_AGGREGATES = """
SELECT client_id, bucket, label_key, label_value, provider, model, sum(events), sum(requests), sum(unpriced),
       sum(input_tokens), sum(output_tokens), sum(cost_total)
FROM usage_15m_by_label
GROUP BY ALL
HAVING sum(events) != 0 OR sum(cost_total) != 0
ORDER BY ALL
"""


def _events() -> list[dict[str, Any]]:
    """The new model over ten days (two clients, three users), and gpt-4o-mini calls that must not move."""
    rows = []
    for hours in range(1, 240, 7):
        at = NOW - timedelta(hours=hours, minutes=hours % 15)
        fields: dict[str, Any] = {
            "input_tokens": 1000 + hours,
            "cache_read_tokens": hours,
            "output_tokens": 3 * hours,
            "requests": 1,
            "user_id": f"u{hours % 3}",
            "labels": {"team": f"t{hours % 2}", "env": "prod"} if hours % 5 else {},
        }
        client_id = ("acme", "globex")[hours % 2]
        rows.append(event("openai", NEW_MODEL, at, client_id=client_id, **fields))
        rows.append(event("openai", "gpt-4o-mini", at, client_id=client_id, **fields))
    return rows


def _load(client: Client, prices: dict[str, str] | None) -> None:
    """The installed book, or the installed data plus NEW_MODEL at ``prices``."""
    if prices is None:
        pricebook.load(client)
    else:
        price_updates.apply(client, price_updates.read_snapshot(with_model(prices)))


def _fresh(
    factory: Callable[[], ClickHouseSettings], prices: dict[str, str], events: Sequence[dict[str, Any]]
) -> Client:
    client = connect(factory())
    _load(client, prices)
    stage(client, events)
    return client


def _priced_events(client: Client, table: str) -> list[tuple[Any, ...]]:
    query = f"SELECT {_EVENT_COLUMNS} FROM {{table:Identifier}} ORDER BY 1"
    return [tuple(row) for row in client.query(query, parameters={"table": table}).result_rows]


def _aggregates(client: Client, table: str) -> list[tuple[Any, ...]]:
    if table == "usage_15m_by_label":
        return [tuple(row) for row in client.query(_LABEL_AGGREGATES).result_rows]
    return [tuple(row) for row in client.query(_AGGREGATES, parameters={"table": table}).result_rows]


def _unknown(client: Client) -> dict[tuple[str, str], int]:
    rows = client.query(
        "SELECT provider_raw, model_raw, sum(events) FROM unknown_models GROUP BY ALL HAVING sum(events) > 0"
    ).result_rows
    return {(p, m): int(n) for p, m, n in rows}


@pytest.fixture
def staged(clickhouse: Client) -> tuple[Client, list[dict[str, Any]]]:
    _load(clickhouse, None)
    events = _events()
    stage(clickhouse, events)
    return clickhouse, events


def test_unknown_model_priced_once_a_price_exists(
    staged: tuple[Client, list[dict[str, Any]]], clickhouse_factory: Callable[[], ClickHouseSettings]
) -> None:
    client, events = staged
    unknown = [row for row in _priced_events(client, "usage_events") if row[2] == NEW_MODEL]
    assert {(row[3], row[4], row[-1]) for row in unknown} == {("unknown_model", "unpriced", 0)}
    assert _unknown(client) == {("openai", NEW_MODEL): len(events) // 2}
    unpriced = client.query("SELECT sum(unpriced) FROM usage_15m_by_model").result_rows[0][0]
    assert unpriced == len(events) // 2

    assert reprice.reprice(client, reprice.Selection(since=SINCE)).events_repriced == 0, "no price yet"

    _load(client, PRICE)
    dry = reprice.reprice(client, reprice.Selection(since=SINCE), dry_run=True)
    assert (dry.events_repriced, dry.chunks_written) == (len(events) // 2, 0)
    assert client.query("SELECT count() FROM cost_adjustments").result_rows[0][0] == 0
    result = reprice.reprice(client, reprice.Selection(since=SINCE))
    assert (result.events_repriced, result.unknown_now_priced) == (len(events) // 2, len(events) // 2)
    assert result.cost_delta > 0

    fresh = _fresh(clickhouse_factory, PRICE, events)
    assert _priced_events(client, "usage_events_current") == _priced_events(fresh, "usage_events")
    for table in ("usage_15m_by_user", "usage_15m_by_model", "usage_15m_by_label"):
        assert _aggregates(client, table) == _aggregates(fresh, table)
    assert _unknown(client) == {}

    again = reprice.reprice(client, reprice.Selection(since=SINCE))
    assert (again.events_repriced, again.chunks_written, again.cost_delta) == (0, 0, Decimal(0))
    assert _aggregates(client, "usage_15m_by_model") == _aggregates(fresh, "usage_15m_by_model")


def test_corrected_price_for_a_past_period_moves_only_that_period(
    staged: tuple[Client, list[dict[str, Any]]], clickhouse_factory: Callable[[], ClickHouseSettings]
) -> None:
    client, events = staged
    _load(client, PRICE)
    reprice.reprice(client, reprice.Selection(since=SINCE))
    before = _aggregates(client, "usage_15m_by_user")

    start, end = NOW - timedelta(days=6), NOW - timedelta(days=3)
    _load(client, CORRECTED)
    result = reprice.reprice(client, reprice.Selection(since=start, until=end, client_id="acme", model=NEW_MODEL))
    after = _aggregates(client, "usage_15m_by_user")

    def inside(row: tuple[Any, ...]) -> bool:
        bucket: datetime = row[1].replace(tzinfo=UTC)
        return bool(row[0] == "acme" and row[4] == NEW_MODEL and start <= bucket < end)

    corrected = _aggregates(_fresh(clickhouse_factory, CORRECTED, events), "usage_15m_by_user")
    assert [row for row in after if inside(row)] == [row for row in corrected if inside(row)]
    assert [row for row in after if not inside(row)] == [row for row in before if not inside(row)]
    moved = sum(row[-1] for row in after) - sum(row[-1] for row in before)
    assert moved == result.cost_delta < 0
    assert result.events_repriced == sum(
        1 for e in events if e["model"] == NEW_MODEL and e["client_id"] == "acme" and start <= _at(e) < end
    )


def test_a_run_that_crashed_half_way_is_completed_by_the_next(
    staged: tuple[Client, list[dict[str, Any]]], monkeypatch: pytest.MonkeyPatch
) -> None:
    client, events = staged
    _load(client, PRICE)
    monkeypatch.setattr(reprice, "CHUNK_EVENTS", 5)
    real_insert = reprice._insert
    calls = {"n": 0}

    def crash_after_two(store: Client, rows: list[list[Any]], *, token: str) -> None:
        calls["n"] += 1
        if calls["n"] == 3:
            raise ConnectionError("killed")
        real_insert(store, rows, token=token)
        if calls["n"] == 2:
            real_insert(store, rows, token=token)  # a retry of an acknowledged chunk: dropped by its token

    monkeypatch.setattr(reprice, "_insert", crash_after_two)
    with pytest.raises(ConnectionError):
        reprice.reprice(client, reprice.Selection(since=SINCE))
    assert client.query("SELECT count() FROM cost_adjustments").result_rows[0][0] == 2 * 2 * 5

    monkeypatch.setattr(reprice, "_insert", real_insert)
    rest = reprice.reprice(client, reprice.Selection(since=SINCE))
    assert rest.events_repriced == len(events) // 2 - 10
    assert client.query("SELECT count() FROM cost_adjustments").result_rows[0][0] == 2 * (len(events) // 2)
    assert reprice.reprice(client, reprice.Selection(since=SINCE)).events_repriced == 0


@pytest.fixture
def api_url(clickhouse: Client, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """``usagemeter serve``'s API on 127.0.0.1 over this test's store, in a thread; an admin key in
    USAGEMETER_API_KEY for the CLI."""
    monkeypatch.setenv("USAGEMETER_API_KEY", make_key(clickhouse, admin=True))
    with running_api(create_app(lambda: clickhouse, settings=api_settings())) as url:
        yield url


def test_the_cli_reprices_through_the_api(staged: tuple[Client, list[dict[str, Any]]], api_url: str) -> None:
    client, events = staged
    admin = {"authorization": f"Bearer {os.environ['USAGEMETER_API_KEY']}"}
    unknown = httpx.get(f"{api_url}/v1/unknown-models", headers=admin).json()
    assert [(u["model_raw"], u["events"]) for u in unknown] == [(NEW_MODEL, len(events) // 2)]
    _load(client, PRICE)
    args = ["reprice", "--since", f"{SINCE:%Y-%m-%d %H:%M:%S}", "--client", "globex", "--api-url", api_url, "--json"]
    env = {"USAGEMETER_CLICKHOUSE_DSN": "http://127.0.0.1:1"}  # the store is not ours to open: the API must serve
    result = CliRunner().invoke(app, args, env=env)
    assert result.exit_code == 0, result.output
    globex = sum(1 for e in events if e["model"] == NEW_MODEL and e["client_id"] == "globex")
    assert f'"events_repriced": {globex}' in result.output
    assert httpx.get(f"{api_url}/v1/unknown-models", headers=admin).json()[0]["events"] == len(events) // 2 - globex
    refused = CliRunner().invoke(app, [*args[:3], "--until", "2000-01-01", "--api-url", api_url], env=env)
    assert refused.exit_code == 2
    assert "until must be after since" in refused.output


def _at(row: dict[str, Any]) -> datetime:
    return datetime(1970, 1, 1, tzinfo=UTC) + timedelta(microseconds=row["event_time"])
