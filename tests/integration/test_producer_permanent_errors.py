"""Errors retrying cannot fix, and a topic that does not exist yet, with the real broker.

A message the broker will never take (too large, say) must be counted as failed and skipped: it must
not hold up the events behind it, live or in the spool. A topic that does not exist yet is not such an
error (it may be created): its events are spooled, counted once, and close() does not wait for them.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest
from confluent_kafka.admin import AdminClient
from confluent_kafka.cimpl import NewTopic

from tests.fixtures.kafka import KafkaBroker, keys_in_topic
from usagemeter.producers import UsageEmitter
from usagemeter.producers.spool import Spool
from usagemeter.schemas import CURRENT
from usagemeter.schemas.wire import encode

pytestmark = pytest.mark.kafka


def wait_for(predicate: Callable[[], bool], timeout_s: float = 30.0) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.1)
    return predicate()


def event(i: int, **extra: object) -> tuple[bytes, bytes]:
    """A valid encoded event as (key, value), the way the emitter spools it."""
    defaults = {field["name"]: field.get("default") for field in CURRENT.plain["fields"]}
    event_id = str(uuid.uuid4())
    record = defaults | {"event_id": event_id, "event_time": time.time_ns() // 1000, "client_id": "acme"}
    record |= {"model": "gpt-4o-mini", "input_tokens": i} | extra
    return event_id.encode(), encode(CURRENT, record)


def test_an_oversized_spooled_event_does_not_stop_the_replay(
    kafka_broker: KafkaBroker, kafka_topic: Callable[..., str], tmp_path: Path
) -> None:
    """The brief's case: 500 good events behind one over ``message.max.bytes`` were stuck for good."""
    topic = kafka_topic()
    spool_dir = tmp_path / "spool"
    good = [event(i) for i in range(500)]
    huge = event(0, error="x" * 1_100_000)  # over librdkafka's default message.max.bytes (1,000,000)
    writer = Spool(spool_dir)
    assert writer.append([*good[:250], huge, *good[250:]]) == 501
    writer.close()

    emitter = UsageEmitter(kafka_broker.bootstrap_servers, topic=topic, client_id="acme", spool_dir=spool_dir)
    try:
        assert wait_for(lambda: emitter.stats().replayed + emitter.stats().failed >= 501), emitter.stats()
    finally:
        emitter.close(timeout_s=5)
    stats = emitter.stats()
    assert (stats.replayed, stats.failed, stats.dropped) == (500, 1, 0), stats
    assert not any(spool_dir.glob("*.seg")), "the replayed segment must be deleted"
    ids = {key.decode() for key, _ in good}
    assert keys_in_topic(kafka_broker.bootstrap_servers, topic, ids) >= ids


def test_an_event_the_broker_refuses_as_too_large_is_failed_not_spooled(
    kafka_broker: KafkaBroker, tmp_path: Path
) -> None:
    """The broker's own limit (the topic's ``max.message.bytes``) below the producer's: the delivery report
    says MSG_SIZE_TOO_LARGE, a permanent error, so the event is failed and the ones after it delivered."""
    topic = f"test-small-{uuid.uuid4().hex[:12]}"
    admin = AdminClient({"bootstrap.servers": kafka_broker.bootstrap_servers})
    new = NewTopic(topic, num_partitions=1, replication_factor=1, config={"max.message.bytes": "100000"})
    admin.create_topics([new])[topic].result(timeout=30)
    try:
        spool_dir = tmp_path / "spool"
        # No compression: lz4 would shrink the repeated bytes below the topic's limit.
        config = {"compression.type": "none"}
        emitter = UsageEmitter(
            kafka_broker.bootstrap_servers, topic=topic, client_id="acme", spool_dir=spool_dir, kafka_config=config
        )
        try:
            big = emitter.emit("gpt-4o-mini", error="x" * 150_000)
            assert big is not None
            assert wait_for(lambda: emitter.stats().failed == 1), emitter.stats()
            ids = {emitter.emit("gpt-4o-mini", input_tokens=i) for i in range(200)}
            assert emitter.flush(10) == 0
        finally:
            emitter.close(timeout_s=5)
        stats = emitter.stats()
        counts = (stats.emitted, stats.delivered, stats.failed, stats.spooled, stats.dropped)
        assert counts == (201, 200, 1, 0, 0), stats
        assert not any(spool_dir.glob("*.seg"))
        expected = {i for i in ids if i is not None}
        assert keys_in_topic(kafka_broker.bootstrap_servers, topic, expected) >= expected
    finally:
        admin.delete_topics([topic])


def test_a_topic_that_does_not_exist_spools_once_and_close_does_not_wait(
    kafka_broker: KafkaBroker, tmp_path: Path
) -> None:
    """Auto-create is off in the local broker: the events cannot be delivered, but the topic may appear
    later, so they are spooled (counted once: not failed as well) and replayed once it exists."""
    topic = f"test-missing-{uuid.uuid4().hex[:12]}"
    spool_dir = tmp_path / "spool"
    first = UsageEmitter(kafka_broker.bootstrap_servers, topic=topic, client_id="acme", spool_dir=spool_dir)
    ids = {first.emit("gpt-4o-mini", input_tokens=i) for i in range(9)}
    began = time.monotonic()
    first.close(timeout_s=10)
    closing_s = time.monotonic() - began
    stats = first.stats()
    assert closing_s < 5.0, f"close() took {closing_s:.1f} s for a topic that does not exist"
    assert (stats.emitted, stats.spooled, stats.failed, stats.delivered, stats.dropped) == (9, 9, 0, 0, 0), stats

    admin = AdminClient({"bootstrap.servers": kafka_broker.bootstrap_servers})
    admin.create_topics([NewTopic(topic, num_partitions=1, replication_factor=1)])[topic].result(timeout=30)
    try:
        second = UsageEmitter(kafka_broker.bootstrap_servers, topic=topic, client_id="acme", spool_dir=spool_dir)
        try:
            assert wait_for(lambda: second.stats().replayed >= 9), second.stats()
        finally:
            second.close(timeout_s=5)
        assert (second.stats().replayed, second.stats().failed) == (9, 0), second.stats()
        expected = {i for i in ids if i is not None}
        assert keys_in_topic(kafka_broker.bootstrap_servers, topic, expected) >= expected
    finally:
        admin.delete_topics([topic])
