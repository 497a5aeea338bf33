"""``usagemeter usage`` end to end: through a running query API, straight from the store, and the fallback."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal

import pytest
import typer
from clickhouse_connect.driver.client import Client
from typer.testing import CliRunner

from tests.fixtures.api import api_settings, make_key, running_api
from usagemeter.api import create_app
from usagemeter.cli.usage_cmd import usage_command
from usagemeter.consumers.settings import ClickHouseSettings

pytestmark = pytest.mark.clickhouse

COLUMNS = ["client_id", "bucket", "user_id", "provider", "model", "events", "requests", "input_tokens",
           "output_tokens", "cost_output", "cost_total"]  # fmt: skip


@pytest.fixture
def app() -> typer.Typer:
    cli = typer.Typer()
    cli.callback()(lambda: None)  # keep "usage" a sub-command, as in the real app
    cli.command("usage")(usage_command)
    return cli


@pytest.fixture
def store(clickhouse: Client, clickhouse_settings: ClickHouseSettings, monkeypatch: pytest.MonkeyPatch) -> Client:
    monkeypatch.setenv("USAGEMETER_CLICKHOUSE_DSN", clickhouse_settings.dsn)
    monkeypatch.setenv("USAGEMETER_CLICKHOUSE_DATABASE", clickhouse_settings.database)
    bucket = datetime(2026, 3, 10, 6, 0, tzinfo=UTC)
    rows = [
        ["acme", bucket, "u1", "openai", "gpt-4o", 2, 2, 100, 50, Decimal("0.000000000000000007"),
         Decimal("0.000000000000000007")],
        ["acme", bucket, "u2", "anthropic", "claude-sonnet-4", 1, 1, 10, 5, Decimal("1.5"), Decimal("1.5")],
    ]  # fmt: skip
    clickhouse.insert("usage_15m_by_user", rows, column_names=COLUMNS, settings={"async_insert": 0})
    return clickhouse


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
def api_url(store: Client, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """The API over the store, and in USAGEMETER_API_KEY a key of acme's for the CLI to send."""
    monkeypatch.setenv("USAGEMETER_API_KEY", make_key(store, clients=["acme"]))
    with running_api(create_app(lambda: store, settings=api_settings())) as url:
        yield url


def test_json_through_the_api(app: typer.Typer, api_url: str) -> None:
    result = CliRunner().invoke(app, ["usage", "--client", "acme", "--format", "json", "--api-url", api_url])

    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["total_cost"] == "1.500000000000000007"
    assert report["total_requests"] == 3
    assert "opening the store" not in result.stderr


def test_json_straight_from_the_store(app: typer.Typer, store: Client) -> None:
    result = CliRunner().invoke(app, ["usage", "--client", "acme", "--direct", "--format", "json", "--by", "user"])

    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["by_user"]["u1"] == {"requests": 2, "tokens": 150, "cost": "0.000000000000000007"}


def test_falls_back_to_the_store_when_no_api_answers(app: typer.Typer, store: Client) -> None:
    nowhere = f"http://127.0.0.1:{free_port()}"

    result = CliRunner().invoke(app, ["usage", "--client", "acme", "--by", "provider", "--api-url", nowhere])

    assert result.exit_code == 0, result.output
    assert f"No usage API answers at {nowhere}" in result.stderr
    assert "Usage of acme" in result.stdout
    assert result.stdout.index("anthropic") < result.stdout.index("openai")  # sorted by cost
    assert "$1.500000" in result.stdout


def test_another_clients_usage_is_refused(app: typer.Typer, api_url: str) -> None:
    result = CliRunner().invoke(app, ["usage", "--client", "globex", "--api-url", api_url])

    assert result.exit_code == 2
    assert "answered 403: API key" in result.stderr


def test_without_a_key_the_api_says_which_to_give(
    app: typer.Typer, api_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("USAGEMETER_API_KEY")
    result = CliRunner().invoke(app, ["usage", "--client", "acme", "--api-url", api_url])

    assert result.exit_code == 2
    assert "answered 401" in result.stderr and "USAGEMETER_API_KEY" in result.stderr


def test_unknown_time_zone_is_reported_not_raised(app: typer.Typer, api_url: str) -> None:
    result = CliRunner().invoke(app, ["usage", "--client", "acme", "--tz", "Mars/Olympus", "--api-url", api_url])

    assert result.exit_code == 2
    assert "unknown time zone 'Mars/Olympus'" in result.stderr
