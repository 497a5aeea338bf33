"""The dead-letter topic: every message the pipeline cannot accept, with why and where it came from.

The original key and value are kept as they were; headers carry the reason code, a human message,
and the original topic, partition and offset. ``usagemeter dlq`` reads them back.
"""

from __future__ import annotations

from confluent_kafka import KafkaError, Message, Producer

from usagemeter.consumers.errors import DeadLetterUnavailable
from usagemeter.schemas.validation import Rejection

REASON_HEADER = "usagemeter.reason"
MESSAGE_HEADER = "usagemeter.message"
TOPIC_HEADER = "usagemeter.topic"
PARTITION_HEADER = "usagemeter.partition"
OFFSET_HEADER = "usagemeter.offset"


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
