"""The dead-letter topic: every message the pipeline cannot accept, with why and where it came from.

The original key and value are kept as they were; headers carry the reason code, a human message,
and the original topic, partition and offset. ``usagemeter dlq`` reads them back and replays them; a
replayed message that is refused again keeps its ``usagemeter.replay.*`` headers here, so its new dead
letter says which earlier one it repeats.
"""

from __future__ import annotations

from typing import cast

from confluent_kafka import KafkaError, Message, Producer

from usagemeter.consumers.errors import DeadLetterUnavailable
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


def header_pairs(msg: Message) -> list[tuple[str, bytes | None]]:
    """A consumed message's headers: always (name, bytes) pairs (the dict form is for producing)."""
    return cast(list[tuple[str, bytes | None]], msg.headers() or [])


class DeadLetters:
    def __init__(self, producer: Producer, topic: str) -> None:
        self._producer = producer
        self._topic = topic
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
        self._producer.produce(self._topic, msg.value(), msg.key(), headers=headers, on_delivery=self._delivered)
        self.sent += 1
        self._producer.poll(0)

    def flush(self, timeout_s: float = 30.0) -> None:
        """Blocks until every dead letter is acknowledged: their offsets may be committed only then."""
        remaining = self._producer.flush(timeout_s)
        if remaining or self._errors:
            errors, self._errors = self._errors, []
            raise DeadLetterUnavailable(f"{remaining} dead letters unacknowledged, errors: {errors[:3]}")

    def _delivered(self, err: KafkaError | None, _msg: Message) -> None:
        if err is not None:
            self._errors.append(err)
