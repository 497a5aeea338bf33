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
from collections.abc import Mapping
from datetime import UTC, datetime
from enum import Enum
from pathlib import Path
from typing import Any, Literal

from confluent_kafka import Producer

from usagemeter.producers.backlog import Backlog, DeliveryCallback
from usagemeter.producers.core import LIBRDKAFKA_MESSAGE_MAX_BYTES, EmitterCore
from usagemeter.producers.spool import Spool
from usagemeter.producers.stats import EmitterStats
from usagemeter.schemas.clock import SYSTEM_CLOCK, Clock

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


DEFAULT_SPOOL_ROOT = Path(".var/usagemeter/spool")
"""The default spool is ``DEFAULT_SPOOL_ROOT / <topic>``, relative to the working directory."""


class _Default(Enum):
    SPOOL_DIR = "default"


DefaultSpoolDir = Literal[_Default.SPOOL_DIR]


class UsageEmitter(EmitterCore):
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
        config = {**_PRODUCER_DEFAULTS, "bootstrap.servers": bootstrap_servers, **(kafka_config or {})}
        max_bytes = int(config.get("message.max.bytes", LIBRDKAFKA_MESSAGE_MAX_BYTES))
        super().__init__(client_id=client_id, service=service, strict=strict, max_bytes=max_bytes, clock=clock)
        self._topic = topic
        self._producer = Producer(config)
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

    @property
    def topic(self) -> str:
        """The topic this emitter sends to (``usagemeter.producers.metrics`` labels its series with it)."""
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
