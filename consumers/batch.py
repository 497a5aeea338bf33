"""A batch: messages consumed since the last flush, sorted the way they will be written.

The hot loop touches each message once and decodes nothing: it records offsets for the commit, skips
a key already seen in the batch (producers key by ``event_id``, so a re-sent event is a repeated key),
and files the value under its writer-schema fingerprint. Bytes that are not single-object Avro are set
aside for the dead-letter topic.
"""

from __future__ import annotations

from typing import cast

from confluent_kafka import KafkaError, KafkaException, Message

from usagemeter.schemas.validation import Rejection
from usagemeter.schemas.wire import HEADER_LEN, fingerprint_of

_NOT_AVRO = Rejection("not_avro", "the value does not start with the Avro single-object marker C3 01")


def value_of(msg: Message) -> bytes:
    """The value of a message a batch filed under a schema group (those always have one)."""
    return cast(bytes, msg.value())


class SchemaGroup:
    """Messages of one writer schema, with their Avro bodies already cut from the 10-byte headers (cut here,
    on the consuming thread, so that the writing thread only joins them)."""

    __slots__ = ("bodies", "messages")

    def __init__(self) -> None:
        self.messages: list[Message] = []
        self.bodies: list[bytes] = []


class Batch:
    __slots__ = ("_seen", "duplicates", "groups", "invalid", "offsets", "size", "started_at")

    def __init__(self, started_at: float) -> None:
        self.started_at = started_at
        self.groups: dict[bytes, SchemaGroup] = {}
        """Writer fingerprint → its messages, first occurrence of each key, in consumption order."""
        self.invalid: list[tuple[Message, Rejection]] = []
        self.offsets: dict[tuple[str, int], tuple[int, int]] = {}
        """(topic, partition) → (first, last) offset consumed."""
        self.duplicates = 0
        self.size = 0
        self._seen: set[bytes] = set()

    def add(self, messages: list[Message]) -> None:
        offsets, seen, groups = self.offsets, self._seen, self.groups
        for msg in messages:
            err = msg.error()
            if err is not None:
                if err.code() == KafkaError._PARTITION_EOF:
                    continue
                raise KafkaException(err)
            self.size += 1
            where = (cast(str, msg.topic()), cast(int, msg.partition()))
            offset = cast(int, msg.offset())
            span = offsets.get(where)
            offsets[where] = (offset, offset) if span is None else (span[0], offset)
            key = msg.key()
            if key is not None:
                if key in seen:
                    self.duplicates += 1
                    continue
                seen.add(key)
            value = msg.value()
            fingerprint = None if value is None else fingerprint_of(value)
            if value is None or fingerprint is None:
                self.invalid.append((msg, _NOT_AVRO))
                continue
            group = groups.get(fingerprint)
            if group is None:
                group = groups[fingerprint] = SchemaGroup()
            group.messages.append(msg)
            group.bodies.append(value[HEADER_LEN:])

    def token(self, fingerprint: bytes) -> str:
        """Insert deduplication token for one schema group: the same batch retried gives the same token."""
        spans = ",".join(f"{t}/{p}:{a}-{b}" for (t, p), (a, b) in sorted(self.offsets.items()))
        return f"{fingerprint.hex()}|{spans}"
