"""Replays dead letters to the main topic after a fix, at most once each unless forced.

Why a ledger topic and a transaction: a replay is selective (one reason, some offsets), so "what was
replayed" is a set of DLQ positions, which a consumer group's committed offset (one number per
partition) cannot hold. Each replay therefore writes, in ONE Kafka transaction, the re-delivered messages
to the main topic and one record per dead letter to a compacted ledger topic ``<dlq_topic>.replayed``
(key ``partition:offset``, value where it went and when). Either both are visible or neither is: the
worker reads with ``read_committed`` (librdkafka's default), so it never sees a replay whose ledger
entry is missing, and a crash or error mid-replay aborts both. The transactional id is fixed per DLQ, so
a second replay running at the same time fences the first, whose commit then fails; the ledger is read
only after that fencing, so two replays cannot both re-deliver the same dead letter.

A re-delivered message keeps the original key and value, goes to the partition it was first read from
(the worker's deduplication by ``event_id`` is per partition), and carries ``usagemeter.replay.of``
(``dlq_topic/partition:offset``) and ``usagemeter.replay.at``. ``force`` replays again what the ledger
lists; the worker's deduplication by ``event_id`` then decides what counts.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from confluent_kafka import KafkaError, KafkaException, Message, Producer
from confluent_kafka.admin import AdminClient
from confluent_kafka.cimpl import NewTopic

from usagemeter.consumers.dead_letters import REPLAY_AT_HEADER, REPLAY_OF_HEADER
from usagemeter.consumers.dlq.reader import DeadLetter, read_topic
from usagemeter.consumers.settings import KafkaSettings
from usagemeter.schemas.clock import SYSTEM_CLOCK, utc_datetime
from usagemeter.schemas.errors import TopicMissing

LEDGER_SUFFIX = ".replayed"
CHUNK = 5_000
"""Dead letters per transaction: keeps each transaction well inside the broker's timeout."""


@dataclass(frozen=True, slots=True)
class Replayed:
    letter: DeadLetter
    to: str
    """``topic/partition:offset`` of the re-delivered message; ``topic`` alone in a dry run."""


@dataclass(frozen=True, slots=True)
class ReplayReport:
    replayed: list[Replayed]
    skipped: list[tuple[DeadLetter, str]]
    """Dead letters the ledger lists as replayed already, with where they went."""
    dry_run: bool


def ledger_topic(kafka: KafkaSettings) -> str:
    return kafka.dlq_topic + LEDGER_SUFFIX


def read_ledger(kafka: KafkaSettings) -> dict[str, str]:
    """DLQ position (``partition:offset``) → where its last replay went; empty before the first replay."""
    entries: dict[str, str] = {}
    try:
        for msg in read_topic(kafka, ledger_topic(kafka)):
            key, value = msg.key(), msg.value()
            if key is not None and value is not None:
                entries[key.decode()] = json.loads(value)["to"]
    except TopicMissing:
        return {}
    return entries


def replay(
    kafka: KafkaSettings,
    letters: list[DeadLetter],
    *,
    target_topic: str | None = None,
    dry_run: bool = False,
    force: bool = False,
    timeout_s: float = 30.0,
) -> ReplayReport:
    """Re-delivers ``letters`` to ``target_topic`` (default ``kafka.topic``), skipping those the ledger lists."""
    target = target_topic or kafka.topic
    if dry_run:
        return _plan(letters, read_ledger(kafka), target, force)
    _ensure_ledger(kafka, timeout_s)
    producer = Producer(
        {
            **kafka.client_config(),
            "transactional.id": f"usagemeter-dlq-replay:{kafka.dlq_topic}",
            "log.connection.close": False,
        }
    )
    producer.init_transactions(timeout_s)  # fences any other replay of this DLQ before the ledger is read
    plan = _plan(letters, read_ledger(kafka), target, force)
    partitions = len(producer.list_topics(target, timeout=timeout_s).topics[target].partitions)
    replayed: list[Replayed] = []
    for chunk in _chunks([r.letter for r in plan.replayed], CHUNK):
        replayed += _replay_chunk(
            producer, chunk, kafka=kafka, target=target, partitions=partitions, timeout_s=timeout_s
        )
    return ReplayReport(replayed, plan.skipped, dry_run=False)


def _plan(letters: list[DeadLetter], ledger: dict[str, str], target: str, force: bool) -> ReplayReport:
    """What to re-deliver: not what the ledger says was, and never a letter cut to fit the DLQ (its value is
    not the original's; the original, found by its SHA-256, is still in the events topic until retention)."""
    why = "cut to fit the dead-letter topic: not the original value"
    cut = [(letter, why) for letter in letters if letter.original_sha256]
    whole = [letter for letter in letters if not letter.original_sha256]
    todo = [Replayed(letter, target) for letter in whole if force or letter.position not in ledger]
    skipped = [(letter, ledger[letter.position]) for letter in whole if not force and letter.position in ledger]
    return ReplayReport(todo, skipped + cut, dry_run=True)


def _replay_chunk(
    producer: Producer,
    letters: list[DeadLetter],
    *,
    kafka: KafkaSettings,
    target: str,
    partitions: int,
    timeout_s: float,
) -> list[Replayed]:
    """One transaction: the re-delivered messages, acknowledged, then their ledger records; commit."""
    at = utc_datetime(SYSTEM_CLOCK.now_us()).isoformat().encode()
    delivered: dict[int, Message] = {}
    errors: list[KafkaError] = []

    def acknowledged(index: int) -> Callable[[KafkaError | None, Message], None]:
        def record(err: KafkaError | None, msg: Message) -> None:
            if err is None:
                delivered[index] = msg
            else:
                errors.append(err)

        return record

    producer.begin_transaction()
    try:
        for index, letter in enumerate(letters):
            headers: list[tuple[str, str | bytes | None]] = [
                (REPLAY_OF_HEADER, f"{kafka.dlq_topic}/{letter.position}".encode()),
                (REPLAY_AT_HEADER, at),
            ]
            where: dict[str, Any] = {}
            first_read = letter.original_partition
            if letter.topic == target and first_read is not None and first_read < partitions:
                where["partition"] = first_read  # else the key decides, as the emitter's partitioner did
            producer.produce(
                target, letter.value, letter.key, headers=headers, on_delivery=acknowledged(index), **where
            )
            producer.poll(0)
        producer.flush(timeout_s)
        if errors or len(delivered) != len(letters):
            raise KafkaException(errors[0] if errors else KafkaError(KafkaError._MSG_TIMED_OUT))
        done = [_where(letter, delivered[index]) for index, letter in enumerate(letters)]
        for item in done:
            entry = json.dumps({"to": item.to, "at": at.decode(), "reason": item.letter.reason})
            producer.produce(ledger_topic(kafka), entry.encode(), item.letter.position.encode())
        producer.commit_transaction(timeout_s)
    except BaseException:
        producer.abort_transaction(timeout_s)
        raise
    return done


def _where(letter: DeadLetter, msg: Message) -> Replayed:
    return Replayed(letter, f"{msg.topic()}/{msg.partition()}:{msg.offset()}")


def _ensure_ledger(kafka: KafkaSettings, timeout_s: float) -> None:
    """Creates the compacted ledger topic the first time (brokers often refuse to auto-create topics)."""
    admin = AdminClient(dict(kafka.client_config()))
    name = ledger_topic(kafka)
    if name in admin.list_topics(timeout=timeout_s).topics:
        return
    topic = NewTopic(name, num_partitions=1, replication_factor=-1, config={"cleanup.policy": "compact"})
    try:
        admin.create_topics([topic], operation_timeout=timeout_s)[name].result(timeout=timeout_s)
    except KafkaException as exc:
        if exc.args[0].code() != KafkaError.TOPIC_ALREADY_EXISTS:
            raise


def _chunks(items: list[DeadLetter], size: int) -> Iterator[list[DeadLetter]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]
