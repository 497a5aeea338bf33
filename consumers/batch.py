"""A batch: messages consumed since the last flush, cut per partition and sorted the way they will be written.

The hot loop touches each message once and decodes nothing: it records offsets for the commit, skips
a key already seen in the partition's slice (producers key by ``event_id``, so a re-sent event is a
repeated key in the same partition), and files the value under its partition and writer-schema
fingerprint. Bytes that are not single-object Avro are set aside for the dead-letter topic.

Each partition's part of a batch is a ``Slice``: one insert per (slice, writer schema), its token
naming the slice, so that the same slice read again after a crash makes the same block and the same
token. A batch may be told where partitions' slices must end (cuts, from the ingest ledger); it then
holds back for the next batch every message past a cut and every message of another partition.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import cast

from confluent_kafka import KafkaError, KafkaException, Message

from usagemeter.schemas.validation import Rejection
from usagemeter.schemas.wire import HEADER_LEN, fingerprint_of

log = logging.getLogger(__name__)
_REPORT_EVERY_S = 60.0
_last_reported: dict[int, float] = {}
"""Consumer error code → when it was last logged: each kind at most once a minute."""
_NOT_AVRO = Rejection("not_avro", "the value does not start with the Avro single-object marker C3 01")

TopicPartition = tuple[str, int]


def _report(err: KafkaError) -> None:
    if err.code() == KafkaError._PARTITION_EOF:
        return
    now = time.monotonic()
    if now - _last_reported.get(err.code(), -_REPORT_EVERY_S) >= _REPORT_EVERY_S:
        _last_reported[err.code()] = now
        log.warning("consumer: %s (repeats are not logged for %.0f s)", err.str(), _REPORT_EVERY_S)


def value_of(msg: Message) -> bytes:
    """The value of a message a batch filed under a schema group (those always have one)."""
    return cast(bytes, msg.value())


@dataclass(frozen=True, slots=True)
class Slice:
    """The offsets [first, last] of one partition that one batch covers, and the reference time (UTC µs)
    its time rules are judged by: fixed when the slice is first written, kept in the ingest ledger."""

    topic: str
    partition: int
    first: int
    last: int
    reference_us: int = 0

    @property
    def name(self) -> str:
        """``topic/partition:first-last``: Kafka topic names cannot contain '/', ':' or '|'."""
        return f"{self.topic}/{self.partition}:{self.first}-{self.last}"


class SchemaGroup:
    """Messages of one partition and writer schema, with their Avro bodies already cut from the 10-byte
    headers (cut here, on the consuming thread, so that the writing thread only joins them) and their keys."""

    __slots__ = ("bodies", "keys", "messages")

    def __init__(self) -> None:
        self.messages: list[Message] = []
        self.bodies: list[bytes] = []
        self.keys: list[bytes | None] = []

    def keep(self, mask: list[bool]) -> None:
        """Keeps the messages whose mask entry is True."""
        self.messages = [m for m, k in zip(self.messages, mask, strict=True) if k]
        self.bodies = [b for b, k in zip(self.bodies, mask, strict=True) if k]
        self.keys = [key for key, k in zip(self.keys, mask, strict=True) if k]


class Batch:
    __slots__ = (
        "_cuts",
        "_floors",
        "_references",
        "_released",
        "_seen",
        "duplicates",
        "groups",
        "held",
        "invalid",
        "offsets",
        "reference_us",
        "size",
        "started_at",
    )

    def __init__(
        self,
        started_at: float,
        cuts: dict[TopicPartition, int] | None = None,
        references: dict[TopicPartition, int] | None = None,
        floors: dict[TopicPartition, int] | None = None,
    ) -> None:
        self.started_at = started_at
        self.reference_us = 0
        """The clock of this batch's time rules (UTC µs), set once when it is submitted; a slice read again
        after a crash keeps the one the ledger recorded for it (``references``)."""
        self.groups: dict[tuple[TopicPartition, bytes], SchemaGroup] = {}
        """(topic-partition, writer fingerprint) → its messages, first occurrence of each key, in order."""
        self.invalid: list[tuple[Message, Rejection]] = []
        self.offsets: dict[TopicPartition, tuple[int, int]] = {}
        """(topic, partition) → (first, last) offset consumed."""
        self.held: list[Message] = []
        """Messages past a partition's cut, in consumption order: they start the next batch."""
        self.duplicates = 0
        self.size = 0
        self._cuts = dict(cuts or {})
        self._references = dict(references or {})
        self._floors = dict(floors or {})
        """Partition → first offset not yet in the store: a completed slice left uncommitted ends below it."""
        self._released: set[TopicPartition] = set()
        self._seen: dict[TopicPartition, set[bytes]] = {}

    def add(self, messages: list[Message]) -> None:
        offsets, seen, groups, cuts, floors = self.offsets, self._seen, self.groups, self._cuts, self._floors
        for msg in messages:
            err = msg.error()
            if err is not None:
                if err.fatal():
                    raise KafkaException(err)
                _report(err)  # a broker gone or a topic missing: librdkafka retries, the batch goes on
                continue
            where = (cast(str, msg.topic()), cast(int, msg.partition()))
            offset = cast(int, msg.offset())
            if floors and offset < floors.get(where, -1):
                self.duplicates += 1  # in the store already, in a slice its dead owner completed
                continue
            cut = cuts.get(where)
            if (offset > cut) if cut is not None else bool(cuts):
                # A batch with cuts re-forms the slices a crash may have left half-written and nothing
                # else, so that it stays their size (it must be written before anything else commits).
                self.held.append(msg)
                continue
            self.size += 1
            span = offsets.get(where)
            offsets[where] = (offset, offset) if span is None else (span[0], offset)
            key = msg.key()
            if key is not None:
                keys = seen.get(where)
                if keys is None:
                    keys = seen[where] = set()
                if key in keys:
                    self.duplicates += 1
                    continue
                keys.add(key)
            value = msg.value()
            fingerprint = None if value is None else fingerprint_of(value)
            if value is None or fingerprint is None:
                self.invalid.append((msg, _NOT_AVRO))
                continue
            group = groups.get((where, fingerprint))
            if group is None:
                group = groups[(where, fingerprint)] = SchemaGroup()
            group.messages.append(msg)
            group.bodies.append(value[HEADER_LEN:])
            group.keys.append(key)

    def unreached_cuts(self) -> list[TopicPartition]:
        """Partitions whose slice must end at a cut this batch has not reached yet: it cannot be written
        before they have, or its blocks would differ from the ones written before a crash."""
        return [
            where
            for where, cut in self._cuts.items()
            if where not in self._released and self.offsets.get(where, (0, -1))[1] < cut
        ]

    def add_floors(self, floors: dict[TopicPartition, int]) -> None:
        """Floors for partitions assigned while this batch was open."""
        for where, floor in floors.items():
            if where not in self.offsets:
                self._floors[where] = floor

    def add_cuts(self, cuts: dict[TopicPartition, int], references: dict[TopicPartition, int]) -> None:
        """Cuts for partitions assigned while this batch was open (none of their messages is in it yet)."""
        for where, cut in cuts.items():
            if where not in self.offsets:
                self._cuts[where] = cut
                if where in references:
                    self._references[where] = references[where]

    def cut_partitions(self) -> list[TopicPartition]:
        return list(self._cuts)

    def release_cut(self, where: TopicPartition) -> None:
        """Treats a cut as reached when its last messages are gone (compacted): the slice keeps its name."""
        self._released.add(where)

    def drop_partition(self, where: TopicPartition) -> None:
        """Leaves a partition out of this batch entirely (not written, not committed): a slice that must
        end at a cut it has not reached is better read again whole by the partition's next owner."""
        self.groups = {key: group for key, group in self.groups.items() if key[0] != where}
        self.invalid = [(m, r) for m, r in self.invalid if (m.topic(), m.partition()) != where]
        self.held = [m for m in self.held if (m.topic(), m.partition()) != where]
        self.offsets.pop(where, None)
        self._cuts.pop(where, None)

    def slices(self) -> list[Slice]:
        """The batch's slice of each partition, in (topic, partition) order."""
        return [self.slice_of(where) for where in sorted(self.offsets)]

    def slice_of(self, where: TopicPartition) -> Slice:
        """A cut partition's slice ends at the cut even when its last messages were compacted away, so
        that its name matches the ledger's."""
        first, last = self.offsets[where]
        reference = self._references.get(where, self.reference_us)
        return Slice(where[0], where[1], first, max(last, self._cuts.get(where, last)), reference)

    def token(self, where: TopicPartition, fingerprint: bytes) -> str:
        """Insert deduplication token of one group: the same slice read again gives the same token. It
        carries the reference time to the staging view (``|t=``), which judges the time rules by it."""
        piece = self.slice_of(where)
        return f"{fingerprint.hex()}|{piece.name}|t={piece.reference_us}"
