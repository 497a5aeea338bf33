"""Reads the dead-letter topic back without disturbing anything, for ``usagemeter dlq`` and the tests.

The reader assigns partitions itself at explicit offsets (the low watermark, or the first offset at
``--since``), never subscribes and never commits: librdkafka insists on a ``group.id``, so it gets a
unique one that never joins a group. It takes each partition's high watermark when it starts and stops
there, so a listing is a snapshot even while the worker keeps dead-lettering.
"""

from __future__ import annotations

import time
import uuid
from collections import Counter
from collections.abc import Callable, Generator, Iterable, Iterator
from contextlib import closing
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, cast

from confluent_kafka import TIMESTAMP_NOT_AVAILABLE, Consumer, KafkaError, KafkaException, Message, TopicPartition

from usagemeter.consumers.dead_letters import (
    MESSAGE_HEADER,
    OFFSET_HEADER,
    PARTITION_HEADER,
    REASON_HEADER,
    REPLAY_OF_HEADER,
    SHA256_HEADER,
    SIZE_HEADER,
    TOPIC_HEADER,
    header_pairs,
)
from usagemeter.consumers.settings import KafkaSettings
from usagemeter.schemas.errors import DeadLetterReadError, TopicMissing

_READER_DEFAULTS: dict[str, Any] = {
    "enable.auto.commit": False,
    "enable.auto.offset.store": False,
    "enable.partition.eof": True,  # the end of a partition, control records of transactions included
    "auto.offset.reset": "earliest",
    "log.connection.close": False,
}


@dataclass(frozen=True, slots=True)
class OffsetRange:
    """Dead letters by position: ``3:120`` or ``3:120-180`` (partition 3), ``120`` or ``120-180`` (a
    one-partition DLQ, the usual case; refused on a topic with more partitions)."""

    partition: int | None
    first: int
    last: int

    @classmethod
    def parse(cls, text: str) -> OffsetRange:
        where, _, span = text.strip().rpartition(":")
        first, _, last = span.partition("-")
        try:
            partition = int(where) if where else None
            start = int(first)
            end = int(last) if last else start
        except ValueError as exc:
            raise ValueError(f"{text!r} is not OFFSET, FIRST-LAST, PARTITION:OFFSET or PARTITION:FIRST-LAST") from exc
        if start < 0 or end < start or (partition is not None and partition < 0):
            raise ValueError(f"{text!r}: offsets and partitions are >= 0 and a range goes upwards")
        return cls(partition, start, end)

    def covers(self, partition: int, offset: int) -> bool:
        return (self.partition is None or self.partition == partition) and self.first <= offset <= self.last


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """One dead letter: where it sits in the DLQ, why it is there, where it came from, and its bytes."""

    partition: int
    offset: int
    timestamp: datetime | None
    reason: str
    message: str
    topic: str
    """The topic the worker read it from."""
    original_partition: int | None
    original_offset: int | None
    key: bytes | None
    value: bytes | None
    replay_of: str | None = None
    """Set when this message was itself a replay (``dlq/partition:offset`` of the earlier dead letter)."""
    original_size: int | None = None
    """Set when the value was cut to fit the dead-letter topic: the original's size in bytes."""
    original_sha256: str | None = None
    """Set with ``original_size``: the original value's SHA-256 (hex), to find it in the events topic."""

    @property
    def position(self) -> str:
        """``partition:offset`` in the DLQ, the form ``--offsets`` takes."""
        return f"{self.partition}:{self.offset}"

    @property
    def origin(self) -> str:
        return f"{self.topic}/{self.original_partition}:{self.original_offset}"


def dead_letter(msg: Message) -> DeadLetter:
    """A consumed DLQ message as a DeadLetter; missing or garbled headers read as empty, not as errors."""
    headers = {name: (raw or b"").decode(errors="replace") for name, raw in header_pairs(msg)}
    kind, millis = msg.timestamp()
    return DeadLetter(
        partition=cast(int, msg.partition()),
        offset=cast(int, msg.offset()),
        timestamp=None if kind == TIMESTAMP_NOT_AVAILABLE else datetime.fromtimestamp(millis / 1000, UTC),
        reason=headers.get(REASON_HEADER, ""),
        message=headers.get(MESSAGE_HEADER, ""),
        topic=headers.get(TOPIC_HEADER, ""),
        original_partition=_int_or_none(headers.get(PARTITION_HEADER)),
        original_offset=_int_or_none(headers.get(OFFSET_HEADER)),
        key=msg.key(),
        value=msg.value(),
        replay_of=headers.get(REPLAY_OF_HEADER),
        original_size=_int_or_none(headers.get(SIZE_HEADER)),
        original_sha256=headers.get(SHA256_HEADER),
    )


def _int_or_none(text: str | None) -> int | None:
    try:
        return None if text is None else int(text)
    except ValueError:
        return None


@dataclass(frozen=True, slots=True)
class Selection:
    """Which dead letters a command works on; empty fields select everything."""

    reasons: frozenset[str] = frozenset()
    since: datetime | None = None
    offsets: tuple[OffsetRange, ...] = ()
    limit: int | None = None

    def matches(self, letter: DeadLetter) -> bool:
        if self.reasons and letter.reason not in self.reasons:
            return False
        if self.since is not None and (letter.timestamp is None or letter.timestamp < self.since):
            return False
        return not self.offsets or any(r.covers(letter.partition, letter.offset) for r in self.offsets)


def read_dead_letters(kafka: KafkaSettings, selection: Selection | None = None) -> Iterator[DeadLetter]:
    """The selected dead letters of ``kafka.dlq_topic`` in partition and offset order, up to its current end."""
    selection = selection or Selection()
    since_ms = None if selection.since is None else int(selection.since.timestamp() * 1000)
    found = 0
    messages = read_topic(kafka, kafka.dlq_topic, since_ms=since_ms, check=_bare_offsets_check(selection))
    with closing(messages):  # closes the consumer as soon as the limit is reached
        for msg in messages:
            letter = dead_letter(msg)
            if selection.matches(letter):
                yield letter
                found += 1
                if selection.limit is not None and found >= selection.limit:
                    return


def count_by(letters: Iterable[DeadLetter], key: Callable[[DeadLetter], str]) -> Counter[str]:
    """Dead letters counted by ``key`` (e.g. ``lambda letter: letter.reason``)."""
    return Counter(key(letter) for letter in letters)


def _bare_offsets_check(selection: Selection) -> Callable[[list[int]], None]:
    def check(partitions: list[int]) -> None:
        if len(partitions) > 1 and any(r.partition is None for r in selection.offsets):
            raise DeadLetterReadError(
                f"the dead-letter topic has {len(partitions)} partitions: give offsets as PARTITION:OFFSET"
            )

    return check


def read_topic(
    kafka: KafkaSettings,
    topic: str,
    *,
    since_ms: int | None = None,
    timeout_s: float = 30.0,
    check: Callable[[list[int]], None] | None = None,
) -> Generator[Message]:
    """Every message of ``topic`` from its start (or the first at ``since_ms``) to the end it has now.

    With read_committed (librdkafka's default), the end of a transactionally written topic is its last
    stable offset; the partition-EOF event marks it, the high watermark taken at the start bounds it.
    ``check`` sees the partition ids before anything is read. Raises DeadLetterReadError when the topic
    does not exist or nothing arrives for ``timeout_s``.
    """
    consumer = Consumer({**_READER_DEFAULTS, **kafka.client_config(), "group.id": f"usagemeter-reader-{uuid.uuid4()}"})
    try:
        partitions = _partitions(consumer, topic, timeout_s)
        if check is not None:
            check(partitions)
        ends, starts = _bounds(consumer, topic, partitions, since_ms, timeout_s)
        yield from _until_ends(consumer, starts, ends, timeout_s)
    except KafkaException as exc:
        raise DeadLetterReadError(f"cannot read {topic!r} on {kafka.bootstrap_servers}: {exc}") from exc
    finally:
        consumer.close()


def _partitions(consumer: Consumer, topic: str, timeout_s: float) -> list[int]:
    metadata = consumer.list_topics(topic, timeout=timeout_s).topics.get(topic)
    if metadata is None or metadata.error is not None:
        raise TopicMissing(f"topic {topic!r} does not exist ({metadata.error if metadata else 'no metadata'})")
    return sorted(metadata.partitions)


def _bounds(
    consumer: Consumer, topic: str, partitions: list[int], since_ms: int | None, timeout_s: float
) -> tuple[dict[int, int], list[TopicPartition]]:
    """Each non-empty partition's end (high watermark now) and where reading starts."""
    ends: dict[int, int] = {}
    starts: list[TopicPartition] = []
    for partition in partitions:
        low, high = consumer.get_watermark_offsets(TopicPartition(topic, partition), timeout=timeout_s)
        if high > low:
            ends[partition] = high
            starts.append(TopicPartition(topic, partition, low))
    if since_ms is not None and starts:
        wanted = [TopicPartition(topic, tp.partition, since_ms) for tp in starts]
        found = consumer.offsets_for_times(wanted, timeout=timeout_s)
        starts = [tp for tp in found if 0 <= tp.offset < ends[tp.partition]]  # -1: nothing that recent
    return ends, starts


def _until_ends(
    consumer: Consumer, starts: list[TopicPartition], ends: dict[int, int], timeout_s: float
) -> Iterator[Message]:
    pending = {tp.partition for tp in starts}
    if not pending:
        return
    consumer.assign(starts)
    last_news = time.monotonic()
    while pending:
        messages = consumer.consume(1000, timeout=0.1)
        if messages:
            last_news = time.monotonic()
        elif time.monotonic() - last_news >= timeout_s:
            raise DeadLetterReadError(f"nothing arrived for {timeout_s:.0f} s; partitions {sorted(pending)} unread")
        for msg in messages:
            partition, offset, err = cast(int, msg.partition()), cast(int, msg.offset()), msg.error()
            if err is not None and err.code() != KafkaError._PARTITION_EOF:
                raise KafkaException(err)
            if partition not in pending:
                continue
            if err is None and offset < ends[partition]:
                yield msg
            if err is not None or offset + 1 >= ends[partition]:
                pending.discard(partition)
