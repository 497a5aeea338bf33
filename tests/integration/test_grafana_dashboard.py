"""Every panel of the provisioned Grafana dashboard, its macros and variables substituted as the
grafana-clickhouse-datasource plugin (v4) and Grafana do, runs on the real engine over a store with data,
and the numbers of the main panels equal ``run_query``'s for the same range.

The plugin's macros (``pkg/macros/macros.go``): ``$__timeFilter(col)`` is ``col >= toDateTime(from) AND
col <= toDateTime(to)``, ``$__fromTime``/``$__toTime`` are ``toDateTime(seconds)``, ``$__interval_s`` an
integer. Grafana replaces ``${name}`` and ``${name:singlequote}`` (``'a','b'``) before the plugin sees the SQL.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from clickhouse_connect.driver.client import Client

from tests.fixtures.budgets import crossed_budget
from tests.fixtures.clickhouse import priced_store
from tests.fixtures.staging import event, stage
from usagemeter.budgets.model import BudgetSpec, LogChannel, Scope
from usagemeter.query.analytics import run_query
from usagemeter.query.spec import UsageQuery

pytestmark = pytest.mark.clickhouse

GRAFANA = Path(__file__).resolve().parents[2] / "deploy" / "grafana"
DASHBOARD = json.loads((GRAFANA / "dashboards" / "usagemeter.json").read_text())
PANELS = [p for p in DASHBOARD["panels"] if p.get("targets")]
CLIENTS = ["acme", "globex"]
END = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
START = END - timedelta(days=2)
MODELS = (("openai", "gpt-4o-mini"), ("anthropic", "claude-sonnet-4-5"), ("google", "gemini-2.5-flash"))


def substitute(
    sql: str, *, start: datetime, end: datetime, interval_s: int, tz: str, values: dict[str, list[str]]
) -> str:
    """The SQL Grafana and the plugin would send for the range ``[start, end]``."""
    frm, to = f"toDateTime({int(start.timestamp())})", f"toDateTime({int(end.timestamp())})"
    sql = re.sub(r"\$__timeFilter\(([^)]+)\)", lambda m: f"{m[1]} >= {frm} AND {m[1]} <= {to}", sql)
    sql = sql.replace("$__fromTime", frm).replace("$__toTime", to).replace("$__interval_s", str(interval_s))
    for name, chosen in values.items():
        sql = sql.replace(f"${{{name}:singlequote}}", ",".join(f"'{v}'" for v in chosen))
    sql = sql.replace("${tz}", tz).replace("${search}", "gpt-4o")
    assert "$" not in sql, f"a macro or variable is left: {sql}"
    return sql


@pytest.fixture(scope="module")
def store(store_dsn: str) -> Iterator[Client]:
    """Two days of two clients' events through the real views, a crossed budget and its delivered alert."""
    with priced_store(store_dsn) as client:
        events = [
            event(provider, model, START + timedelta(minutes=37 * i), client_id=CLIENTS[i % 2], user_id=f"u{i % 5}",
                  service="chat-api", input_tokens=1000 + i, output_tokens=300, cache_read_tokens=200,
                  status="error" if i % 17 == 0 else "ok")
            for i in range(75) for provider, model in [MODELS[i % 3]]
        ]  # fmt: skip
        stage(client, events)
        crossed_budget(client, BudgetSpec(name="acme-daily", scope=Scope(client_id="acme"), period="day",
                                          limit=Decimal("0.005"), channels=(LogChannel(),)))  # fmt: skip
        yield client


def panel_rows(
    store: Client, title: str, *, interval_s: int = 3600, tz: str = "UTC", end: datetime = END
) -> list[tuple[Any, ...]]:
    panel = next(p for p in PANELS if p["title"] == title)
    values = {"client": CLIENTS, "provider": [p for p, _ in MODELS], "model": [m for _, m in MODELS]}
    # $__timeFilter includes its end: one second before END keeps the bucket starting at END out
    sql = substitute(panel["targets"][0]["rawSql"], start=START, end=end - timedelta(seconds=1), interval_s=interval_s,
                     tz=tz, values=values)  # fmt: skip
    return [tuple(row) for row in store.query(sql).result_rows]


@pytest.mark.parametrize("tz", ["UTC", "Asia/Kathmandu"])
@pytest.mark.parametrize("interval_s", [60, 3600, 86_400])
@pytest.mark.parametrize("panel", PANELS, ids=[p["title"] for p in PANELS])
def test_every_panel_runs(store: Client, panel: dict[str, Any], interval_s: int, tz: str) -> None:
    assert panel["datasource"]["type"] == "grafana-clickhouse-datasource"
    panel_rows(store, panel["title"], interval_s=interval_s, tz=tz)


def test_the_variables_queries_run(store: Client) -> None:
    found = {}
    for variable in DASHBOARD["templating"]["list"]:
        if variable["type"] == "query":
            sql = substitute(variable["query"], start=START, end=END, interval_s=60, tz="UTC",
                             values={"client": CLIENTS, "provider": [p for p, _ in MODELS]})  # fmt: skip
            found[variable["name"]] = [row[0] for row in store.query(sql).result_rows]
    assert found == {"client": CLIENTS, "provider": sorted(p for p, _ in MODELS), "model": sorted(m for _, m in MODELS)}
    zones = next(v for v in DASHBOARD["templating"]["list"] if v["name"] == "tz")["query"].split(",")
    assert "UTC" in zones and "Asia/Kathmandu" in zones


def test_the_main_panels_equal_run_query(store: Client) -> None:
    query = UsageQuery(client_ids=CLIENTS, start=START, end=END)
    total = run_query(store, query).total
    (row,) = panel_rows(store, "Totals against the previous period")
    assert (Decimal(row[0]), row[2], row[4], row[6]) == (
        total.cost.total,
        total.requests,
        total.tokens.total,
        total.errors,
    )
    assert row[0] > 0 and row[1] == 0  # nothing in the two days before

    by_model = run_query(store, query.model_copy(update={"group_by": ["model"]})).rows
    top = {r[1]: Decimal(r[2]) for r in panel_rows(store, "Top models by cost")}
    assert top == {r.group["model"]: r.cost.total for r in by_model}
    kinds = dict(panel_rows(store, "Cost by token kind"))
    assert kinds["cached input (read)"] == total.cost.cache_read > 0
    assert sum(kinds.values()) == total.cost.total
    errors = sum(r[3] for r in panel_rows(store, "Errors by status, service and model"))
    assert errors == total.errors


def test_day_buckets_are_local_days_of_the_zone(store: Client) -> None:
    rows = panel_rows(store, "Spend by model", interval_s=86_400, tz="Asia/Kathmandu")
    starts = {r[0].replace(tzinfo=UTC) for r in rows}
    assert {s.strftime("%H:%M") for s in starts} == {"18:15"}  # local midnight at UTC+05:45
    total = run_query(store, UsageQuery(client_ids=CLIENTS, start=START, end=END)).total
    assert sum(Decimal(r[2]) for r in rows) == total.cost.total


def test_the_budget_panels_show_the_alert_and_its_delivery(store: Client) -> None:
    now = datetime.now(UTC) + timedelta(minutes=1)  # the alert was written at the fixture's start
    (budget,) = panel_rows(store, "Budgets: spend at the latest alert", end=now)
    assert budget[1:3] == ("acme-daily", "acme") and budget[5] > budget[6] == Decimal("0.005")
    alerts = panel_rows(store, "Recent alerts and their delivery", end=now)
    assert alerts and all(r[5].endswith("log delivered") for r in alerts)


def test_the_provisioning_has_the_plugins_v4_fields() -> None:
    source = (GRAFANA / "provisioning" / "datasources" / "clickhouse.yaml").read_text()
    json_data = source.split("jsonData:")[1].split("secureJsonData:")[0]
    for field in ("host", "port", "protocol", "defaultDatabase", "username"):
        assert re.search(rf"^\s+{field}: \S", json_data, re.M), field
    assert "password" not in json_data
    assert re.search(r"secureJsonData:\n\s+password: \$\{[A-Z_]+\}", source)
    assert "uid: usagemeter-clickhouse" in source  # the uid every panel names
    provider = (GRAFANA / "provisioning" / "dashboards" / "usagemeter.yaml").read_text()
    assert "path: /var/lib/grafana/dashboards" in provider
