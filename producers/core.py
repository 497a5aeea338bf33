"""``EmitterCore``: what every emitter does before a message leaves the process.

Building the record, refusing unknown fields, wrong types and oversized events, encoding, and the strict
mode's rule check are the same whether the message then goes to Kafka (``UsageEmitter``) or into a list
(``InMemoryEmitter``, for users' own tests): one class, so the two can never disagree on what is valid.
Subclasses decide where an encoded message goes (``_send``) and how the emitter ends.
"""

from __future__ import annotations

import logging
from abc import ABC, abstractmethod
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from types import TracebackType
from typing import Any, Self, Unpack

from usagemeter.producers.backlog import LogLimiter
from usagemeter.producers.extraction import extract_usage
from usagemeter.producers.fields import FIELD_NAMES, EventFields, type_problem, unknown_field_message
from usagemeter.producers.ids import new_event_id
from usagemeter.producers.session import UsageSession
from usagemeter.producers.stats import Counters, EmitterStats
from usagemeter.schemas import CURRENT, UsageEvent, check_record
from usagemeter.schemas.clock import Clock
from usagemeter.schemas.encoder import encode_event
from usagemeter.schemas.errors import EventTooLargeError, ExtractionError

log = logging.getLogger("usagemeter.producers.emitter")
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
LIBRDKAFKA_MESSAGE_MAX_BYTES = 1_000_000
"""librdkafka's default ``message.max.bytes``: over it, ``produce()`` refuses a message (key + value)."""


class EmitterCore(ABC):
    """The emitter's public methods up to the encoded message; see ``UsageEmitter`` for their contract."""

    def __init__(self, *, client_id: str, service: str, strict: bool, max_bytes: int, clock: Clock) -> None:
        self._client_id = client_id
        self._service = service
        self._strict = strict
        self._counters = Counters()
        self._max_bytes = max_bytes
        self._clock = clock
        self._log = LogLimiter(clock)

    @abstractmethod
    def _send(self, key: bytes, value: bytes) -> None:
        """Where an accepted, encoded message goes (``key`` is its event_id)."""

    @abstractmethod
    def stats(self) -> EmitterStats: ...

    @abstractmethod
    def flush(self, timeout_s: float = 10.0) -> int: ...

    @abstractmethod
    def close(self, timeout_s: float = 10.0) -> None: ...

    def emit(self, model: str, *, client_id: str = "", **fields: Unpack[EventFields]) -> str | None:
        """Sends one event; returns its event_id, or None when it was refused (non-strict).

        Refused, never sent (a misspelt ``imput_tokens`` would otherwise be stored as a request of zero
        tokens): an unknown field or a value of the wrong type (``TypeError`` with ``strict=True``), an
        event over ``message.max.bytes`` once encoded (``EventTooLargeError``), and with ``strict=True``
        an invalid one (``ValueError``). Without ``strict`` each is counted in ``failed`` and ``refused``
        and logged in one line (at most one per kind of problem per 10 s).
        """
        if not FIELD_NAMES.issuperset(fields):  # one set check: the only per-event cost of this
            self._refuse(TypeError(unknown_field_message(fields)), model, "unknown field")
            return None
        try:
            record = self._record(model, client_id, fields)
        except Exception as exc:
            self._refuse(exc, model, type(exc).__name__)
            return None
        try:
            value = encode_event(record)
        except Exception as exc:  # fastavro's message is a traceback's worth; say which field is wrong
            problem = type_problem(CURRENT.plain, record)
            self._refuse(TypeError(problem) if problem else exc, model, "wrong type")
            return None
        if self._strict:
            self._check(record)  # after encoding: the types are right, the rules can be checked
        event_id: str = record["event_id"]
        key = event_id.encode()
        if len(key) + len(value) > self._max_bytes:
            error = EventTooLargeError(
                f"the event is {len(key) + len(value)} bytes encoded, over message.max.bytes ({self._max_bytes})"
            )
            self._refuse(error, model, "too large")
            return None
        self._send(key, value)
        return event_id

    def emit_response(
        self, response: object, *, model: str = "", client_id: str = "", **fields: Unpack[EventFields]
    ) -> str | None:
        """Sends the usage of one provider response (OpenAI, Anthropic, Gemini, LiteLLM, or its dict).

        ``model`` and ``fields`` override what the response says (``provider=``, ``user_id=``, ...).
        A response whose usage cannot be read is counted in ``stats().failed`` and logged (raised with
        ``strict=True``), like an invalid event; see ``usagemeter.producers.extraction``.
        """
        try:
            extracted = extract_usage(response)
            model = model or extracted.model
            if not model:
                raise ExtractionError(f"the {type(response).__name__} names no model: pass model=")
        except Exception as exc:
            self._refuse(exc, model, "unreadable response")
            return None
        return self.emit(model, client_id=client_id, **(extracted.fields | fields))

    def session(self, model: str = "", *, client_id: str = "", **fields: Unpack[EventFields]) -> UsageSession:
        """A session: ``usage(tokens, kind, cost, label)`` lines add up to one event sent at
        its end (``close()`` or the end of a ``with`` block). See ``usagemeter.producers.session``."""
        return UsageSession(self, model, client_id=client_id, fields=fields, fail=self._fail, clock=self._clock)

    def emit_event(self, event: UsageEvent) -> str | None:
        """Sends an already validated ``UsageEvent``."""
        record = event.to_record()
        model = record.pop("model")
        client_id = record.pop("client_id")
        return self.emit(model, client_id=client_id, **record)

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def _record(self, model: str, client_id: str, fields: EventFields) -> dict[str, Any]:
        record: dict[str, Any] = dict(fields)
        record["model"] = model
        record["client_id"] = client_id or self._client_id
        if "event_id" not in record:
            record["event_id"] = new_event_id()
        event_time = record.get("event_time")
        if event_time is None:
            record["event_time"] = self._clock.now_us()
        elif isinstance(event_time, datetime):
            aware = event_time if event_time.tzinfo else event_time.replace(tzinfo=UTC)
            record["event_time"] = (aware - _EPOCH) // timedelta(microseconds=1)
        if "service" not in record and self._service:
            record["service"] = self._service
        cost = record.get("cost")
        if cost is not None and not isinstance(cost, str):
            if isinstance(cost, float):
                raise TypeError("cost must be a str, Decimal or int: a float is not an exact amount")
            record["cost"] = format(Decimal(cost), "f")
        return record

    def _fail(self, exc: Exception, what: str) -> None:
        """The caller's data was wrong: raised in strict mode, else counted in ``failed`` and logged.

        One line, no traceback: the message says what was wrong, the stack would only point here.
        """
        if self._strict:
            raise exc
        self._counters.add("failed")
        log.error("usagemeter: %s: %s", what, exc)

    def _refuse(self, exc: Exception, model: str, kind: str) -> None:
        """An event not sent because of what it is: raised in strict mode, else counted and logged once."""
        if self._strict:
            raise exc
        self._counters.add("failed")
        self._counters.add("refused")
        self._log.error(
            kind,
            "usagemeter: event for model %r refused, not sent (%d refused in all): %s",
            model,
            self._counters.refused,
            exc,
        )

    def _check(self, record: dict[str, Any]) -> None:
        full = {field["name"]: field.get("default") for field in CURRENT.plain["fields"]} | record
        problem = check_record(full, self._clock.now_us())
        if problem:
            raise ValueError(f"{problem.reason}: {problem.message}")
