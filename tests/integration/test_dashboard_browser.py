"""The dashboard in a real browser (headless Chromium over the DevTools protocol) on a store the real
pipeline filled: events through the broker and the worker, invalid ones dead-lettered, a budget evaluated
and its alert delivered by the real alerter classes.

Checked: the sign-in form sets the cookie and the page loads; every total, top row and token kind shown
equals ``GET /v1/reports`` for the same range; the charts are drawn; a client key's page holds nothing of
another client and refuses another client's view; no console error on any page. Screenshots (desktop and
narrow, overview and prices) are left in ``build/screenshots/``.
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest
from clickhouse_connect.driver.client import Client

from tests.fixtures.api import api_settings, make_key, running_api
from tests.fixtures.browser import SCREENSHOTS, Browser
from tests.fixtures.budgets import crossed_budget
from tests.fixtures.clickhouse import priced_store
from tests.fixtures.kafka import KafkaBroker
from tests.fixtures.workers import run_until
from usagemeter.api import create_app
from usagemeter.budgets.model import BudgetSpec, LogChannel, Scope
from usagemeter.consumers.pipeline import build_worker
from usagemeter.consumers.settings import KafkaSettings, WorkerSettings
from usagemeter.dashboard.dead_letters import dead_letter_reasons
from usagemeter.local.kafka import create_topic, delete_topics
from usagemeter.producers import UsageEmitter
from usagemeter.producers.simulation import simulated_calls

pytestmark = [pytest.mark.kafka, pytest.mark.clickhouse]

EVENTS = 1_500
INVALID = (
    {"model": "gpt-4o-mini", "client_id": "", "input_tokens": 10},
    {"model": "gpt-4o-mini", "client_id": "acme", "input_tokens": -3},
)
FEATURES = ("summarise", "search", "chat")


@dataclass(frozen=True)
class Site:
    url: str
    keys: dict[str, str]


@pytest.fixture(scope="module")
def site(store_dsn: str, kafka_broker: KafkaBroker, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    """One store filled through the pipeline, served by the API on a free port, for the whole module."""
    with priced_store(store_dsn) as client:
        yield from _served(client, kafka_broker, tmp_path_factory.mktemp("spool"))


def _served(client: Client, kafka_broker: KafkaBroker, spool: Path) -> Iterator[Site]:
    topic, dlq = f"test-{uuid.uuid4().hex[:12]}", f"test-{uuid.uuid4().hex[:12]}"
    create_topic(kafka_broker.bootstrap_servers, topic, 2)
    create_topic(kafka_broker.bootstrap_servers, dlq, 1)
    kafka = KafkaSettings(bootstrap_servers=kafka_broker.bootstrap_servers, topic=topic, dlq_topic=dlq,
                          group_id=f"g-{topic}")  # fmt: skip
    try:
        _emit(kafka, spool)
        worker = build_worker(kafka, WorkerSettings(max_batch_rows=2_000, max_batch_wait_s=0.2), client)
        total = EVENTS + len(INVALID) + 1
        run_until(worker, lambda: worker.totals["inserted"] + worker.totals["dead_lettered"] >= total, 120, join_s=60)
        assert worker.totals["dead_lettered"] == len(INVALID)
        crossed_budget(client, BudgetSpec(name="acme-monthly", scope=Scope(client_id="acme"), limit=Decimal("0.5"),
                                          channels=(LogChannel(),)))  # fmt: skip
        keys = {name: make_key(client, **request) for name, request in
                (("admin", {"admin": True}), ("acme", {"clients": ["acme"]}))}  # fmt: skip
        app = create_app(lambda: client, settings=api_settings(), dead_letters=dead_letter_reasons(kafka))
        with running_api(app) as url:
            yield Site(url, keys)
    finally:
        delete_topics(kafka_broker.bootstrap_servers, [topic, dlq])


def _emit(kafka: KafkaSettings, spool: Path) -> None:
    rng = random.Random(14)
    with UsageEmitter(kafka.bootstrap_servers, topic=kafka.topic, spool_dir=spool) as meter:
        for call in simulated_calls(rng, EVENTS, spread=timedelta(hours=20)):
            meter.emit(**call, labels={"feature": rng.choice(FEATURES)})
        meter.emit("umbrella-private-model", client_id="umbrella", user_id="umbrella-user-1", input_tokens=5)
        for bad in INVALID:
            meter.emit(**bad)  # type: ignore[arg-type]
        assert meter.flush(30) == 0


def sign_in(browser: Browser, site: Site, key: str, path: str) -> None:
    """Through the page's own form: the first visit answers 401 with it, the script posts the key."""
    browser.goto(site.url + path)
    assert browser.evaluate("!!document.getElementById('login')")
    browser.evaluate(f"document.getElementById('key').value = {key!r}")
    browser.events.clear()
    browser.evaluate("document.querySelector('#login button').click()")
    browser.wait_for("Page.loadEventFired")
    browser.wait_until("!!document.querySelector('[data-test=total-cost]')")


def shown(browser: Browser, selector: str) -> dict[str, str]:
    """``data-group`` or ``data-kind`` -> ``data-value`` of the cells a table shows."""
    script = f"""Object.fromEntries([...document.querySelectorAll({selector!r} + ' tr')].slice(1).map(tr => {{
        const name = tr.querySelector('[data-group],[data-kind]'); const value = tr.querySelector('[data-value]');
        return [name.dataset.group ?? name.dataset.kind, value.dataset.value]; }}))"""
    return dict(browser.evaluate(script))


def api_report(site: Site, key: str, browser: Browser, **params: Any) -> dict[str, Any]:
    """The API's answer for the range the page shows (its bounds are in the page's data attributes)."""
    start, end = browser.evaluate("[document.querySelector('[data-test=range]').dataset.start,"
                                  " document.querySelector('[data-test=range]').dataset.end]")  # fmt: skip
    clients = browser.evaluate("document.querySelector('[data-test=clients]').textContent").split(", ")
    answer = httpx.get(
        f"{site.url}/v1/reports",
        params={"client_id": clients, "start": start, "end": end, "limit": 100_000, **params},
        headers={"authorization": f"Bearer {key}"},
    )
    assert answer.status_code == 200, answer.text
    return dict(answer.json())


def test_the_page_shows_the_apis_numbers_and_draws_its_charts(browser: Browser, site: Site) -> None:
    sign_in(browser, site, site.keys["admin"], "/dashboard?range=1d")
    value = "document.querySelector('[data-test=total-{}]').dataset.value"

    total = api_report(site, site.keys["admin"], browser)["total"]
    assert Decimal(browser.evaluate(value.format("cost"))) == Decimal(total["cost"]["total"]) > 0
    assert int(browser.evaluate(value.format("requests"))) == total["requests"] == EVENTS + 1
    assert int(browser.evaluate(value.format("tokens"))) == total["tokens"]["total"]
    assert int(browser.evaluate(value.format("errors"))) == total["errors"] > 0
    kinds = {k: v for k, v in total["cost"].items() if k != "total" and Decimal(v)}
    assert {k: Decimal(v) for k, v in shown(browser, "[data-test=kinds]").items()} == {
        k: Decimal(v) for k, v in kinds.items()
    }
    models = api_report(site, site.keys["admin"], browser, group_by="model", top=10)["rows"]
    assert {k: Decimal(v) for k, v in shown(browser, "[data-test=top-models]").items()} == {
        row["group"]["model"]: Decimal(row["cost"]["total"]) for row in models
    }
    assert browser.evaluate("document.querySelectorAll('.uplot canvas').length") == 2
    html = browser.evaluate("document.body.innerText")
    assert "acme-monthly" in html and "log delivered" in html  # the budget and its alert's delivery
    assert "umbrella-private-model" in html  # an unknown model, shown to admins
    assert shown(browser, "[data-test=dead-letters]") == {"missing_client_id": "1", "negative_count": "1"}
    assert browser.evaluate("document.querySelector('[data-test=as-of]').textContent") != "—"

    browser.screenshot(SCREENSHOTS / "dashboard-desktop.png", 1366, 900)
    browser.screenshot(SCREENSHOTS / "dashboard-narrow.png", 390, 844)
    browser.goto(f"{site.url}/dashboard/prices?search=gpt-4o")
    assert "gpt-4o-mini" in browser.evaluate("document.querySelector('[data-test=book]').innerText")
    browser.screenshot(SCREENSHOTS / "prices-desktop.png", 1366, 900)
    assert browser.errors == []


def test_a_client_key_sees_its_own_client_only(browser: Browser, site: Site) -> None:
    sign_in(browser, site, site.keys["acme"], "/dashboard?range=1d&label=feature%3Dsearch")
    page = browser.evaluate("document.documentElement.outerHTML")
    assert browser.evaluate("document.querySelector('[data-test=clients]').textContent") == "acme"
    for other in ("globex", "initech", "umbrella"):
        assert other not in page
    total = api_report(site, site.keys["acme"], browser, filter="label:feature=search")["total"]
    value = browser.evaluate("document.querySelector('[data-test=total-cost]').dataset.value")
    assert Decimal(value) == Decimal(total["cost"]["total"]) > 0
    assert "admin keys only" in browser.evaluate("document.querySelector('[data-test=dead-letters]').innerText")

    assert browser.errors == []

    browser.goto(f"{site.url}/dashboard?client=globex")
    assert "may not read client 'globex'" in browser.evaluate("document.body.innerText")
    assert [error for error in browser.errors if "403" not in error] == []  # the refusal itself is logged
    browser.events.clear()
    browser.goto(f"{site.url}/dashboard/prices")
    assert "globex" not in browser.evaluate("document.documentElement.outerHTML")
    assert browser.errors == []


def test_a_refused_key_stays_on_the_form(browser: Browser, site: Site) -> None:
    browser.goto(f"{site.url}/dashboard")
    browser.evaluate("document.getElementById('key').value = 'um_not_a_key'")
    browser.evaluate("document.querySelector('#login button').click()")
    browser.wait_until("(document.querySelector('[role=alert]') || {}).textContent?.includes('refused')")
    browser.goto(f"{site.url}/dashboard")
    assert browser.evaluate("!!document.getElementById('login')")  # still signed out
    # the refused sign-in's 401 is logged by the browser as a failed resource: the only error allowed
    assert all("401" in error for error in browser.errors), browser.errors
