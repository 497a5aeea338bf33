"""``UsageEmitter``: what a service calls once per metered API call.

The caller never pays for metering: ``emit()`` encodes the event (Avro single-object encoding, keyed by
``event_id`` so a re-sent event lands in the same partition) and hands it to librdkafka's in-memory
queue without waiting for the broker. When that queue is full the message goes to a bounded overflow
queue that a background thread drains; only past that bound are messages dropped, and counted.
Errors are counted and logged, never raised into the caller, unless ``strict=True``.
"""

from __future__ import annotations

import atexit
import io
import logging
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from types import TracebackType
from typing import Any, Unpack

from confluent_kafka import KafkaError, Message, Producer
from fastavro import schemaless_writer

from usagemeter.producers.fields import EventFields
from usagemeter.producers.stats import Counters, EmitterStats
from usagemeter.schemas import CURRENT, UsageEvent, check_record
from usagemeter.schemas.wire import MAGIC

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
}

DeliveryCallback = Callable[[str, KafkaError | None], None]
"""Called with the event_id and None on delivery, or the Kafka error when the client gave up."""


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
    ) -> None:
        self._topic = topic
        self._client_id = client_id
        self._service = service
        self._strict = strict
        self._on_delivery = on_delivery
        self._counters = Counters()
        self._overflow: deque[tuple[bytes, bytes]] = deque()
        self._max_overflow = max_overflow
        self._producer = Producer(
            {**_PRODUCER_DEFAULTS, "bootstrap.servers": bootstrap_servers, **(kafka_config or {})}
        )
        self._schema = CURRENT.plain
        self._header = MAGIC + CURRENT.fingerprint
        self._last_error_log = -10.0
        self._closed = threading.Event()
        self._poller = threading.Thread(target=self._poll_loop, name="usagemeter-emitter", daemon=True)
        self._poller.start()
        atexit.register(self.close)

    def emit(self, model: str, *, client_id: str = "", **fields: Unpack[EventFields]) -> str | None:
        """Sends one event; returns its event_id, or None when it could not be encoded (non-strict)."""
        try:
            record = self._record(model, client_id, fields)
            if self._strict:
                self._check(record)
            buffer = io.BytesIO()
            buffer.write(self._header)
            schemaless_writer(buffer, self._schema, record)
        except Exception:
            if self._strict:
                raise
            self._counters.add("failed")
            log.exception("usagemeter: event for model %r not sent", model)
            return None
        event_id: str = record["event_id"]
        self._send(event_id.encode(), buffer.getvalue())
        return event_id

    def emit_event(self, event: UsageEvent) -> str | None:
        """Sends an already validated ``UsageEvent``."""
        record = event.to_record()
        model = record.pop("model")
        client_id = record.pop("client_id")
        return self.emit(model, client_id=client_id, **record)

    def stats(self) -> EmitterStats:
        c = self._counters
        return EmitterStats(c.emitted, c.delivered, c.failed, c.dropped, len(self._overflow))

    def flush(self, timeout_s: float = 10.0) -> int:
        """Waits up to ``timeout_s`` for every queued message to be acknowledged; returns how many remain."""
        deadline = time.monotonic() + timeout_s
        while self._overflow and time.monotonic() < deadline:
            self._drain_overflow()
            self._producer.poll(0.05)
        remaining: int = self._producer.flush(max(0.0, deadline - time.monotonic()))
        return remaining + len(self._overflow)

    def close(self, timeout_s: float = 10.0) -> None:
        """Flushes, then stops the background thread. Called at interpreter exit too."""
        if self._closed.is_set():
            return
        remaining = self.flush(timeout_s)
        self._closed.set()
        self._poller.join(timeout=1.0)
        atexit.unregister(self.close)
        if remaining:
            log.warning("usagemeter: %d usage events not acknowledged at close", remaining)

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
            record["event_time"] = time.time_ns() // 1000
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

    def _check(self, record: dict[str, Any]) -> None:
        full = {field["name"]: field.get("default") for field in CURRENT.plain["fields"]} | record
        problem = check_record(full, time.time_ns() // 1000)
        if problem:
            raise ValueError(f"{problem.reason}: {problem.message}")

    def _send(self, key: bytes, value: bytes) -> None:
        self._counters.add("emitted")
        if self._overflow:
            self._enqueue(key, value)
            return
        try:
            self._producer.produce(self._topic, value, key, on_delivery=self._delivered)
        except BufferError:
            self._enqueue(key, value)

    def _enqueue(self, key: bytes, value: bytes) -> None:
        if len(self._overflow) >= self._max_overflow:
            self._counters.add("dropped")
            log.error("usagemeter: overflow queue full (%d), usage event dropped", self._max_overflow)
            return
        self._overflow.append((key, value))

    def _drain_overflow(self) -> None:
        while self._overflow:
            key, value = self._overflow[0]
            try:
                self._producer.produce(self._topic, value, key, on_delivery=self._delivered)
            except BufferError:
                return
            self._overflow.popleft()

    def _delivered(self, err: KafkaError | None, msg: Message) -> None:
        if err is None:
            self._counters.add("delivered")
        else:
            self._counters.add("failed")
            now = time.monotonic()
            if now - self._last_error_log >= 10.0:  # one line per 10 s, not one per event
                self._last_error_log = now
                log.error("usagemeter: usage events not delivered (%d so far): %s", self._counters.failed, err)
        if self._on_delivery is not None:
            key = msg.key()
            self._on_delivery(key.decode() if key else "", err)

    def _poll_loop(self) -> None:
        while not self._closed.is_set():
            self._drain_overflow()
            self._producer.poll(0.1)
