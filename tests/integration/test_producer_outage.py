"""A broker outage with a real broker: the emitter keeps every event (spool, replay) and never blocks.

These tests start their own LocalKafka (temporary dir, free ports) so they can stop and restart it
without disturbing the session broker. The outage lasts ``OUTAGE_S`` seconds: 8 by default to keep CI
short (still longer than the shortened ``message.timeout.ms`` below, so events time out and are
spooled), 20 with ``USAGEMETER_FAULT_FULL=1``.
"""

from __future__ import annotations

import logging
import os
import statistics
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.fixtures.kafka import keys_in_topic
from usagemeter.local.kafka import LocalKafka, create_topic
from usagemeter.producers import EmitterStats, UsageEmitter

pytestmark = pytest.mark.kafka

OUTAGE_S = 20.0 if os.environ.get("USAGEMETER_FAULT_FULL") == "1" else 8.0
EMITS_PER_S = 2_000
# A shorter message timeout than the 30 s default so that messages time out (and are spooled) within
# the outage, and a small client queue so that the in-memory queue and its spilling are exercised too.
KAFKA_CONFIG = {"message.timeout.ms": 3_000, "queue.buffering.max.messages": 4_000}

log = logging.getLogger(__name__)


@pytest.fixture(scope="module")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalKafka]:
    """A broker of this module's own, which the tests stop and start."""
    kafka = LocalKafka(tmp_path_factory.mktemp("outage-kafka"), port=0, controller_port=0)
    kafka.start()
    try:
        yield kafka
    finally:
        kafka.stop()


def new_topic(kafka: LocalKafka, partitions: int = 4) -> str:
    name = f"outage-{uuid.uuid4().hex[:12]}"
    create_topic(kafka.bootstrap_servers, name, partitions)
    return name


def wait_until_spool_empty(emitter: UsageEmitter, timeout_s: float = 60.0) -> EmitterStats:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        stats = emitter.stats()
        if stats.spool_bytes == 0 and stats.queued == 0 and stats.spooled > 0:
            return stats
        time.sleep(0.2)
    raise AssertionError(f"the spool was not replayed within {timeout_s} s: {emitter.stats()}")


@dataclass
class Outage:
    """Stops the broker for ``seconds`` on a thread, then starts it again (same dir, same ports)."""

    kafka: LocalKafka
    seconds: float
    began_ns: int = 0
    ended_ns: int = 0

    def run(self) -> None:
        self.began_ns = time.perf_counter_ns()
        self.kafka.stop()
        time.sleep(max(0.0, self.seconds - (time.perf_counter_ns() - self.began_ns) / 1e9))
        self.kafka.start()
        self.ended_ns = time.perf_counter_ns()


def percentile(values: list[int], q: float) -> int:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def test_every_event_emitted_through_an_outage_arrives(broker: LocalKafka, tmp_path: Path) -> None:
    topic = new_topic(broker)
    emitter = UsageEmitter(
        broker.bootstrap_servers, topic=topic, client_id="acme", spool_dir=tmp_path / "spool", kafka_config=KAFKA_CONFIG
    )
    outage = Outage(broker, OUTAGE_S)
    stopper = threading.Thread(target=outage.run)
    emitted: list[str] = []
    timings: list[tuple[int, int]] = []  # (when, how long) per emit, ns

    def emit_for(seconds: float) -> None:
        until = time.monotonic() + seconds
        while time.monotonic() < until:
            for _ in range(EMITS_PER_S // 100):
                started = time.perf_counter_ns()
                event_id = emitter.emit("gpt-4o-mini", provider="openai", input_tokens=100, output_tokens=10)
                timings.append((started, time.perf_counter_ns() - started))
                assert event_id is not None
                emitted.append(event_id)
            time.sleep(0.01)

    emit_for(2.0)
    stopper.start()
    while stopper.is_alive():
        emit_for(0.2)
    stopper.join()
    emit_for(2.0)

    stats = wait_until_spool_empty(emitter)
    assert emitter.flush(30) == 0
    emitter.close()
    final = emitter.stats()

    during = [took for at, took in timings if outage.began_ns <= at <= outage.ended_ns]
    figures = (
        f"emitted {len(emitted)}, outage {(outage.ended_ns - outage.began_ns) / 1e9:.1f} s "
        f"({len(during)} emits), spooled {final.spooled}, replayed {final.replayed}, dropped {final.dropped}, "
        f"emit p50 {statistics.median(during) / 1e3:.1f} µs, p99 {percentile(during, 0.99) / 1e3:.1f} µs, "
        f"max {max(during) / 1e3:.1f} µs; {final}"
    )
    print(figures)
    log.warning("outage figures: %s", figures)

    assert final.emitted == len(emitted)
    assert final.dropped == 0, figures
    assert final.spooled > 0, figures
    assert final.replayed > 0, figures
    assert stats.spool_corrupt == 0
    assert percentile(during, 0.99) < 1_000_000, figures
    arrived = keys_in_topic(broker.bootstrap_servers, topic, set(emitted))
    missing = set(emitted) - arrived
    assert not missing, f"{len(missing)} of {len(emitted)} events never arrived; {figures}"


def test_events_spooled_by_a_closed_emitter_are_replayed_by_the_next(broker: LocalKafka, tmp_path: Path) -> None:
    topic = new_topic(broker)
    spool_dir = tmp_path / "spool"
    broker.stop()
    try:
        first = UsageEmitter(broker.bootstrap_servers, topic=topic, client_id="acme", spool_dir=spool_dir)
        emitted = [first.emit("gpt-4o-mini", input_tokens=i, output_tokens=1) for i in range(500)]
        began = time.monotonic()
        first.close(timeout_s=3.0)
        closing_s = time.monotonic() - began
        spooled = first.stats()
    finally:
        broker.start()
    assert closing_s < 5.0, f"close took {closing_s:.1f} s with a 3 s timeout"
    assert spooled.spooled == 500, spooled
    assert (spooled.delivered, spooled.dropped) == (0, 0), spooled
    assert any(spool_dir.glob("*.seg"))

    second = UsageEmitter(broker.bootstrap_servers, topic=topic, client_id="acme", spool_dir=spool_dir)
    deadline = time.monotonic() + 60
    while second.stats().replayed < 500 and time.monotonic() < deadline:
        time.sleep(0.2)
    second.close()
    assert second.stats().replayed == 500, second.stats()
    assert not any(spool_dir.glob("*.seg"))
    ids = {event_id for event_id in emitted if event_id is not None}
    assert len(ids) == 500
    assert keys_in_topic(broker.bootstrap_servers, topic, ids) >= ids
