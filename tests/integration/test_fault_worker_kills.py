"""Fault suite 1 and 2: the worker SIGKILLed at random points again and again, in embedded mode (the worker
process hosts the engine), while producers re-send 10 % of the events with the same ``event_id``.

Afterwards the aggregates must equal, to the last token and the last 1e-18 dollar, those of the unique
events inserted exactly once into a fresh store. That also shows an acknowledged insert survives the
process being killed: offsets are committed only after the insert, so a lost insert would be a lost event.

CI runs 60,000 events and 5 kills; ``USAGEMETER_FAULT_FULL=1`` (``bash tests/faults.sh``) runs
1,000,000 events and 20 kills.
"""

from __future__ import annotations

import logging
import os
import random
import signal
import subprocess
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from clickhouse_connect.driver.client import Client

from tests.faults.traffic import (
    aggregates_in_process,
    as_rows,
    events,
    expected_counts,
    lag,
    produce,
    reference_aggregates,
    with_resends,
)
from tests.faults.worker_process import WorkerProcess
from tests.fixtures.clickhouse import store_environment
from usagemeter.consumers.settings import ClickHouseSettings
from usagemeter.pricing import pricebook

pytestmark = pytest.mark.kafka
log = logging.getLogger(__name__)

FULL = os.environ.get("USAGEMETER_FAULT_FULL") == "1"
EVENTS = 1_000_000 if FULL else 60_000
KILLS = 20 if FULL else 5
RESEND_SHARE = 0.10
PARTITIONS = 4


def test_sigkilled_worker_counts_every_event_exactly_once(
    kafka_broker: Any, kafka_topic: Any, clickhouse: Client, worker_store: ClickHouseSettings, tmp_path: Path
) -> None:
    rng = random.Random(20)
    bootstrap = kafka_broker.bootstrap_servers
    topic, dlq_topic = kafka_topic(partitions=PARTITIONS), kafka_topic(partitions=1)
    group = f"kills-{topic}"
    unique = events(EVENTS, seed=21)
    stream = with_resends(unique, RESEND_SHARE, seed=22)
    worker = WorkerProcess(
        {
            **os.environ,
            **store_environment(worker_store),
            "USAGEMETER_KAFKA_BOOTSTRAP_SERVERS": bootstrap,
            "USAGEMETER_KAFKA_TOPIC": topic,
            "USAGEMETER_KAFKA_DLQ_TOPIC": dlq_topic,
            "USAGEMETER_KAFKA_GROUP_ID": group,
            "USAGEMETER_KAFKA_GROUP_INSTANCE_ID": "fault-suite-worker",
            # Smaller batches than the default: more cuts, more inserts in flight to be killed in.
            "USAGEMETER_WORKER_MAX_BATCH_ROWS": "20000",
            "USAGEMETER_WORKER_MAX_BATCH_WAIT_S": "0.5",
        },
        tmp_path,
    )
    producing = threading.Thread(target=produce, args=(bootstrap, topic, stream, KILLS * 3.5), daemon=True)
    started = time.monotonic()
    producing.start()

    progress = []
    for _ in range(KILLS):
        proc = worker.start()
        time.sleep(rng.uniform(1.5, 6.0))  # start-up is ~2 s: some kills land in it, most in the flow
        proc.send_signal(signal.SIGKILL)
        proc.wait(30)
        progress.append(lag(bootstrap, topic, group, PARTITIONS))
    producing.join(600)
    assert not producing.is_alive()

    final = worker.start()
    deadline = time.monotonic() + 600
    while (lag(bootstrap, topic, group, PARTITIONS) or not worker.is_up()) and time.monotonic() < deadline:
        assert final.poll() is None, f"the worker exited on its own:\n{worker.log_tail()}"
        time.sleep(1.0)
    final.send_signal(signal.SIGTERM)
    try:
        exit_code: int | None = final.wait(120)
    except subprocess.TimeoutExpired:
        final.kill()
        exit_code = None
    elapsed = time.monotonic() - started

    got = aggregates_in_process(worker_store.dsn, worker_store.database)
    pricebook.load(clickhouse)
    reference = as_rows(reference_aggregates(clickhouse, unique))
    log.warning(
        "fault suite kills: %d events (%d re-sent), %d kills, lag after each kill %s, %.0f s, %d rows stored",
        len(unique),
        len(stream) - len(unique),
        KILLS,
        progress,
        elapsed,
        got["events"],
    )
    assert got["events"] == got["distinct_ids"] == len(unique), "each event stored once"
    counts = {(row[0], row[1]): [int(x) for x in row[2:9]] for row in got["usage_15m_by_user"]}
    assert counts == expected_counts(unique), "events, requests and tokens per client and model"
    assert got["usage_15m_by_user"] == reference, "costs to the last decimal, as if each was inserted once"
    assert got["usage_15m_by_model"] == reference
    # Last: a wrong exit code must not hide a wrong count.
    assert exit_code == 0, f"SIGTERM drains, commits and exits 0:\n{worker.log_tail()}"
