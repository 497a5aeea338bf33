"""Budget alerts exactly once per crossing with the worker SIGKILLed again and again around the crossings.

Four budgets (one per client, rolling 7 days, counted in requests) whose limits are exactly the requests
each client sends, with thresholds every 10 %: forty crossings, the last one reached by the very last
event. Producers re-send 10 % of the events; the webhook receiver refuses the first two attempts of every
alert. The worker (embedded engine, alerter beside it) is SIGKILLed ``KILLS`` times at random moments.

Then, per (budget, threshold): exactly one alert id in the ledger, on the alerts topic and at the webhook,
the same one; repeats of that id (a crash between a delivery and its record) are counted and reported.
"""

from __future__ import annotations

import json
import logging
import os
import random
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from tests.faults.alerts import ids_per_threshold, topic_alerts
from tests.faults.traffic import events, lag, produce, with_resends
from tests.faults.worker_process import WorkerProcess
from tests.fixtures.clickhouse import store_environment
from tests.fixtures.webhook import SECRET, Receiver
from usagemeter.consumers.settings import ClickHouseSettings

pytestmark = [pytest.mark.kafka, pytest.mark.clickhouse]
log = logging.getLogger(__name__)

FULL = os.environ.get("USAGEMETER_FAULT_FULL") == "1"
EVENTS = 200_000 if FULL else 40_000
KILLS = 20
PARTITIONS = 4
THRESHOLDS = [f"{p}%" for p in range(10, 101, 10)]

_LEDGER = """
import json, sys
import clickhouse_connect
client = clickhouse_connect.get_client(dsn=sys.argv[1], database=sys.argv[2])
rows = client.query(
    "SELECT alert_id, budget_id, kind, thresholds FROM budget_alerts FINAL WHERE kind = 'crossed'"
).result_rows
ids = dict(client.query("SELECT budget_id, client_id FROM budget_versions").result_rows)
print(json.dumps([[a, ids[b], k, list(t)] for a, b, k, t in rows]))
"""


def _usagemeter(env: dict[str, str], *args: str) -> str:
    command = [sys.executable, "-c", "from usagemeter.cli.app import main; main()", *args]
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_each_crossing_alerts_once_on_every_channel_through_sigkills(
    kafka_broker: Any,
    kafka_topic: Any,
    webhook_receiver: Receiver,
    worker_store: ClickHouseSettings,
    tmp_path: Path,
) -> None:
    rng = random.Random(40)
    bootstrap = kafka_broker.bootstrap_servers
    topic, dlq_topic, alerts_topic = kafka_topic(PARTITIONS), kafka_topic(1), kafka_topic(1)
    group = f"alert-kills-{topic}"
    unique = events(EVENTS, seed=41)
    stream = with_resends(unique, 0.10, seed=42)
    per_client = Counter(e.client for e in unique)
    env = {
        **os.environ,
        **store_environment(worker_store),
        "USAGEMETER_KAFKA_BOOTSTRAP_SERVERS": bootstrap,
        "USAGEMETER_KAFKA_TOPIC": topic,
        "USAGEMETER_KAFKA_DLQ_TOPIC": dlq_topic,
        "USAGEMETER_KAFKA_GROUP_ID": group,
        "USAGEMETER_KAFKA_GROUP_INSTANCE_ID": "alert-fault-worker",
        "USAGEMETER_WORKER_MAX_BATCH_ROWS": "5000",
        "USAGEMETER_WORKER_MAX_BATCH_WAIT_S": "0.3",
        "USAGEMETER_ALERTS_TOPIC": alerts_topic,
        "USAGEMETER_ALERTS_WEBHOOK_SECRET": SECRET,
        "USAGEMETER_ALERTS_BACKOFF_INITIAL_S": "0.2",
        "USAGEMETER_ALERTS_BACKOFF_MAX_S": "1",
        "USAGEMETER_ALERTS_MAX_ATTEMPTS": "50",
        "USAGEMETER_ALERTS_SWEEP_INTERVAL_S": "5",
    }
    webhook_receiver.fail_first = 2
    _usagemeter(env, "migrate")
    for client, count in per_client.items():
        thresholds = [arg for t in THRESHOLDS for arg in ("--threshold", t)]
        channels = ["--channel", "log", "--channel", "kafka", "--channel", f"webhook:{webhook_receiver.url}"]
        _usagemeter(
            env, "budgets", "create", "--direct", "--client", client, "--unit", "requests", "--limit", str(count),
            "--period", "rolling", "--rolling-days", "7", *thresholds, *channels,
        )  # fmt: skip
    expected = len(per_client) * len(THRESHOLDS)

    worker = WorkerProcess(env, tmp_path)
    producing = threading.Thread(target=produce, args=(bootstrap, topic, stream, KILLS * 2.0), daemon=True)
    producing.start()
    for _ in range(KILLS):
        proc = worker.start()
        time.sleep(rng.uniform(1.0, 4.0))
        proc.send_signal(signal.SIGKILL)
        proc.wait(30)
    producing.join(600)
    assert not producing.is_alive()

    final = worker.start()
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        assert final.poll() is None, f"the worker exited on its own:\n{worker.log_tail()}"
        delivered = {(a["scope"]["client_id"], t) for a in webhook_receiver.accepted for t in a["thresholds"]}
        if not lag(bootstrap, topic, group, PARTITIONS) and worker.is_up() and len(delivered) >= expected:
            break
        time.sleep(1.0)
    time.sleep(2.0)  # any repeat in flight arrives
    final.send_signal(signal.SIGTERM)
    assert final.wait(120) == 0, worker.log_tail()

    reading = [sys.executable, "-c", _LEDGER, worker_store.dsn, worker_store.database]
    ledger_rows = json.loads(subprocess.run(reading, capture_output=True, text=True, check=True).stdout)
    topic_records = topic_alerts(bootstrap, alerts_topic, expected)

    ledger = ids_per_threshold([(a, c, t) for a, c, _, t in ledger_rows])
    kafka = ids_per_threshold([(r["alert_id"], r["client_id"], r["thresholds"]) for r in topic_records])
    webhook = ids_per_threshold(
        [(a["alert_id"], a["scope"]["client_id"], a["thresholds"]) for a in webhook_receiver.accepted]
    )
    keys = {(client, f"pct:{t[:-1]}") for client in per_client for t in THRESHOLDS}
    log.warning(
        "alert kill test: %d events (%d re-sent), %d kills; crossings %d; ledger alerts %d; topic messages %d "
        "(%d distinct); webhook accepted %d (%d distinct), attempts %d, bad signatures %d",
        len(unique), len(stream) - len(unique), KILLS, expected, len(ledger_rows), len(topic_records),
        len({r["alert_id"] for r in topic_records}), len(webhook_receiver.accepted),
        len({a["alert_id"] for a in webhook_receiver.accepted}), sum(webhook_receiver.attempts.values()),
        webhook_receiver.bad_signatures,
    )  # fmt: skip
    for name, channel in (("ledger", ledger), ("kafka", kafka), ("webhook", webhook)):
        assert set(channel) == keys, f"{name}: every crossing alerted"
        assert all(len(ids) == 1 for ids in channel.values()), f"{name}: one alert id per crossing"
        assert channel == ledger, f"{name}: the ledger's alert ids"
    assert webhook_receiver.bad_signatures == 0
