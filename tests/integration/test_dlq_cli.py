"""``usagemeter dlq`` on a real broker: list and count what is there, replay once, refuse to replay twice."""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest
from confluent_kafka import Producer
from typer.testing import CliRunner

from tests.fixtures.kafka import KafkaBroker
from usagemeter.cli.dlq_cmd import app
from usagemeter.consumers.dead_letters import (
    MESSAGE_HEADER,
    OFFSET_HEADER,
    PARTITION_HEADER,
    REASON_HEADER,
    REPLAY_OF_HEADER,
    TOPIC_HEADER,
)
from usagemeter.consumers.dlq.reader import read_topic
from usagemeter.consumers.settings import KafkaSettings

pytestmark = pytest.mark.kafka

REASONS = ["not_avro", "unknown_schema", "not_avro", "invalid_cost", "not_avro"]


@pytest.fixture
def topics(
    kafka_broker: KafkaBroker, kafka_topic: Callable[..., str], monkeypatch: pytest.MonkeyPatch
) -> KafkaSettings:
    """A main topic and a DLQ holding five dead letters as the worker writes them, set in the environment."""
    kafka = KafkaSettings(
        bootstrap_servers=kafka_broker.bootstrap_servers, topic=kafka_topic(2), dlq_topic=kafka_topic(1)
    )
    producer = Producer({"bootstrap.servers": kafka.bootstrap_servers})
    for offset, reason in enumerate(REASONS):
        headers: list[tuple[str, str | bytes | None]] = [
            (REASON_HEADER, reason.encode()),
            (MESSAGE_HEADER, f"why {offset}".encode()),
            (TOPIC_HEADER, kafka.topic.encode()),
            (PARTITION_HEADER, str(offset % 2).encode()),
            (OFFSET_HEADER, str(100 + offset).encode()),
        ]
        producer.produce(kafka.dlq_topic, f"value {offset}".encode(), f"key-{offset}".encode(), headers=headers)
    assert producer.flush(30) == 0
    monkeypatch.setenv("USAGEMETER_KAFKA_BOOTSTRAP_SERVERS", kafka.bootstrap_servers)
    monkeypatch.setenv("USAGEMETER_KAFKA_TOPIC", kafka.topic)
    monkeypatch.setenv("USAGEMETER_KAFKA_DLQ_TOPIC", kafka.dlq_topic)
    return kafka


def _run(*args: str) -> str:
    result = CliRunner().invoke(app, list(args))
    assert result.exit_code == 0, result.output
    return result.output


def test_list_and_count(topics: KafkaSettings) -> None:
    listed = json.loads(_run("list", "--reason", "not_avro", "--format", "json"))
    assert [(x["dlq_offset"], x["key"], x["partition"], x["offset"]) for x in listed] == [
        (0, "key-0", 0, 100), (2, "key-2", 0, 102), (4, "key-4", 0, 104),
    ]  # fmt: skip
    assert listed[0] | {"timestamp": None} == {
        "dlq_partition": 0, "dlq_offset": 0, "timestamp": None, "reason": "not_avro", "message": "why 0",
        "topic": topics.topic, "partition": 0, "offset": 100, "key": "key-0", "value_bytes": 7,
        "replay_of": None, "replayed_to": None,
    }  # fmt: skip
    assert [x["dlq_offset"] for x in json.loads(_run("list", "--offsets", "1-2,4", "--format", "json"))] == [1, 2, 4]
    assert "why 3" in _run("list", "--limit", "4") and "why 4" not in _run("list", "--limit", "4")
    counted = json.loads(_run("count", "--format", "json"))
    assert counted == {"by": "reason", "counts": {"not_avro": 3, "unknown_schema": 1, "invalid_cost": 1},
                       "replayed": {}, "total": 5}  # fmt: skip


def test_replay_once_then_skip_then_force(topics: KafkaSettings) -> None:
    assert "would replay 3 dead letters" in _run("replay", "--reason", "not_avro", "--dry-run")
    assert list(read_topic(topics, topics.topic)) == []

    first = _run("replay", "--reason", "not_avro")
    assert "replayed 3 dead letters" in first and f"0:2 (not_avro) -> {topics.topic}/0:" in first
    delivered = list(read_topic(topics, topics.topic))
    assert sorted((m.key(), m.value(), m.partition()) for m in delivered) == [
        (b"key-0", b"value 0", 0), (b"key-2", b"value 2", 0), (b"key-4", b"value 4", 0),
    ]  # fmt: skip
    assert {dict(m.headers() or [])[REPLAY_OF_HEADER] for m in delivered} == {
        f"{topics.dlq_topic}/0:{offset}".encode() for offset in (0, 2, 4)
    }

    again = _run("replay", "--reason", "not_avro")
    assert "replayed 0 dead letters" in again and "skipped 3 replayed before" in again
    assert len(list(read_topic(topics, topics.topic))) == 3
    assert json.loads(_run("count", "--format", "json"))["replayed"] == {"not_avro": 3}

    assert "replayed 1 dead letters" in _run("replay", "--offsets", "0:4", "--force")
    assert len(list(read_topic(topics, topics.topic))) == 4


def test_replay_wants_a_selection_and_unknown_topics_fail_cleanly(topics: KafkaSettings) -> None:
    refused = CliRunner().invoke(app, ["replay"])
    assert refused.exit_code == 2 and "--all" in refused.output
    missing = CliRunner().invoke(app, ["list", "--dlq-topic", "no-such-topic"])
    assert missing.exit_code == 1 and "does not exist" in missing.output
