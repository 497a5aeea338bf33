"""``InMemoryEmitter``: ``UsageEmitter``'s interface for users' own tests, recording instead of sending.

A service's test swaps the emitter for this one and asserts on what its code would have metered, with no
broker. It is not a look-alike: it is the same ``EmitterCore`` up to the encoded message, so an unknown
field, a wrong type, an oversized event or (``strict=True``) a rule violation is refused exactly as in
production. Each accepted message is then decoded back from its Avro bytes and judged by the worker's
rules (``check_record``, the ones the store's view applies): what the pipeline would store lands in
``events``, what it would dead-letter lands in ``dead_letters`` with the same reason.
"""

from __future__ import annotations

import threading
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from usagemeter.producers.core import LIBRDKAFKA_MESSAGE_MAX_BYTES, EmitterCore
from usagemeter.producers.stats import EmitterStats
from usagemeter.schemas import UsageEvent, check_record
from usagemeter.schemas.clock import SYSTEM_CLOCK, Clock
from usagemeter.schemas.wire import decode


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """A message the worker would not store: its decoded record, the dead-letter reason and why."""

    record: dict[str, Any]
    reason: str
    message: str


class InMemoryEmitter(EmitterCore):
    """Records what ``UsageEmitter`` would send. Thread-safe, like it.

    >>> meter = InMemoryEmitter(client_id="acme")
    >>> event_id = meter.emit("gpt-4o-mini", provider="openai", input_tokens=10, output_tokens=5)
    >>> [(e.model, e.input_tokens) for e in meter.events]
    [('gpt-4o-mini', 10)]
    """

    def __init__(
        self,
        *,
        client_id: str = "",
        service: str = "",
        strict: bool = False,
        max_bytes: int = LIBRDKAFKA_MESSAGE_MAX_BYTES,
        clock: Clock = SYSTEM_CLOCK,
    ) -> None:
        super().__init__(client_id=client_id, service=service, strict=strict, max_bytes=max_bytes, clock=clock)
        self._lock = threading.Lock()
        self._events: list[UsageEvent] = []
        self._dead_letters: list[DeadLetter] = []
        self._closed = False

    @property
    def events(self) -> list[UsageEvent]:
        """The events the pipeline would store, in emit order (a copy)."""
        with self._lock:
            return list(self._events)

    @property
    def dead_letters(self) -> list[DeadLetter]:
        """The events that would be sent but dead-lettered by the worker (a copy)."""
        with self._lock:
            return list(self._dead_letters)

    def clear(self) -> None:
        """Forgets what was recorded (between the cases of one test)."""
        with self._lock:
            self._events.clear()
            self._dead_letters.clear()

    def stats(self) -> EmitterStats:
        """As ``UsageEmitter.stats()``; every recorded message counts as delivered, nothing is queued."""
        c = self._counters
        return EmitterStats(c.emitted, c.delivered, 0, 0, c.failed, c.dropped, 0, 0, 0, c.refused)

    def flush(self, timeout_s: float = 10.0) -> int:
        """Nothing is ever waiting: 0."""
        return 0

    def close(self, timeout_s: float = 10.0) -> None:
        """Later emits are dropped and counted, as after ``UsageEmitter.close()``."""
        self._closed = True

    def _send(self, key: bytes, value: bytes) -> None:
        self._counters.add("emitted")
        if self._closed:
            self._counters.add("dropped")
            return
        record = decode(value)
        problem = check_record(record, self._clock.now_us())
        with self._lock:
            if problem:
                self._dead_letters.append(DeadLetter(record, problem.reason, problem.message))
            else:
                self._events.append(_event(record))
        self._counters.add("delivered")


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _event(record: dict[str, Any]) -> UsageEvent:
    """The typed model of a record ``check_record`` accepted. Built without re-validating: the model's own
    check reads the system clock, and a test's ``clock`` (frozen in the past, say) must decide alone."""
    values = dict(record)
    values["event_id"] = uuid.UUID(values["event_id"])
    values["event_time"] = _EPOCH + timedelta(microseconds=values["event_time"])
    values["cost"] = None if values["cost"] is None else Decimal(values["cost"])
    values["labels"] = dict(values["labels"])
    return UsageEvent.model_construct(**values)
