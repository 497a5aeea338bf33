"""``UsageEmitter``: what a service calls once per metered API call.

The caller never pays for metering: ``emit()`` encodes the event (Avro single-object encoding, keyed by
``event_id`` so a re-sent event lands in the same partition) and hands it to librdkafka's in-memory
queue without waiting for the broker. When that queue is full the message goes to a bounded in-memory
queue; a background thread drains it, and moves to the on-disk spool what the broker cannot take
(it is down, or too slow) and what librdkafka gave up on (``message.timeout.ms``, 30 s by default). The
spool is replayed when the broker is back, also by the next process after a restart. Only past the
spool's cap (or the in-memory bound, when the disk cannot keep up) are events dropped, counted and
logged. Errors are counted and logged, never raised into the caller, unless ``strict=True``.

Bad input gets a clear answer, in one log line (or the exception, with ``strict=True``): an unknown
field (``TypeError``, naming the field you probably meant), a value of the wrong type (``TypeError``
naming the field and the type it takes) and an event over ``message.max.bytes`` (``EventTooLargeError``)
are refused, never sent: counted in ``stats().failed`` and ``stats().refused``.
See ``backlog.py`` for the path of a message and ``spool.py`` for the disk format and fsync policy.
"""

from __future__ import annotations

import atexit
import logging
import threading
import time
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from enum import Enum
from pathlib import Path
from types import TracebackType
from typing import Any, Literal, Unpack

from confluent_kafka import Producer

from usagemeter.producers.backlog import Backlog, DeliveryCallback, LogLimiter
from usagemeter.producers.extraction import extract_usage
from usagemeter.producers.fields import FIELD_NAMES, EventFields, type_problem, unknown_field_message
from usagemeter.producers.session import UsageSession
from usagemeter.producers.spool import Spool
from usagemeter.producers.stats import Counters, EmitterStats
from usagemeter.schemas import CURRENT, UsageEvent, check_record
from usagemeter.schemas.clock import SYSTEM_CLOCK, Clock
from usagemeter.schemas.errors import EventTooLargeError, ExtractionError
from usagemeter.schemas.wire import encode

log = logging.getLogger(__name__)

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_PRODUCER_DEFAULTS: Mapping[str, Any] = {
    # Idempotent producer: broker-side retries never duplicate or reorder a partition's messages.
    "enable.idempotence": True,
    "acks": "all",
    "linger.ms": 20,
    "batch.num.messages": 10_000,
    "compression.type": "lz4",
    "queue.buffering.max.messages": 200_000,
    "log.connection.close": False,  # idle connections closed by the broker are normal, not news
    # librdkafka's default (5 min) would hide a down broker; after this the message goes to the spool.
    "message.timeout.ms": 30_000,
}

_LIBRDKAFKA_MESSAGE_MAX_BYTES = 1_000_000
"""librdkafka's default ``message.max.bytes``: over it, ``produce()`` refuses a message (key + value)."""


DEFAULT_SPOOL_ROOT = Path(".var/usagemeter/spool")
"""The default spool is ``DEFAULT_SPOOL_ROOT / <topic>``, relative to the working directory."""


class _Default(Enum):
    SPOOL_DIR = "default"


DefaultSpoolDir = Literal[_Default.SPOOL_DIR]


class UsageEmitter:
    """Sends usage events to Kafka. Thread-safe; use one per process.

    >>> with UsageEmitter("127.0.0.1:9092", client_id="acme") as meter:   # doctest: +SKIP
    ...     meter.emit("gpt-4o-mini", provider="openai", input_tokens=1000, output_tokens=2000)
    """

    def __init__(
        self,
        bootstrap_servers: str,
        *,
        topic: str = "usage.events",
        client_id: str = "",
        service: str = "",
        strict: bool = False,
        max_overflow: int = 100_000,
        kafka_config: Mapping[str, Any] | None = None,
        on_delivery: DeliveryCallback | None = None,
        spool_dir: Path | str | DefaultSpoolDir | None = _Default.SPOOL_DIR,
        spool_max_bytes: int = 1 << 30,
        clock: Clock = SYSTEM_CLOCK,
    ) -> None:
        """``spool_dir`` holds what the broker could not take yet (default ``.var/usagemeter/spool/<topic>``;
        None disables the spool: undeliverable events are then dropped). A given directory that cannot be
        created fails here; when the default one cannot, the emitter logs it and runs without a spool.
        ``spool_max_bytes`` caps the directory; past it new events are dropped. ``max_overflow`` bounds the
        in-memory queue between the caller and the background thread. ``clock`` is where the emitter reads
        the time (event times, deadlines, log rate limits).
        """
        self._topic = topic
        self._client_id = client_id
        self._service = service
        self._strict = strict
        self._counters = Counters()
        config = {**_PRODUCER_DEFAULTS, "bootstrap.servers": bootstrap_servers, **(kafka_config or {})}
        self._producer = Producer(config)
        self._max_bytes = int(config.get("message.max.bytes", _LIBRDKAFKA_MESSAGE_MAX_BYTES))
        self._clock = clock
        self._log = LogLimiter(clock)
        self._spool = _open_spool(spool_dir, topic, spool_max_bytes)
        self._backlog = Backlog(
            self._producer,
            topic,
            self._counters,
            self._spool,
            max_queued=max_overflow,
            on_delivery=on_delivery,
            clock=clock,
        )
        self._closed = threading.Event()
        self._poller = threading.Thread(target=self._poll_loop, name="usagemeter-emitter", daemon=True)
        self._poller.start()
        atexit.register(self.close)

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
            value = encode(CURRENT, record)
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

    @property
    def topic(self) -> str:
        """The topic this emitter sends to."""
        return self._topic

    def stats(self) -> EmitterStats:
        c = self._counters
        spool = self._spool
        return EmitterStats(
            c.emitted,
            c.delivered,
            c.spooled,
            c.replayed,
            c.failed,
            c.dropped,
            self._backlog.queued,
            spool.size_bytes if spool else 0,
            spool.corrupt if spool else 0,
            c.refused,
        )

    @property
    def spool_dir(self) -> Path | None:
        return self._spool.directory if self._spool else None

    def flush(self, timeout_s: float = 10.0) -> int:
        """Waits up to ``timeout_s`` for every queued message to be acknowledged; returns how many remain.

        Spooled events are not waited for: they are replayed when the broker is back.
        """
        deadline = self._clock.monotonic() + timeout_s
        while self._backlog.queued and self._clock.monotonic() < deadline and not self._closed.is_set():
            time.sleep(0.01)  # the background thread drains the in-memory queue (or spools it)
        remaining: int = self._producer.flush(max(0.0, deadline - self._clock.monotonic()))
        return remaining + self._backlog.queued

    def close(self, timeout_s: float = 10.0) -> None:
        """Flushes for up to ``timeout_s``, spools what is left, stops the background thread.

        Called at interpreter exit too. With a spool nothing is lost: what the broker did not
        acknowledge in time is on disk and is replayed by the next emitter on the same spool directory.
        When the broker is known to be down, it spools at once instead of waiting.
        """
        if self._closed.is_set():
            return
        self._closed.set()
        self._poller.join(timeout=2.0)
        atexit.unregister(self.close)
        lost = self._backlog.close(timeout_s)
        stats = self.stats()
        if lost:
            log.warning("usagemeter: %d usage events lost at close (no spool, or the spool is full)", lost)
        if stats.spool_bytes:
            log.info("usagemeter: %d bytes of usage events left in the spool %s", stats.spool_bytes, self.spool_dir)

    def __enter__(self) -> UsageEmitter:
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
            record["event_id"] = str(uuid.uuid4())
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

    def _send(self, key: bytes, value: bytes) -> None:
        self._counters.add("emitted")
        self._backlog.send(key, value)

    def _poll_loop(self) -> None:
        while not self._closed.is_set():
            try:
                self._backlog.step()
                self._producer.poll(0.05)
            except Exception:  # a bug here must not end metering for the life of the process
                log.exception("usagemeter: emitter background step failed")
                time.sleep(1.0)


def _open_spool(spool_dir: Path | str | DefaultSpoolDir | None, topic: str, max_bytes: int) -> Spool | None:
    if spool_dir is None:
        return None
    if spool_dir is _Default.SPOOL_DIR:
        try:
            return Spool(DEFAULT_SPOOL_ROOT / topic, max_bytes=max_bytes)
        except OSError as exc:
            log.warning("usagemeter: no spool (%s); pass spool_dir= a writable directory, or None", exc)
            return None
    try:
        return Spool(spool_dir, max_bytes=max_bytes)
    except OSError as exc:
        raise ValueError(f"spool_dir {str(spool_dir)!r} cannot be used: {exc}; give a writable directory") from exc
