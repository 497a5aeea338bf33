"""Delivery of ledger alerts: back-off, a dead webhook after its attempts with the reason, Slack's body, the
topic's Avro record, and an unsigned webhook never sent."""

from __future__ import annotations

import io
import json
import logging
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import fastavro
import pytest
from clickhouse_connect.driver.client import Client
from pydantic import SecretStr

from tests.fixtures.clock import ManualClock
from tests.fixtures.webhook import SECRET, Receiver
from usagemeter.budgets import manage
from usagemeter.budgets.alerts import Alert
from usagemeter.budgets.channels import Senders, avro_record, slack_body
from usagemeter.budgets.dispatch import Dispatcher
from usagemeter.budgets.ledger import AlertLedger
from usagemeter.budgets.model import BudgetSpec, LogChannel, Scope, WebhookChannel
from usagemeter.budgets.settings import AlertSettings
from usagemeter.budgets.store import BudgetStore
from usagemeter.consumers.settings import KafkaSettings
from usagemeter.schemas.registry import alert_schema
from usagemeter.schemas.wire import HEADER_LEN, encode

pytestmark = pytest.mark.clickhouse
AT = datetime.now(UTC).replace(microsecond=0)  # now: the receiver refuses signatures with an old timestamp


def an_alert(budget_id: str) -> Alert:
    return Alert(
        alert_id="al_test", kind="crossed", budget_id=budget_id, version=1, name="acme-monthly",
        scope=Scope(client_id="acme", label_key="team", label_value="search"), period_start=AT, period_end=AT,
        next_reset=None, tz="UTC", unit="usd", spend=Decimal("12.5"), limit=Decimal(10), percent=Decimal(125),
        thresholds=("pct:80", "pct:100"), crossings=(0, 0), as_of=AT, created_at=AT,
    )  # fmt: skip


def dispatcher(client: Client, clock: ManualClock, settings: AlertSettings) -> Dispatcher:
    senders = Senders(settings, KafkaSettings(bootstrap_servers="127.0.0.1:1"), clock=clock)
    return Dispatcher(AlertLedger(client), BudgetStore(client, clock=clock), senders, settings, clock=clock)


def test_a_webhook_that_keeps_failing_is_dead_after_its_attempts_with_the_reason(
    clickhouse: Client, webhook_receiver: Receiver
) -> None:
    clock = ManualClock(now=AT)
    webhook_receiver.fail_first = 1_000
    spec = BudgetSpec(scope=Scope(client_id="acme"), limit=Decimal(10),
                      channels=(LogChannel(), WebhookChannel(url=webhook_receiver.url)))  # fmt: skip
    budget = BudgetStore(clickhouse, clock=clock).create(spec)
    alert = an_alert(budget.budget_id)
    AlertLedger(clickhouse).record(alert, AT, "test")
    settings = AlertSettings(webhook_secret=SecretStr(SECRET), max_attempts=4, backoff_initial_s=1, backoff_max_s=3)
    sending = dispatcher(clickhouse, clock, settings)
    sending.recover()
    waits = []
    while (wait := sending.run_due()) is not None:
        waits.append(wait)
        clock.now += timedelta(seconds=wait)
    assert waits == [1, 2, 3], "exponential back-off, capped"
    assert webhook_receiver.attempts["al_test"] == 4
    record = manage.alert(clickhouse, "al_test")
    assert record is not None
    states = [(d.channel, d.attempt, d.status) for d in record.deliveries]
    assert states == [
        ("0:log", 1, "delivered"),
        *(("1:webhook", n, "failed") for n in (1, 2, 3)),
        ("1:webhook", 4, "dead"),
    ]
    assert record.deliveries[-1].error == "webhook http://127.0.0.1 answered 500", "the reason, without the URL's path"

    again = dispatcher(clickhouse, clock, settings)
    again.recover()
    assert again.waiting == 0, "a delivered or dead channel is never sent again"


def test_without_a_signing_secret_no_webhook_is_sent(clickhouse: Client, webhook_receiver: Receiver) -> None:
    clock = ManualClock(now=AT)
    spec = BudgetSpec(
        scope=Scope(client_id="acme"), limit=Decimal(10), channels=(WebhookChannel(url=webhook_receiver.url),)
    )
    budget = BudgetStore(clickhouse, clock=clock).create(spec)
    AlertLedger(clickhouse).record(an_alert(budget.budget_id), AT, "test")
    sending = dispatcher(clickhouse, clock, AlertSettings(max_attempts=1))
    sending.recover()
    assert sending.run_due() is None
    record = manage.alert(clickhouse, "al_test")
    assert record is not None and "USAGEMETER_ALERTS_WEBHOOK_SECRET is not set" in record.deliveries[0].error
    assert sum(webhook_receiver.attempts.values()) == 0


def test_the_topic_record_slack_body_and_log_line(caplog: pytest.LogCaptureFixture) -> None:
    alert = an_alert("b_1")
    value = encode(alert_schema(), avro_record(alert))
    decoded = fastavro.schemaless_reader(io.BytesIO(value[HEADER_LEN:]), alert_schema().plain, None)
    assert isinstance(decoded, dict)
    assert (decoded["alert_id"], decoded["label_key"], decoded["spend"], decoded["thresholds"]) == (
        "al_test", "team", "12.5", ["pct:80", "pct:100"],
    )  # fmt: skip
    assert decoded["period_start"] == int(AT.timestamp() * 1_000_000)
    text = json.loads(slack_body(alert))["text"]
    assert "crossed pct:80, pct:100" in text and "al_test" in text and "label team=search" in text
    settings = AlertSettings()
    with caplog.at_level(logging.WARNING, logger="usagemeter.alerts"):
        Senders(settings, KafkaSettings()).send(LogChannel(), alert)
    assert "budget alert al_test: budget acme-monthly" in caplog.text
