"""An idle worker stays idle, with the broker up or gone, and still inserts a lone event within its batch wait.

Measured before the fix: ``usagemeter serve`` with no traffic used a whole core (its poll timeout was
derived from an empty batch's age, so it polled with timeout 0 in a loop). The worker runs as an
operator runs it, in a process of its own, whose CPU time is read from /proc, with its metrics endpoint on
(scraped once the lone event is in: the command's own endpoint counts it).
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
from confluent_kafka import Producer

from tests.integration.test_metrics_endpoints import free_port, scrape, value
from usagemeter.local.kafka import LocalKafka, create_topic
from usagemeter.schemas import CURRENT
from usagemeter.schemas.wire import encode

pytestmark = [pytest.mark.kafka, pytest.mark.clickhouse]

IDLE_SHARE = 0.02
"""At most 2 % of one core while nothing arrives."""
MAX_BATCH_WAIT_S = 1.0


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime


def _idle_share(pid: int, seconds: float = 10.0) -> float:
    before = _cpu_seconds(pid)
    time.sleep(seconds)
    return (_cpu_seconds(pid) - before) / seconds


def _wait_for(log: Path, pattern: str, timeout_s: float) -> float:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if re.search(pattern, log.read_text(errors="replace")):
            return time.monotonic()
        time.sleep(0.02)
    raise AssertionError(f"{pattern!r} not in the worker's log within {timeout_s} s:\n{log.read_text()[-3000:]}")


def test_an_idle_worker_uses_under_2_percent_of_a_core_with_the_broker_up_or_gone(tmp_path: Path) -> None:
    kafka = LocalKafka(tmp_path / "kafka", port=0, controller_port=0)
    kafka.start()
    try:
        topic = f"idle-{uuid.uuid4().hex[:8]}"
        create_topic(kafka.bootstrap_servers, topic, 1)
        create_topic(kafka.bootstrap_servers, f"{topic}.dlq", 1)
        env = {
            **os.environ,
            "USAGEMETER_CLICKHOUSE_DSN": f"chdb:///{tmp_path / 'store'}",
            "USAGEMETER_KAFKA_BOOTSTRAP_SERVERS": kafka.bootstrap_servers,
            "USAGEMETER_KAFKA_TOPIC": topic,
            "USAGEMETER_KAFKA_DLQ_TOPIC": f"{topic}.dlq",
            "USAGEMETER_WORKER_MAX_BATCH_WAIT_S": str(MAX_BATCH_WAIT_S),
            "USAGEMETER_METRICS_PORT": str(metrics_port := free_port()),
        }
        log = tmp_path / "worker.log"
        with log.open("wb") as out:
            worker = subprocess.Popen(
                [sys.executable, "-c", "from usagemeter.cli.app import main; main()", "worker"],
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        try:
            _wait_for(log, r"assigned .*" + re.escape(topic), 120)
            time.sleep(1.0)
            broker_up = _idle_share(worker.pid)

            producer = Producer({"bootstrap.servers": kafka.bootstrap_servers, "log_level": 0})
            now_us = time.time_ns() // 1000
            event_id = str(uuid.uuid4())
            record = {"event_id": event_id, "event_time": now_us, "client_id": "acme", "model": "gpt-4o"}
            producer.produce(topic, encode(CURRENT, record), event_id.encode())
            assert producer.flush(10) == 0
            del producer  # before the broker goes: it would try to reconnect for as long as it lives
            sent = time.monotonic()
            inserted = _wait_for(log, r"batch written: 1 inserted", 30) - sent
            samples = scrape(metrics_port)
            assert value(samples, "usagemeter_worker_inserted_total") == 1
            assert value(samples, "usagemeter_consumergroup_lag", consumergroup="usagemeter-worker", topic=topic,
                         partition="0") == 0  # fmt: skip

            kafka.stop()
            time.sleep(10.0)  # librdkafka's reconnect back-off grows to its 10 s maximum meanwhile
            broker_gone = _idle_share(worker.pid)
            assert worker.poll() is None, "the worker keeps running while the broker is away"
        finally:
            worker.send_signal(signal.SIGTERM)
            code: int | None = None
            try:
                code = worker.wait(90)
            except subprocess.TimeoutExpired:
                worker.kill()
        print(f"idle CPU: broker up {broker_up:.2%}, broker gone {broker_gone:.2%}; lone event in {inserted:.2f} s")
        assert broker_up < IDLE_SHARE, f"{broker_up:.1%} of a core with the broker up and nothing to read"
        assert broker_gone < IDLE_SHARE, f"{broker_gone:.1%} of a core with the broker gone"
        # A lone event waits for the batch to be max_batch_wait_s old, then the insert (well under 1 s).
        assert inserted < MAX_BATCH_WAIT_S + 1.0, f"a lone event took {inserted:.2f} s to be inserted"
        assert code == 0, f"SIGTERM with the broker gone ends the worker cleanly:\n{log.read_text()[-2000:]}"
    finally:
        kafka.stop()
