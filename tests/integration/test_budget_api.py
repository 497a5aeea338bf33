"""Budgets over the HTTP API and the CLI through it, the pre-flight check from a service, and quotes.

The API runs on 127.0.0.1 over this test's store (as ``usagemeter serve`` does); the CLI is pointed at a
store it cannot open, so every command must go through the API.
"""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import httpx
import pytest
from clickhouse_connect.driver.client import Client
from typer.testing import CliRunner

from tests.fixtures.api import api_settings, make_key, running_api
from tests.fixtures.clickhouse import migrated_store
from tests.fixtures.snapshots import NEW_MODEL, with_model
from tests.fixtures.staging import event, stage
from usagemeter.api.app import create_app
from usagemeter.budgets.alerts import Alert
from usagemeter.budgets.ledger import AlertLedger
from usagemeter.budgets.model import Scope
from usagemeter.cli.app import app
from usagemeter.pricing import price_updates
from usagemeter.producers import BudgetCheck, BudgetCheckUnavailable, BudgetExceeded

pytestmark = pytest.mark.clickhouse
NOWHERE = {"USAGEMETER_CLICKHOUSE_DSN": "http://127.0.0.1:1"}


@pytest.fixture
def admin_key(clickhouse: Client, monkeypatch: pytest.MonkeyPatch) -> str:
    """An admin key, also in USAGEMETER_API_KEY for the CLI."""
    key = make_key(clickhouse, admin=True)
    monkeypatch.setenv("USAGEMETER_API_KEY", key)
    return key


@pytest.fixture
def api_url(clickhouse: Client, admin_key: str) -> Iterator[str]:
    price_updates.apply(clickhouse, price_updates.read_snapshot(with_model({"input_mtok": "1", "output_mtok": "2"})))
    with running_api(create_app(lambda: clickhouse, settings=api_settings())) as url:
        yield url


@pytest.fixture(scope="module")
def shared_api(store_dsn: str) -> Iterator[tuple[str, str]]:
    """The API over one store for the module's refused-budget cases, and an admin key: a refused budget
    writes nothing, so the cases need no store each."""
    with migrated_store(store_dsn) as store:
        key = make_key(store, admin=True)
        with running_api(create_app(lambda: store, settings=api_settings())) as url:
            yield url, key


def bearer(key: str) -> dict[str, str]:
    return {"authorization": f"Bearer {key}"}


def cli(*args: str) -> Any:
    result = CliRunner().invoke(app, list(args), env=NOWHERE)
    assert result.exit_code == 0, result.output
    return result


def test_the_cli_manages_budgets_through_the_api(api_url: str) -> None:
    created = cli("budgets", "create", "--client", "acme", "--limit", "50", "--period", "week", "--week-start",
                  "sunday", "--tz", "Asia/Tokyo", "--threshold", "75%", "--threshold", "10", "--json",
                  "--api-url", api_url)  # fmt: skip
    budget_id = json.loads(created.stdout)["budget"]["budget_id"]
    assert "no usage of client 'acme' has been seen yet" in created.output, "accepted with a warning"

    listed = json.loads(cli("budgets", "list", "--json", "--api-url", api_url).stdout)
    assert [b["budget_id"] for b in listed] == [budget_id]
    cli("budgets", "update", budget_id, "--limit", "80", "--mode", "hard", "--api-url", api_url)
    shown = json.loads(cli("budgets", "show", budget_id, "--json", "--api-url", api_url).stdout)
    assert [v["version"] for v in shown["history"]] == [1, 2]
    assert (shown["status"]["limit"], shown["status"]["budget"]["spec"]["mode"]) == ("80", "hard")
    start = datetime.fromisoformat(shown["status"]["period_start"])
    assert (start.weekday(), start.utcoffset()) == (6, timedelta(hours=9)), "a Sunday, Tokyo time"
    assert shown["status"]["next_reset"] == shown["status"]["period_end"]

    cli("budgets", "delete", budget_id, "--api-url", api_url)
    assert json.loads(cli("budgets", "list", "--json", "--api-url", api_url).stdout) == []
    gone = CliRunner().invoke(app, ["budgets", "show", budget_id, "--api-url", api_url], env=NOWHERE)
    assert gone.exit_code == 2 and "no budget" in gone.output


@pytest.mark.parametrize(
    ("change", "field"),
    [
        pytest.param({"thresholds": [{"percent": "150"}]}, "percent", id="a percentage above 100"),
        pytest.param({"tz": "Mars/Olympus_Mons"}, "tz", id="a zone that does not exist"),
        pytest.param({"limit": "-5"}, "limit", id="a negative limit"),
        pytest.param({"channels": [{"type": "webhook", "url": "ftp://example.com/x"}]}, "url", id="not http(s)"),
        pytest.param({"thresholds": [{"amount": "500"}]}, "thresholds[0]", id="an amount above the limit"),
    ],
)
def test_bad_budgets_are_refused_with_the_field_named(
    shared_api: tuple[str, str], change: dict[str, Any], field: str
) -> None:
    api_url, admin_key = shared_api
    body = {"scope": {"client_id": "acme"}, "limit": "100", **change}
    response = httpx.post(f"{api_url}/v1/budgets", json=body, headers=bearer(admin_key))
    assert response.status_code == 422
    assert field in response.text


def test_a_hard_budget_refuses_a_call_that_would_pass_it(clickhouse: Client, api_url: str, admin_key: str) -> None:
    for mode, limit in (("hard", "2"), ("soft", "1")):
        body = {"scope": {"client_id": "acme"}, "limit": limit, "mode": mode, "period": "day"}
        assert httpx.post(f"{api_url}/v1/budgets", json=body, headers=bearer(admin_key)).status_code == 201
    stage(clickhouse, [event("openai", NEW_MODEL, datetime.now(UTC) - timedelta(minutes=1), input_tokens=1_500_000)])
    acme = make_key(clickhouse, clients=["acme"])
    check = BudgetCheck(api_url, timeout_s=5, api_key=acme)

    answer = check.check_budget("acme", model=NEW_MODEL)
    assert answer["allowed"] and {b["mode"]: b["allowed"] for b in answer["budgets"]} == {"hard": True, "soft": False}
    assert Decimal(answer["budgets"][0]["worst_case_overshoot"]) > 0, "spend in the last hour: a run rate"

    with pytest.raises(BudgetExceeded) as refused:  # 1.5 + 0.6 would pass 2
        check.check_budget("acme", estimate={"model": NEW_MODEL, "provider": "openai", "input_tokens": 600_000})
    assert (refused.value.current_cost, refused.value.budget_limit) == (Decimal("1.5"), Decimal(2))
    assert refused.value.period_end is not None and refused.value.budget_id.startswith("b_")
    small = {"model": NEW_MODEL, "provider": "openai", "input_tokens": 400_000}
    assert check.check_budget("acme", estimate=small)["allowed"], "1.5 + 0.4 stays within 2"
    assert BudgetCheck(api_url, api_key=admin_key).check_budget("globex")["budgets"] == [], "none covers globex"
    with pytest.raises(ValueError, match="answered 403"):  # acme's key, globex: an error, not a skip
        BudgetCheck(api_url, fail_open=False, api_key=acme).check_budget("globex")


def test_an_unanswering_api_follows_fail_open_or_fail_closed_without_hanging() -> None:
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(1)  # accepts connections, never answers
    url = f"http://127.0.0.1:{silent.getsockname()[1]}"
    try:
        started = time.monotonic()
        assert BudgetCheck(url, timeout_s=0.3).check_budget("acme")["unchecked"] is True
        with pytest.raises(BudgetCheckUnavailable):
            BudgetCheck(url, timeout_s=0.3, fail_open=False).check_budget("acme")
        assert time.monotonic() - started < 3
    finally:
        silent.close()


def test_a_quote_costs_what_the_event_costs(clickhouse: Client, api_url: str) -> None:
    tokens = {"input_tokens": 123_457, "cache_read_tokens": 1_000, "output_tokens": 9_876}
    body = {"model": NEW_MODEL, "provider": "openai", "client_id": "acme", **tokens}
    acme = bearer(make_key(clickhouse, clients=["acme"]))
    quote = httpx.post(f"{api_url}/v1/quote", json=body, headers=acme).json()
    at = datetime.now(UTC)
    stage(
        clickhouse, [event("openai", NEW_MODEL, at, input_tokens=123_457, cache_read_tokens=1_000, output_tokens=9_876)]
    )
    stored = clickhouse.query("SELECT toString(cost_total), toString(cost_output) FROM usage_events").result_rows[0]
    assert (quote["cost"]["total"], quote["cost"]["output"]) == stored
    assert quote["priced"] and quote["model"] == NEW_MODEL
    bad = {"model": NEW_MODEL, "input_tokens": 1, "cache_read_tokens": 5}
    refused = httpx.post(f"{api_url}/v1/quote", json=bad, headers=acme)
    assert refused.status_code == 422


def _alert_of(budget_id: str, client_id: str) -> Alert:
    now = datetime.now(UTC)
    return Alert(
        alert_id=f"al_{client_id}", kind="crossed", budget_id=budget_id, version=1, name=f"{client_id}-monthly",
        scope=Scope(client_id=client_id), period_start=now, period_end=now + timedelta(days=30), next_reset=None,
        tz="UTC", unit="usd", spend=Decimal(2), limit=Decimal(1), percent=Decimal(200), thresholds=("pct:100",),
        crossings=(0,), as_of=now, created_at=now,
    )  # fmt: skip


def test_a_client_key_reads_its_own_budgets_and_alerts_without_webhook_secrets(
    clickhouse: Client, api_url: str, admin_key: str
) -> None:
    hook = "https://hooks.example.com/services/T000/B000/s3cret-path"
    made: dict[str, str] = {}
    for client_id in ("acme", "globex"):
        body = {"name": f"{client_id}-monthly", "scope": {"client_id": client_id}, "limit": "1",
                "channels": [{"type": "log"}, {"type": "webhook", "url": hook}]}  # fmt: skip
        created = httpx.post(f"{api_url}/v1/budgets", json=body, headers=bearer(admin_key))
        made[client_id] = created.json()["budget"]["budget_id"]
        AlertLedger(clickhouse).record(_alert_of(made[client_id], client_id), datetime.now(UTC), "test")
    acme = bearer(make_key(clickhouse, clients=["acme"]))

    listed = httpx.get(f"{api_url}/v1/budgets", headers=acme)
    assert [b["budget_id"] for b in listed.json()] == [made["acme"]]
    assert "s3cret" not in listed.text and '"url":"https://hooks.example.com"' in listed.text
    shown = httpx.get(f"{api_url}/v1/budgets/{made['acme']}", headers=acme)
    assert shown.status_code == 200 and "s3cret" not in shown.text and "globex" not in shown.text
    assert httpx.get(f"{api_url}/v1/budgets/{made['globex']}", headers=acme).status_code == 403
    assert httpx.get(f"{api_url}/v1/budgets", params={"client_id": "globex"}, headers=acme).status_code == 403
    alerts = httpx.get(f"{api_url}/v1/alerts", headers=acme)
    assert [a["alert"]["budget_id"] for a in alerts.json()] == [made["acme"]] and "globex" not in alerts.text
    assert httpx.get(f"{api_url}/v1/alerts/al_acme", headers=acme).status_code == 200
    assert httpx.get(f"{api_url}/v1/alerts/al_globex", headers=acme).status_code == 403
    assert httpx.patch(f"{api_url}/v1/budgets/{made['acme']}", json={"limit": "5"}, headers=acme).status_code == 403

    admin = bearer(admin_key)
    every = httpx.get(f"{api_url}/v1/budgets", headers=admin)
    assert {b["budget_id"] for b in every.json()} == set(made.values()) and "s3cret" in every.text
    assert {a["alert"]["alert_id"] for a in httpx.get(f"{api_url}/v1/alerts", headers=admin).json()} == {
        "al_acme",
        "al_globex",
    }
