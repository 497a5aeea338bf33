"""The local broker from the Kafka jars: it answers, start() is idempotent, messages go round trip."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable

import pytest
from confluent_kafka import Consumer, Producer
from confluent_kafka.admin import AdminClient

from tests.fixtures.kafka import KafkaBroker
from usagemeter.local.kafka import LocalKafka

pytestmark = pytest.mark.kafka


def _local(broker: KafkaBroker) -> LocalKafka:
    if broker.local is None:
        pytest.skip("USAGEMETER_TEST_BOOTSTRAP points at an external broker")
    return broker.local


def test_broker_answers(kafka_broker: KafkaBroker) -> None:
    metadata = AdminClient({"bootstrap.servers": kafka_broker.bootstrap_servers}).list_topics(timeout=10)
    assert len(metadata.brokers) == 1


def test_start_is_idempotent(kafka_broker: KafkaBroker) -> None:
    kafka = _local(kafka_broker)
    before = kafka.status()
    began = time.monotonic()
    again = kafka.start()
    assert again.already_running
    assert again.pid == before.pid
    assert time.monotonic() - began < 5


def test_start_from_another_launcher_finds_the_running_broker(kafka_broker: KafkaBroker) -> None:
    kafka = _local(kafka_broker)
    other = LocalKafka(
        kafka.data_dir, port=kafka.port, controller_port=kafka.controller_port, cache_dir=kafka.cache_dir
    )
    result = other.start()
    assert result.already_running
    assert result.pid == kafka.status().pid
    assert other.status().answering


def test_produce_consume_round_trip(kafka_broker: KafkaBroker, kafka_topic: Callable[..., str]) -> None:
    topic = kafka_topic(partitions=4)
    sent = {f"key-{i}".encode(): f"value-{i}".encode() for i in range(200)}
    producer = Producer({"bootstrap.servers": kafka_broker.bootstrap_servers, "enable.idempotence": True})
    for key, value in sent.items():
        producer.produce(topic, value=value, key=key)
    assert producer.flush(30) == 0

    consumer = Consumer(
        {
            "bootstrap.servers": kafka_broker.bootstrap_servers,
            "group.id": f"test-{uuid.uuid4().hex[:8]}",
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
        }
    )
    consumer.subscribe([topic])
    received: dict[bytes, bytes] = {}
    partitions: set[int] = set()
    deadline = time.monotonic() + 30
    try:
        while len(received) < len(sent) and time.monotonic() < deadline:
            for message in consumer.consume(num_messages=500, timeout=1.0):
                assert message.error() is None, message.error()
                got_key, got_value, partition = message.key(), message.value(), message.partition()
                assert got_key is not None and got_value is not None and partition is not None
                received[got_key] = got_value
                partitions.add(partition)
    finally:
        consumer.close()
    assert received == sent
    assert len(partitions) == 4
