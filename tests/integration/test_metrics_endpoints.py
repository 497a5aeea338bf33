"""Each metrics endpoint serves the listed series, scraped over HTTP: the worker's (on the real broker and engine,
values equal to the worker's own totals), the API's ``GET /metrics``, and the ``usagemeter alerter`` command's.

The emitter's collector is in tests/unit/test_emitter_metrics.py; the worker command's endpoint is scraped by
tests/integration/test_worker_idle.py, which measures that an idle worker with it on stays idle.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from clickhouse_connect.driver.client import Client
from confluent_kafka import Producer
from prometheus_client.parser import text_string_to_metric_families

from tests.fixtures.api import api_client, api_settings
from usagemeter.api.app import create_app
from usagemeter.cli.metrics_server import MetricsServer, process_registry
from usagemeter.consumers.metrics import WorkerMetrics
from usagemeter.consumers.pipeline import build_worker
from usagemeter.consumers.settings import KafkaSettings, MetricsSettings, WorkerSettings
from usagemeter.schemas import CURRENT
from usagemeter.schemas.wire import encode

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def parse(text: str) -> Samples:
    """Every sample of a scrape: (name, labels) -> value."""
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def scrape(port: int) -> Samples:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as answer:
        return parse(answer.read().decode())


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples[(name, frozenset(labels.items()))]


def names(samples: Samples) -> set[str]:
    return {name for name, _ in samples}


def _event(event_id: str) -> bytes:
    record = {"event_id": event_id, "event_time": time.time_ns() // 1000, "client_id": "acme", "model": "gpt-4o"}
    return encode(CURRENT, record)


@pytest.mark.kafka
@pytest.mark.clickhouse
def test_the_worker_endpoint_counts_what_the_worker_did(
    clickhouse: Client, kafka_broker: Any, kafka_topic: Callable[..., str]
) -> None:
    topic, dlq_topic = kafka_topic(partitions=2), kafka_topic(partitions=1)
    group = f"g-{topic}"
    registry = process_registry()
    worker = build_worker(
        KafkaSettings(bootstrap_servers=kafka_broker.bootstrap_servers, topic=topic, dlq_topic=dlq_topic,
                      group_id=group),
        WorkerSettings(max_batch_rows=1_000, max_batch_wait_s=0.3),
        clickhouse,
        metrics=WorkerMetrics(registry, consumer_group=group),
    )  # fmt: skip
    port = free_port()
    server = MetricsServer.start(registry, MetricsSettings(port=port))
    assert server is not None
    producer = Producer({"bootstrap.servers": kafka_broker.bootstrap_servers})
    ids = [str(uuid.uuid4()) for _ in range(30)]
    for event_id in ids:
        producer.produce(topic, _event(event_id), event_id.encode())
    producer.produce(topic, _event(ids[0]), ids[0].encode())  # a re-send, most likely in the same batch
    producer.produce(topic, b"not avro", b"bad-1")
    assert producer.flush(30) == 0

    stop = threading.Event()
    runner = threading.Thread(target=worker.run, args=(stop,), daemon=True)
    runner.start()
    try:
        _wait(lambda: worker.totals["inserted"] == 30 and worker.totals["dead_lettered"] == 1)
        producer.produce(topic, _event(ids[1]), ids[1].encode())  # a re-send of an inserted event: next batch
        assert producer.flush(30) == 0
        _wait(lambda: worker.totals["duplicates"] == 2, lambda: worker.totals)  # across batches included
        samples = scrape(port)
    finally:
        stop.set()
        runner.join(60)
        server.stop()

    totals = worker.totals
    assert value(samples, "usagemeter_worker_consumed_total") == totals["consumed"] == 33
    assert value(samples, "usagemeter_worker_inserted_total") == 30
    assert value(samples, "usagemeter_worker_dead_lettered_total", reason="not_avro") == 1
    in_batch = totals["duplicates"] - totals["duplicates_across_batches"]
    assert value(samples, "usagemeter_worker_deduplicated_total", where="in_batch") == in_batch
    assert value(samples, "usagemeter_worker_deduplicated_total", where="across_batches") == (
        totals["duplicates_across_batches"]
    )
    assert totals["duplicates_across_batches"] >= 1  # the re-send after the first commit
    batches = value(samples, "usagemeter_worker_batches_total")
    assert batches == totals["batches"] >= 2
    assert value(samples, "usagemeter_worker_batch_rows_count") == batches
    assert value(samples, "usagemeter_worker_batch_rows_sum") == 33
    assert value(samples, "usagemeter_worker_insert_duration_seconds_count") == batches
    assert 0 < value(samples, "usagemeter_worker_insert_duration_seconds_sum") < 60
    delays = value(samples, "usagemeter_worker_ingest_delay_seconds_count")
    assert delays >= batches  # one per inserted block: a batch holds one block per partition at least
    assert 0 <= value(samples, "usagemeter_worker_ingest_delay_seconds_sum") < 60 * delays
    lags = {dict(labels)["partition"]: v for (name, labels), v in samples.items()
            if name == "usagemeter_consumergroup_lag"}  # fmt: skip
    assert set(lags) == {"0", "1"}, "both partitions had events"
    assert set(lags.values()) == {0.0}, "everything produced was committed"
    assert value(samples, "usagemeter_consumergroup_lag", consumergroup=group, topic=topic, partition="0") == 0
    assert "usagemeter_process_resident_memory_bytes" in names(samples)


def _wait(done: Callable[[], bool], describe: Callable[[], object] = str, timeout_s: float = 60) -> None:
    deadline = time.monotonic() + timeout_s
    while not done():
        assert time.monotonic() < deadline, f"the worker did not get there in time: {describe()}"
        time.sleep(0.05)


@pytest.mark.clickhouse
def test_the_api_serves_metrics_without_a_key_and_counts_requests_by_route(clickhouse: Client) -> None:
    registry = process_registry()
    api = api_client(create_app(lambda: clickhouse, settings=api_settings(), metrics_registry=registry))
    assert api.get("/healthz").status_code == 200
    assert api.get("/v1/budgets/b_123").status_code == 401  # no key
    answer = api.get("/metrics")
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("text/plain")
    samples = parse(answer.text)
    assert value(samples, "usagemeter_api_requests_total", route="/healthz", method="GET", status="200") == 1
    by_template = {"route": "/v1/budgets/{budget_id}", "method": "GET", "status": "401"}
    assert value(samples, "usagemeter_api_requests_total", **by_template) == 1, "labelled by template, not id"
    assert value(samples, "usagemeter_api_request_duration_seconds_count", route="/healthz", method="GET") == 1
    assert not any("b_123" in str(labels) for _, labels in samples)


@pytest.mark.clickhouse
def test_the_alerter_command_serves_its_series(tmp_path: Path) -> None:
    port = free_port()
    env = {
        **os.environ,
        "USAGEMETER_CLICKHOUSE_DSN": f"chdb:///{tmp_path / 'store'}",
        "USAGEMETER_KAFKA_BOOTSTRAP_SERVERS": "127.0.0.1:1",  # the alerter needs Kafka only for a kafka channel
        "USAGEMETER_METRICS_PORT": str(port),
    }
    log = tmp_path / "alerter.log"
    with log.open("wb") as out:
        alerter = subprocess.Popen(
            [sys.executable, "-c", "from usagemeter.cli.app import main; main()", "alerter"],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        samples = _scrape_when_evaluated(port, alerter, log)
    finally:
        alerter.send_signal(signal.SIGTERM)
        code = alerter.wait(60)
    for channel in ("log", "kafka", "webhook"):
        assert value(samples, "usagemeter_alerts_sent_total", channel=channel) == 0
        assert value(samples, "usagemeter_alerts_failed_total", channel=channel) == 0
    assert value(samples, "usagemeter_budget_evaluation_duration_seconds_count", mode="all") >= 1
    assert not any(name.startswith("usagemeter_worker_") for name in names(samples)), "no worker in this process"
    assert code == 0, log.read_text()[-2000:]


def _scrape_when_evaluated(port: int, process: subprocess.Popen[bytes], log: Path, timeout_s: float = 120) -> Samples:
    """The first scrape after the alerter's start-up sweep (it migrates a new store first)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        assert process.poll() is None, f"the alerter exited:\n{log.read_text()[-2000:]}"
        try:
            samples = scrape(port)
        except OSError:
            time.sleep(0.2)
            continue
        if samples.get(("usagemeter_budget_evaluation_duration_seconds_count", frozenset({("mode", "all")}))):
            return samples
        time.sleep(0.2)
    raise AssertionError(f"no evaluation within {timeout_s} s:\n{log.read_text()[-2000:]}")
