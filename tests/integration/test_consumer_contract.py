"""One contract, two consumers: what the worker relies on from Kafka holds for the in-memory consumer too.

Each case runs against ``tests/fixtures/memory_kafka.py`` and against the real broker (arroyo's pattern),
so the unit tests built on the in-memory consumer test the worker against the behaviour it really meets.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import pytest
from confluent_kafka import OFFSET_INVALID, Message, Producer, TopicPartition

from tests.fixtures.kafka import KafkaBroker
from tests.fixtures.memory_kafka import MemoryBroker, MemoryConsumer
from usagemeter.consumers.pipeline import kafka_consumer
from usagemeter.consumers.ports import ConsumerPort
from usagemeter.consumers.settings import KafkaSettings

PARTITIONS = 2


@dataclass
class Backend:
    topic: str
    produce: Callable[[int, bytes], None]
    """Appends a value to a partition, acknowledged when it returns."""
    consumer: Callable[[str], ConsumerPort]
    """A new member of the named group."""


def _memory() -> Backend:
    broker = MemoryBroker()
    topic = broker.create_topic("contract", PARTITIONS)

    def produce(partition: int, value: bytes) -> None:
        broker.produce(topic, partition, value)

    return Backend(topic, produce, lambda name: MemoryConsumer(broker, name))


def _kafka(broker: KafkaBroker, topic: str) -> Backend:
    producer = Producer({"bootstrap.servers": broker.bootstrap_servers, "acks": "all"})

    def produce(partition: int, value: bytes) -> None:
        producer.produce(topic, value, partition=partition)
        assert producer.flush(30) == 0

    def consumer(group: str) -> ConsumerPort:
        return kafka_consumer(KafkaSettings(bootstrap_servers=broker.bootstrap_servers, topic=topic, group_id=group))

    return Backend(topic, produce, consumer)


@pytest.fixture(params=[pytest.param("memory"), pytest.param("kafka", marks=pytest.mark.kafka)])
def backend(request: pytest.FixtureRequest) -> Iterator[Backend]:
    if request.param == "memory":
        yield _memory()
        return
    make_topic: Callable[..., str] = request.getfixturevalue("kafka_topic")
    yield _kafka(request.getfixturevalue("kafka_broker"), make_topic(partitions=PARTITIONS))


def drain(consumer: ConsumerPort, count: int, tries: int = 60) -> list[Message]:
    """Up to ``count`` messages, consuming for at most ``tries`` half-second waits."""
    got: list[Message] = []
    for _ in range(tries):
        if len(got) >= count:
            break
        got.extend(m for m in consumer.consume(count - len(got), timeout=0.5) if m.error() is None)
    return got


def by_partition(messages: list[Message]) -> dict[int, list[bytes | None]]:
    out: dict[int, list[bytes | None]] = {}
    for m in messages:
        out.setdefault(m.partition() or 0, []).append(m.value())
    return out


def group() -> str:
    return f"contract-{uuid.uuid4().hex[:8]}"


def test_what_was_produced_is_consumed_in_order_per_partition(backend: Backend) -> None:
    for i in range(6):
        backend.produce(i % PARTITIONS, b"v%d" % i)
    consumer = backend.consumer(group())
    consumer.subscribe([backend.topic])
    try:
        assert by_partition(drain(consumer, 6)) == {0: [b"v0", b"v2", b"v4"], 1: [b"v1", b"v3", b"v5"]}
    finally:
        consumer.close()


def test_a_new_member_resumes_after_the_committed_offsets(backend: Backend) -> None:
    for i in range(4):
        backend.produce(0, b"v%d" % i)
    name = group()
    first = backend.consumer(name)
    first.subscribe([backend.topic])
    assert len(drain(first, 4)) == 4
    first.commit(offsets=[TopicPartition(backend.topic, 0, 2)], asynchronous=False)
    first.close()

    second = backend.consumer(name)
    second.subscribe([backend.topic])
    try:
        assert [m.value() for m in drain(second, 2)] == [b"v2", b"v3"]
    finally:
        second.close()


def test_pause_stops_delivery_and_resume_restarts_it(backend: Backend) -> None:
    backend.produce(0, b"before")
    consumer = backend.consumer(group())
    consumer.subscribe([backend.topic])
    try:
        assert len(drain(consumer, 1)) == 1
        paused = consumer.assignment()
        consumer.pause(paused)
        backend.produce(0, b"while paused")
        assert drain(consumer, 1, tries=4) == []
        consumer.resume(paused)
        assert [m.value() for m in drain(consumer, 1)] == [b"while paused"]
    finally:
        consumer.close()


def test_position_is_the_offset_after_the_last_consumed_and_committed_is_negative_before_any_commit(
    backend: Backend,
) -> None:
    for i in range(3):
        backend.produce(1, b"v%d" % i)
    consumer = backend.consumer(group())
    consumer.subscribe([backend.topic])
    try:
        assert len(drain(consumer, 3)) == 3
        where = [TopicPartition(backend.topic, 1)]
        assert [tp.offset for tp in consumer.position(where)] == [3]
        assert [tp.offset for tp in consumer.committed(where, timeout=30)] == [OFFSET_INVALID]
        assert consumer.committed(where, timeout=30)[0].offset < 0
    finally:
        consumer.close()


def test_subscribing_calls_on_assign_with_every_partition_of_a_single_member(backend: Backend) -> None:
    assigned: list[int] = []
    backend.produce(0, b"x")
    consumer = backend.consumer(group())
    consumer.subscribe([backend.topic], on_assign=lambda _c, tps: assigned.extend(tp.partition for tp in tps))
    try:
        drain(consumer, 1)
        assert sorted(assigned) == list(range(PARTITIONS))
    finally:
        consumer.close()
