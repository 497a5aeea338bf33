"""Two workers in one consumer group, each with its own alerter, evaluating the same budgets at once.

Both evaluators see the same crossings at nearly the same time: the ledger's id (a hash of the crossing)
and its read-back must leave one alert per (budget, threshold) on every channel. 20 % of the events are
re-sent; the webhook refuses each alert's first attempt.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import pytest
from clickhouse_connect.driver.client import Client
from pydantic import SecretStr

from tests.faults.alerts import ids_per_threshold, topic_alerts
from tests.faults.traffic import events, lag, produce, with_resends
from tests.fixtures.webhook import SECRET, Receiver
from usagemeter.budgets.model import BudgetSpec, KafkaChannel, LogChannel, Scope, Threshold, WebhookChannel
from usagemeter.budgets.settings import AlertSettings
from usagemeter.budgets.store import BudgetStore
from usagemeter.budgets.watcher import BudgetWatcher
from usagemeter.consumers import pipeline
from usagemeter.consumers.settings import ClickHouseSettings, KafkaSettings, WorkerSettings
from usagemeter.consumers.store import connect
from usagemeter.consumers.writer import WriteResult
from usagemeter.pricing import pricebook

pytestmark = [pytest.mark.kafka, pytest.mark.clickhouse]
log = logging.getLogger(__name__)
PERCENTS = range(10, 101, 10)


def _flushed(watcher: BudgetWatcher) -> Callable[[WriteResult], None]:
    return lambda _result: watcher.flushed()


def test_two_workers_each_with_an_alerter_alert_once_per_crossing(
    kafka_broker: Any,
    kafka_topic: Any,
    clickhouse: Client,
    clickhouse_settings: ClickHouseSettings,
    webhook_receiver: Receiver,
) -> None:
    bootstrap = kafka_broker.bootstrap_servers
    topic, dlq_topic, alerts_topic = kafka_topic(4), kafka_topic(1), kafka_topic(1)
    unique = events(12_000, seed=51)
    stream = with_resends(unique, 0.20, seed=52)
    per_client = Counter(e.client for e in unique)
    pricebook.load(clickhouse)
    webhook_receiver.fail_first = 1
    channels = (LogChannel(), KafkaChannel(), WebhookChannel(url=webhook_receiver.url))
    for client, count in per_client.items():
        thresholds = tuple(Threshold(percent=Decimal(p)) for p in PERCENTS)
        spec = BudgetSpec(scope=Scope(client_id=client), unit="requests", limit=Decimal(count), period="rolling",
                          rolling_days=7, thresholds=thresholds, channels=channels)  # fmt: skip
        BudgetStore(clickhouse).create(spec)

    kafka = KafkaSettings(bootstrap_servers=bootstrap, topic=topic, dlq_topic=dlq_topic, group_id=f"two-{topic}")
    alert_settings = AlertSettings(topic=alerts_topic, webhook_secret=SecretStr(SECRET), backoff_initial_s=0.2,
                                   backoff_max_s=1, sweep_interval_s=2)  # fmt: skip
    settings = WorkerSettings(max_batch_rows=2_000, max_batch_wait_s=0.2)

    def session() -> Client:  # one session per part, as serve makes them
        return connect(clickhouse_settings)

    watchers = [BudgetWatcher(session(), session(), alert_settings, kafka).start() for _ in range(2)]
    stop = threading.Event()
    threads = []
    for watcher in watchers:
        worker = pipeline.build_worker(kafka, settings, session(), on_flush=_flushed(watcher))
        threads.append(threading.Thread(target=worker.run, args=(stop,), daemon=True))
    for thread in threads:
        thread.start()
    produce(bootstrap, topic, stream, 8.0)

    expected = len(per_client) * len(PERCENTS)
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline:
        delivered = {(a["scope"]["client_id"], t) for a in webhook_receiver.accepted for t in a["thresholds"]}
        if not lag(bootstrap, topic, kafka.group_id, 4) and len(delivered) >= expected:
            break
        time.sleep(0.5)
    time.sleep(2.0)  # a second evaluator's repeat, if any, arrives
    stop.set()
    for thread in threads:
        thread.join(60)
    for watcher in watchers:
        watcher.stop()

    rows = clickhouse.query(
        "SELECT alert_id, v.client_id, thresholds FROM budget_alerts AS a FINAL "
        "INNER JOIN (SELECT DISTINCT budget_id, client_id FROM budget_versions) AS v USING budget_id "
        "WHERE kind = 'crossed'"
    ).result_rows
    ledger = ids_per_threshold([(str(a), str(c), list(t)) for a, c, t in rows])
    records = topic_alerts(bootstrap, alerts_topic, expected)
    kafka_ids = ids_per_threshold([(r["alert_id"], r["client_id"], r["thresholds"]) for r in records])
    accepted = webhook_receiver.accepted
    webhook = ids_per_threshold([(a["alert_id"], a["scope"]["client_id"], a["thresholds"]) for a in accepted])
    log.warning(
        "two workers: %d events (%d re-sent); crossings %d; ledger alerts %d; topic messages %d (%d distinct); "
        "webhook accepted %d (%d distinct)",
        len(unique), len(stream) - len(unique), expected, len(rows), len(records),
        len({r["alert_id"] for r in records}), len(accepted), len({a["alert_id"] for a in accepted}),
    )  # fmt: skip
    keys = {(client, f"pct:{p}") for client in per_client for p in PERCENTS}
    for name, channel in (("ledger", ledger), ("kafka", kafka_ids), ("webhook", webhook)):
        assert set(channel) == keys, f"{name}: every crossing alerted"
        assert all(len(ids) == 1 for ids in channel.values()), f"{name}: one alert id per crossing"
        assert channel == ledger, f"{name}: the ledger's alert ids"
    assert len(records) == len({r["alert_id"] for r in records}), "no crash: no repeat on the topic"
    assert len(accepted) == len({a["alert_id"] for a in accepted}), "nor the webhook"
