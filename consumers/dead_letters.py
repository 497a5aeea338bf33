"""The dead-letter topic: every message the pipeline cannot accept, with why and where it came from.

The original key and value are kept as they were; headers carry the reason code, a human message,
and the original topic, partition and offset. A value too large for the dead-letter producer (a message
the broker took can exceed it, with our headers added) is cut to fit, and the letter says so: its full
size and SHA-256 in headers, so it can be matched with the original still in the events topic.
``usagemeter dlq`` reads them back and replays them; a replayed message that is refused again keeps its
``usagemeter.replay.*`` headers here, so its new dead letter says which earlier one it repeats.
"""

from __future__ import annotations

import hashlib
from typing import cast

from confluent_kafka import KafkaError, Message, Producer

from usagemeter.schemas.errors import DeadLetterUnavailable
from usagemeter.schemas.validation import Rejection

REASON_HEADER = "usagemeter.reason"
MESSAGE_HEADER = "usagemeter.message"
TOPIC_HEADER = "usagemeter.topic"
PARTITION_HEADER = "usagemeter.partition"
OFFSET_HEADER = "usagemeter.offset"
REPLAY_PREFIX = "usagemeter.replay."
REPLAY_OF_HEADER = REPLAY_PREFIX + "of"
"""On a replayed message: ``dlq_topic/partition:offset`` of the dead letter it re-delivers."""
REPLAY_AT_HEADER = REPLAY_PREFIX + "at"
SIZE_HEADER = "usagemeter.size"
"""On a cut dead letter: the original value's size in bytes."""
SHA256_HEADER = "usagemeter.sha256"
"""On a cut dead letter: the original value's SHA-256, hex."""
_ROOM_FOR_HEADERS = 16_384


def header_pairs(msg: Message) -> list[tuple[str, bytes | None]]:
    """A consumed message's headers: always (name, bytes) pairs (the dict form is for producing)."""
    return cast(list[tuple[str, bytes | None]], msg.headers() or [])


class DeadLetters:
    def __init__(self, producer: Producer, topic: str, max_bytes: int) -> None:
        self._producer = producer
        self._topic = topic
        self._max_value = max_bytes - _ROOM_FOR_HEADERS
        self._errors: list[KafkaError] = []
        self.sent = 0

    def send(self, msg: Message, rejection: Rejection) -> None:
        headers: list[tuple[str, str | bytes | None]] = [
            (REASON_HEADER, rejection.reason.encode()),
            (MESSAGE_HEADER, rejection.message.encode()),
            (TOPIC_HEADER, (msg.topic() or "").encode()),
            (PARTITION_HEADER, str(msg.partition()).encode()),
            (OFFSET_HEADER, str(msg.offset()).encode()),
        ]
        headers += [(name, raw) for name, raw in header_pairs(msg) if name.startswith(REPLAY_PREFIX)]
        value, key = msg.value(), msg.key()
        if len(value or b"") + len(key or b"") > self._max_value:
            value, key = self._cut(value or b"", key or b"", headers)
        while True:
            try:
                self._producer.produce(self._topic, value, key, headers=headers, on_delivery=self._delivered)
                break
            except BufferError:  # the producer's queue is full: let it deliver, then try again
                self._producer.poll(0.1)
        self.sent += 1
        self._producer.poll(0)

    def _cut(self, value: bytes, key: bytes, headers: list[tuple[str, str | bytes | None]]) -> tuple[bytes, bytes]:
        digest = hashlib.sha256(value).hexdigest()
        headers += [(SIZE_HEADER, str(len(value)).encode()), (SHA256_HEADER, digest.encode())]
        key = key[: self._max_value // 2]
        return value[: self._max_value - len(key)], key

    def flush(self, timeout_s: float = 30.0) -> None:
        """Blocks until every dead letter is acknowledged: their offsets may be committed only then."""
        remaining = self._producer.flush(timeout_s)
        if remaining or self._errors:
            errors, self._errors = self._errors, []
            raise DeadLetterUnavailable(f"{remaining} dead letters unacknowledged, errors: {errors[:3]}")

    def _delivered(self, err: KafkaError | None, _msg: Message) -> None:
        if err is not None:
            self._errors.append(err)
