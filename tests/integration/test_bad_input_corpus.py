"""Fault suite, item 5: a corpus of bad inputs mixed into good traffic, on the real broker, the real worker
and the real engine. Every bad message lands in the dead-letter topic exactly once, with the right reason
and its original partition and offset; every good one is counted exactly once per client.

Then the fix-and-replay story an operator lives through: events of a schema version the workers did not
know yet are dead-lettered as ``unknown_schema``; the version is deployed (here: added to the running
registry) and ``replay`` re-delivers the class. The events of the new version are counted once; the
garbage of the same class comes back, marked as replays; the same replay run again re-delivers nothing
it delivered before; a forced replay is dropped by the worker's deduplication by event_id.
"""

from __future__ import annotations

import hashlib
import json
import random
import threading
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, cast

import pytest
from clickhouse_connect.driver.client import Client
from confluent_kafka import Consumer, KafkaError, Message, Producer, TopicPartition
from fastavro import parse_schema
from fastavro.schema import fingerprint, to_parsing_canonical_form

from tests.bad_inputs import STALLS_THE_WORKER, VARIANTS, event
from tests.fixtures.kafka import KafkaBroker
from tests.fixtures.workers import run_until
from usagemeter.cli.service import build_worker
from usagemeter.consumers.dlq.reader import DeadLetter, Selection, count_by, read_dead_letters
from usagemeter.consumers.dlq.replay import read_ledger, replay
from usagemeter.consumers.settings import KafkaSettings, WorkerSettings
from usagemeter.consumers.sink import ClickHouseSink
from usagemeter.schemas import RejectReason, WriterSchema, by_version, registry
from usagemeter.schemas.errors import BlockRejected, DeadLetterRatioExceeded
from usagemeter.schemas.wire import HEADER_LEN

pytestmark = [pytest.mark.kafka, pytest.mark.clickhouse]

GOOD_EVENTS = 6_000
NEXT_VERSION_EVENTS = 40
"""Good events in a schema version the workers learn only after they were dead-lettered."""
COPIES = 3
"""Messages of each bad variant (each with its own event_id), at random positions."""
CLIENTS = ["acme", "globex", "initech", "umbrella", "hooli"]
MODELS = [("openai", "gpt-4o-mini"), ("anthropic", "claude-sonnet-4-0"), ("mistral", "mistral-large")]
COUNTED = ("events", "requests", "input_tokens", "output_tokens", "cache_read_tokens")


@dataclass
class Sent:
    key: bytes
    value: bytes | None
    reason: RejectReason | None
    client: str = ""
    counts: Counter[str] | None = None
    partition: int = -1
    offset: int = -1


def _next_version() -> WriterSchema:
    """What a producer team shipped before the workers: v2 plus one optional field."""
    raw = json.loads(by_version(2).json_text)
    raw["fields"].append({"name": "region", "type": "string", "default": ""})
    fp = bytes.fromhex(fingerprint(to_parsing_canonical_form(parse_schema(raw)), "CRC-64-AVRO"))
    plain = cast(dict[str, Any], parse_schema(registry._without_logical_types(raw)))
    return WriterSchema(3, fp, plain, json.dumps(raw, separators=(",", ":")))


def _good(rng: random.Random, now_us: int, schema: WriterSchema, **extra: Any) -> Sent:
    client, (provider, model) = rng.choice(CLIENTS), rng.choice(MODELS)
    inp, requests = rng.randint(1, 20_000), rng.randint(1, 3)
    usage = {"input_tokens": inp, "output_tokens": rng.randint(0, 4_000), "cache_read_tokens": rng.randint(0, inp)}
    event_id = str(uuid.uuid4())
    at = now_us - rng.randint(0, 20 * 86_400_000_000)
    value = event(
        now_us, schema, event_id=event_id, event_time=at, client_id=client, provider=provider, model=model,
        requests=requests, **usage, **extra,
    )  # fmt: skip
    return Sent(event_id.encode(), value, None, client, Counter(events=1, requests=requests, **usage))


def _corpus(rng: random.Random, now_us: int, next_version: WriterSchema) -> tuple[list[Sent], list[Sent]]:
    """(every message in the order produced, the next-version ones among them)."""
    v1, v2 = by_version(1), by_version(2)
    good = [_good(rng, now_us, v1 if rng.random() < 0.05 else v2) for _ in range(GOOD_EVENTS)]
    later = [_good(rng, now_us, next_version, region="eu") for _ in range(NEXT_VERSION_EVENTS)]
    for sent in later:
        sent.reason = "unknown_schema"
    bad = [
        Sent(str(uuid.uuid4()).encode(), build(now_us), reason)
        for reason, variants in VARIANTS.items()
        for build in variants
        for _ in range(COPIES)
    ]
    messages = good + later + bad
    rng.shuffle(messages)
    return messages, later


def _produce(bootstrap: str, topic: str, messages: list[Sent]) -> None:
    """Keyed by event_id like the emitter; records where each message landed."""
    producer = Producer({"bootstrap.servers": bootstrap, "enable.idempotence": True, "linger.ms": 20})
    errors: list[KafkaError] = []

    def landed(sent: Sent) -> Callable[[KafkaError | None, Message], None]:
        def record(err: KafkaError | None, msg: Message) -> None:
            if err is not None:
                errors.append(err)
            sent.partition, sent.offset = msg.partition() or 0, msg.offset() or 0

        return record

    for sent in messages:
        producer.produce(topic, sent.value, sent.key, on_delivery=landed(sent))
        producer.poll(0)
    assert producer.flush(30) == 0
    assert not errors


def _run_worker(
    kafka: KafkaSettings, client: Client, messages: int, timeout_s: float = 90, settings: WorkerSettings | None = None
) -> None:
    """A worker of the group until it has consumed ``messages`` new messages, then drained and stopped."""
    worker = build_worker(kafka, settings or WorkerSettings(max_batch_rows=2_000, max_batch_wait_s=0.3), client)
    run_until(worker, lambda: worker.totals["consumed"] >= messages, timeout_s, join_s=timeout_s)
    assert worker.totals["consumed"] == messages


def _per_client(client: Client) -> dict[str, Counter[str]]:
    rows = client.query(
        "SELECT client_id, sum(events), sum(requests), sum(input_tokens), sum(output_tokens), sum(cache_read_tokens) "
        "FROM usage_15m_by_user GROUP BY client_id"
    ).result_rows
    return {row[0]: Counter(dict(zip(COUNTED, row[1:], strict=True))) for row in rows}


def _expected(sent: list[Sent]) -> dict[str, Counter[str]]:
    totals: dict[str, Counter[str]] = defaultdict(Counter)
    for item in sent:
        assert item.counts is not None
        totals[item.client].update(item.counts)
    return dict(totals)


def _by_key(letters: list[DeadLetter]) -> dict[bytes | None, list[DeadLetter]]:
    found: dict[bytes | None, list[DeadLetter]] = defaultdict(list)
    for letter in letters:
        found[letter.key].append(letter)
    return found


def test_bad_inputs_are_dead_lettered_good_ones_counted_and_a_fixed_class_replayed_once(
    clickhouse: Client, kafka_broker: KafkaBroker, kafka_topic: Callable[..., str], monkeypatch: pytest.MonkeyPatch
) -> None:
    rng = random.Random(5)
    topic, dlq = kafka_topic(partitions=4), kafka_topic(partitions=2)
    kafka = KafkaSettings(
        bootstrap_servers=kafka_broker.bootstrap_servers, topic=topic, dlq_topic=dlq, group_id=f"g-{topic}"
    )
    next_version = _next_version()
    messages, later = _corpus(rng, time.time_ns() // 1000, next_version)
    good = [sent for sent in messages if sent.reason is None]
    bad = [sent for sent in messages if sent.reason is not None]
    _produce(kafka.bootstrap_servers, topic, messages)
    _run_worker(kafka, clickhouse, len(messages))

    assert _per_client(clickhouse) == _expected(good)
    letters = list(read_dead_letters(kafka))
    found = _by_key(letters)
    assert set(found) == {sent.key for sent in bad}, "a good message was dead-lettered, or a bad one was not"
    for sent in bad:
        [letter] = found[sent.key]  # exactly once
        assert letter.message
        assert (letter.reason, letter.topic, letter.original_partition, letter.original_offset, letter.value) == (
            sent.reason, topic, sent.partition, sent.offset, sent.value,
        ), sent  # fmt: skip
    by_reason = count_by(letters, lambda letter: letter.reason)
    assert by_reason == Counter(sent.reason for sent in bad)
    assert set(by_reason) == set(VARIANTS)
    assert all(by_reason[reason] >= 3 * COPIES for reason in VARIANTS)

    # The new schema version is deployed (a worker build that knows it), then its class is replayed.
    known = registry._fingerprint_index()
    monkeypatch.setattr(registry, "_fingerprint_index", lambda: {**known, next_version.fingerprint: next_version})
    unknown_schema = Selection(reasons=frozenset({"unknown_schema"}))
    first = replay(kafka, list(read_dead_letters(kafka, unknown_schema)))
    assert len(first.replayed) == by_reason["unknown_schema"] and not first.skipped
    _run_worker(kafka, clickhouse, len(first.replayed))

    assert _per_client(clickhouse) == _expected(good + later)
    later_keys = {sent.key for sent in later}
    again = [letter for letter in read_dead_letters(kafka) if letter.replay_of]
    assert {letter.replay_of for letter in again} == {
        f"{dlq}/{item.letter.position}" for item in first.replayed if item.letter.key not in later_keys
    }
    assert {letter.reason for letter in again} == {"unknown_schema"}
    assert len(read_ledger(kafka)) == len(first.replayed)

    # The same replay again re-delivers nothing it delivered before: only the garbage that came back.
    second = replay(kafka, list(read_dead_letters(kafka, unknown_schema)))
    assert {letter.position for letter, _ in second.skipped} == {item.letter.position for item in first.replayed}
    assert {item.letter.position for item in second.replayed} == {letter.position for letter in again}
    # Forced, the new-version events arrive a second time: the worker's dedup by event_id drops them.
    forced = replay(kafka, [item.letter for item in first.replayed if item.letter.key in later_keys], force=True)
    assert len(forced.replayed) == NEXT_VERSION_EVENTS
    _run_worker(kafka, clickhouse, len(second.replayed) + len(forced.replayed))

    assert _per_client(clickhouse) == _expected(good + later)
    final = count_by(read_dead_letters(kafka), lambda letter: letter.reason)
    garbage = by_reason["unknown_schema"] - NEXT_VERSION_EVENTS
    assert final == by_reason + Counter(unknown_schema=2 * garbage)


def test_a_record_cut_inside_its_event_id_is_dead_lettered(
    clickhouse: Client, kafka_broker: KafkaBroker, kafka_topic: Callable[..., str]
) -> None:
    rng = random.Random(7)
    topic, dlq = kafka_topic(partitions=1), kafka_topic(partitions=1)
    kafka = KafkaSettings(
        bootstrap_servers=kafka_broker.bootstrap_servers, topic=topic, dlq_topic=dlq, group_id=f"g-{topic}"
    )
    now_us = time.time_ns() // 1000
    good = [_good(rng, now_us, by_version(2)) for _ in range(200)]
    bad = [Sent(str(uuid.uuid4()).encode(), build(now_us), "malformed_avro") for build in STALLS_THE_WORKER * 3]
    messages = good + bad
    rng.shuffle(messages)
    _produce(kafka.bootstrap_servers, topic, messages)
    _run_worker(kafka, clickhouse, len(messages), timeout_s=20)

    assert _per_client(clickhouse) == _expected(good)
    assert count_by(read_dead_letters(kafka), lambda letter: letter.reason) == Counter(malformed_avro=len(bad))


def _one_partition(kafka_broker: KafkaBroker, kafka_topic: Callable[..., str]) -> KafkaSettings:
    topic, dlq = kafka_topic(partitions=1), kafka_topic(partitions=1)
    return KafkaSettings(
        bootstrap_servers=kafka_broker.bootstrap_servers, topic=topic, dlq_topic=dlq, group_id=f"g-{topic}"
    )


def test_bodies_of_two_records_are_dead_lettered_not_stored_as_phantoms(
    clickhouse: Client, kafka_broker: KafkaBroker, kafka_topic: Callable[..., str]
) -> None:
    """Nothing else in the block is bad: the engine would read it by its record count, store the second
    records as phantoms and drop the last real events, with no error, unless each body's end is checked."""
    rng = random.Random(8)
    kafka = _one_partition(kafka_broker, kafka_topic)
    now_us = time.time_ns() // 1000
    good = [_good(rng, now_us, by_version(2)) for _ in range(100)]
    doubled = []
    for _ in range(10):
        extra = _good(rng, now_us, by_version(2))
        assert extra.value is not None
        doubled.append(Sent(extra.key, extra.value + event(now_us)[HEADER_LEN:], "malformed_avro"))
    messages = good + doubled
    rng.shuffle(messages)
    _produce(kafka.bootstrap_servers, kafka.topic, messages)
    _run_worker(kafka, clickhouse, len(messages))

    assert clickhouse.query("SELECT count() FROM usage_events").result_rows[0][0] == len(good)
    assert _per_client(clickhouse) == _expected(good)
    assert count_by(read_dead_letters(kafka), lambda letter: letter.reason) == Counter(malformed_avro=10)


def test_a_garbage_body_whose_engine_error_has_no_code_is_triaged_not_retried(clickhouse: Client) -> None:
    """The engine quotes the body's bytes in its error; they are not UTF-8, and the client raises an error
    without "Code: N", which the worker took for the store being down: it retried the block forever."""
    now_us = time.time_ns() // 1000
    good = event(now_us)[HEADER_LEN:]
    garbage = random.Random(12).randbytes(1_000_000)
    with pytest.raises(BlockRejected) as refused:
        ClickHouseSink(clickhouse).insert(by_version(2), [good, garbage, good], token=f"t|{uuid.uuid4()}")
    assert "Code:" not in str(refused.value)


def test_a_dead_letter_too_large_for_the_dlq_is_cut_and_says_so(
    clickhouse: Client, kafka_broker: KafkaBroker, kafka_topic: Callable[..., str]
) -> None:
    """The broker takes up to ~1 MiB; the dead letter, with its headers, must fit the DLQ producer's limit."""
    kafka = _one_partition(kafka_broker, kafka_topic)
    now_us = time.time_ns() // 1000
    huge = event(now_us, labels={"prompt": "x" * 1_000_000})
    producer = Producer({"bootstrap.servers": kafka.bootstrap_servers, "message.max.bytes": 1_048_576})
    rng = random.Random(9)
    good = [_good(rng, now_us, by_version(2)) for _ in range(50)]
    producer.produce(kafka.topic, huge, b"huge")
    for sent in good:
        producer.produce(kafka.topic, sent.value, sent.key)
    assert producer.flush(30) == 0
    _run_worker(kafka, clickhouse, 1 + len(good))

    assert _per_client(clickhouse) == _expected(good)
    [letter] = read_dead_letters(kafka)
    assert (letter.reason, letter.key, letter.original_size) == ("oversized_labels", b"huge", len(huge))
    assert letter.original_sha256 == hashlib.sha256(huge).hexdigest()
    assert letter.value is not None and huge.startswith(letter.value) and len(letter.value) < 1_000_000
    assert replay(kafka, [letter]).replayed == [], "a cut letter is not the original: never replayed"


def test_a_batch_mostly_bad_stops_the_worker_and_commits_nothing(
    clickhouse: Client, kafka_broker: KafkaBroker, kafka_topic: Callable[..., str]
) -> None:
    """A bug upstream that makes most events invalid must stop the pipeline, not dead-letter the stream."""
    kafka = _one_partition(kafka_broker, kafka_topic)
    now_us = time.time_ns() // 1000
    rng = random.Random(10)
    good = [_good(rng, now_us, by_version(2)) for _ in range(40)]
    bad = [Sent(str(uuid.uuid4()).encode(), event(now_us, client_id=""), "missing_client_id") for _ in range(160)]
    _produce(kafka.bootstrap_servers, kafka.topic, good + bad)
    worker = build_worker(kafka, WorkerSettings(max_batch_rows=200, max_batch_wait_s=5), clickhouse)

    with pytest.raises(DeadLetterRatioExceeded, match=r"160 of 200 messages .*_MAX_DEAD_LETTER_RATIO"):
        worker.run(threading.Event())
    assert list(read_dead_letters(kafka)) == []
    consumer = Consumer({"bootstrap.servers": kafka.bootstrap_servers, "group.id": kafka.group_id})
    [committed] = consumer.committed([TopicPartition(kafka.topic, 0)], timeout=10)
    consumer.close()
    assert committed.offset < 0, "nothing committed"

    # The operator raises the ratio (or fixes the producer): the same batch goes through, counted once.
    tolerant = WorkerSettings(max_batch_rows=200, max_batch_wait_s=0.3, max_dead_letter_ratio=1.0)
    _run_worker(kafka, clickhouse, len(good) + len(bad), settings=tolerant)
    assert _per_client(clickhouse) == _expected(good)
    assert count_by(read_dead_letters(kafka), lambda letter: letter.reason) == Counter(missing_client_id=160)
