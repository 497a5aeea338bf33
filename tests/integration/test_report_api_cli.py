"""The report routes and ``usagemeter report`` on the real engine: JSON, CSV and JSON Lines of the same
answer, a FOCUS 1.2 export that meets the specification's column rules and sums to the events, and the
bounds that keep a request from scanning unbounded data."""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import typer
from clickhouse_connect.driver.client import Client
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from tests.fixtures.api import api_client, api_settings, make_key
from tests.fixtures.staging import event, stage
from tests.focus_rules import problems
from usagemeter.api import create_app
from usagemeter.cli.report_cmd import report_command
from usagemeter.consumers.settings import ClickHouseSettings

pytestmark = pytest.mark.clickhouse

START = datetime(2026, 10, 31, 20, tzinfo=UTC)


@pytest.fixture
def events(clickhouse: Client) -> list[dict[str, Any]]:
    made = [
        event("openai", model, START + timedelta(minutes=7 * n), client_id="acme", user_id=user,
              input_tokens=1000 + n, cache_read_tokens=100, output_tokens=50 + n, reasoning_tokens=10,
              cost=str(Decimal(n + 1) / 1000), labels={"team": "search"})
        for n, (model, user) in enumerate([("gpt-4o", "alice"), ("gpt-4o-mini", "bob")] * 40)
    ]  # fmt: skip
    made.append(event("openai", "gpt-4o", START, client_id="globex", cost="5"))
    stage(clickhouse, made)
    return made


@pytest.fixture
def api(clickhouse: Client, events: list[dict[str, Any]]) -> TestClient:
    app = create_app(lambda: clickhouse, settings=api_settings())
    return api_client(app, make_key(clickhouse, clients=["acme", "globex"]))


def _at(record: dict[str, Any]) -> datetime:
    return datetime(1970, 1, 1, tzinfo=UTC) + timedelta(microseconds=record["event_time"])


def _acme_cost(events: list[dict[str, Any]]) -> Decimal:
    return sum((Decimal(e["cost"]) for e in events if e["client_id"] == "acme"), Decimal(0))


def test_json_csv_and_jsonl_are_the_same_answer(api: TestClient, events: list[dict[str, Any]]) -> None:
    params: dict[str, Any] = {"client_id": "acme", "start": "2026-11-01T00:00", "end": "2026-11-02T00:00",
                              "tz": "Asia/Kathmandu", "bucket": "hour", "group_by": ["model"]}  # fmt: skip
    answer = api.get("/v1/reports", params=params)
    assert answer.status_code == 200, answer.text
    body = answer.json()
    as_csv = api.get("/v1/reports", params={**params, "format": "csv"})
    rows = list(csv.DictReader(io.StringIO(as_csv.text)))
    lines = [
        json.loads(line) for line in api.get("/v1/reports", params={**params, "format": "jsonl"}).text.splitlines()
    ]
    assert len(rows) == len(lines) == len(body["rows"]) > 0
    assert (
        [r["cost_total"] for r in rows]
        == [line["cost_total"] for line in lines]
        == [r["cost"]["total"] for r in body["rows"]]
    )
    assert as_csv.headers["x-usagemeter-late-events"] == str(body["freshness"]["late_events"])
    day_start = datetime(2026, 11, 1, tzinfo=UTC) - timedelta(hours=5, minutes=45)  # Kathmandu's midnight
    in_day = sum(
        (
            Decimal(e["cost"])
            for e in events
            if e["client_id"] == "acme" and day_start <= _at(e) < day_start + timedelta(days=1)
        ),
        Decimal(0),
    )
    assert Decimal(body["total"]["cost"]["total"]) == in_day


def test_focus_export_meets_the_column_rules_and_sums_to_the_events(
    api: TestClient, events: list[dict[str, Any]]
) -> None:
    params = {
        "client_id": "acme",
        "start": "2026-10-31T00:00",
        "end": "2026-11-02T00:00",
        "tz": "Pacific/Kiritimati",
        "bucket": "15m",
    }
    export = api.get("/v1/reports/focus", params=params)
    assert export.status_code == 200, export.text
    reader = csv.DictReader(io.StringIO(export.text))
    rows = list(reader)
    assert problems(reader.fieldnames or [], rows) == []
    assert sum((Decimal(r["BilledCost"]) for r in rows), Decimal(0)) == _acme_cost(events)
    assert {r["x_TokenKind"] for r in rows} >= {"input", "cache_read", "output", "reasoning"}
    assert {r["BillingPeriodStart"] for r in rows} <= {
        "2026-09-30T10:00:00Z",
        "2026-10-31T10:00:00Z",
    }  # Kiritimati months
    assert {r["x_ClientId"] for r in rows} == {"acme"} and {r["x_UserId"] for r in rows} == {"alice", "bob"}


def test_the_rules_catch_a_broken_export() -> None:
    good = {"BilledCost": "1", "ChargePeriodStart": "2026-11-01T00:00:00Z"}
    found = problems(["BilledCost", "ChargePeriodStart", "Custom"], [good])
    assert "missing mandatory column ListCost" in found and any("'Custom'" in p for p in found)


@pytest.mark.parametrize(
    ("params", "status", "says"),
    [
        pytest.param({"start": "2024-01-01", "end": "2026-01-01"}, 422, "at most 400 days", id="range too long"),
        pytest.param({"start": "2026-11-01T00:05"}, 422, "15-minute boundary", id="unaligned"),
        pytest.param({"group_by": "colour"}, 422, "unknown dimension 'colour'", id="unknown dimension"),
        pytest.param({"filter": "model"}, 422, "dimension=value", id="bad filter"),
        pytest.param({"group_by": ["label:team", "user"]}, 422, "not user", id="label with user"),
        pytest.param({"limit": 100_001}, 422, "", id="page too large"),
    ],
)
def test_bounds_and_bad_input(api: TestClient, params: dict[str, Any], status: int, says: str) -> None:
    base = {"client_id": "acme", "start": "2026-11-01", "end": "2026-11-02"}
    answer = api.get("/v1/reports", params={**base, **params})
    assert answer.status_code == status and says in answer.text, answer.text


def test_unknown_model_says_so(api: TestClient) -> None:
    body = api.get(
        "/v1/reports", params={"client_id": "acme", "start": "2026-10-01", "end": "2026-12-01", "filter": "model=gpt-9"}
    ).json()
    assert body["rows"] == [] and body["notes"] == ["unknown model 'gpt-9': these clients have no usage with it"]


@pytest.fixture
def cli(
    clickhouse: Client,
    clickhouse_settings: ClickHouseSettings,
    events: list[dict[str, Any]],
    monkeypatch: pytest.MonkeyPatch,
) -> typer.Typer:
    monkeypatch.setenv("USAGEMETER_CLICKHOUSE_DSN", clickhouse_settings.dsn)
    monkeypatch.setenv("USAGEMETER_CLICKHOUSE_DATABASE", clickhouse_settings.database)
    app = typer.Typer()
    app.callback()(lambda: None)
    app.command("report")(report_command)
    return app


def test_cli_table_fits_80_columns_and_exports_every_row(
    cli: typer.Typer, events: list[dict[str, Any]], tmp_path: Path
) -> None:
    runner = CliRunner()
    base = ["report", "--direct", "--client", "acme", "--from", "2026-10-31", "--to", "2026-11-02"]
    table = runner.invoke(cli, [*base, "--bucket", "hour", "--by", "model", "--by", "user"], env={"COLUMNS": "80"})
    assert table.exit_code == 0, table.output
    assert max(len(line) for line in table.output.splitlines()) <= 80
    assert "gpt-4o-mini" in table.output and "late events" in table.output
    out = tmp_path / "rows.csv"
    export = runner.invoke(cli, [*base, "--bucket", "15m", "--by", "model", "--format", "csv", "--output", str(out)])
    assert export.exit_code == 0, export.output
    rows = list(csv.DictReader(out.open()))
    assert sum((Decimal(r["cost_total"]) for r in rows), Decimal(0)) == _acme_cost(events)
    focus = runner.invoke(cli, [*base, "--format", "focus"])
    reader = csv.DictReader(io.StringIO(focus.output))
    assert problems(reader.fieldnames or [], list(reader)) == []
    bad = runner.invoke(cli, [*base, "--filter", "colour=red"], env={"COLUMNS": "200"})
    assert bad.exit_code == 2 and "colour" in bad.output
