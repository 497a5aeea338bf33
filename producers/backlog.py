"""What the emitter keeps when the broker cannot take its events yet, and how it gets them there later.

Where a message goes::

    emit() ─► librdkafka's queue ──────────────► broker ─► delivered
                │ full                ▲   │ gave up (message.timeout.ms, purge at close)
                ▼                     │   ▼
              in-memory queue ───► (drain)  to-spool queue ─► Spool (disk) ─► replay ─► replayed
                │ broker down or half full ──────▲                  │ cap reached
                ▼ full                                              ▼
              dropped                                             dropped

The caller's thread only ever appends to the in-memory queue (``send``). Everything that touches the
disk runs on the emitter's background thread (``step``), or in ``close`` once that thread has stopped.

Replay: the oldest spool segment is claimed when the broker is known to be up (a delivery succeeded
since the last failure) or, otherwise, every ``replay_retry_s`` as a probe: the claim's first record
is sent alone, and only its acknowledgement releases the rest. Replayed messages in the Kafka client's
queue are capped (``replay_max_in_flight``) so live events keep most of its room. A segment is deleted
only once every record in it was acknowledged (see ``spool.Claim``).

Errors retrying cannot fix (``is_permanent``: too large, invalid record, not authorized) are counted in
``failed``, logged and skipped, live and on replay, so one bad message never holds up the ones behind
it. Any other error (timeout, broker down, a topic that does not exist yet) spools the event.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Callable
from typing import Any, Literal

from confluent_kafka import KafkaError, KafkaException, Message, Producer

from usagemeter.producers.spool import Claim, Record, Spool
from usagemeter.producers.stats import Counters
from usagemeter.schemas.clock import SYSTEM_CLOCK, Clock

log = logging.getLogger("usagemeter.producers.emitter")

DeliveryCallback = Callable[[str, KafkaError | None], None]
"""Called with the event_id and None on delivery, or the Kafka error when the client gave up (the event
is then spooled, or counted failed when the error is permanent: see ``is_permanent``). A spooled event
is reported again, with None, when its replay is acknowledged: by this emitter, or by whichever emitter
on the same spool directory replays it."""

_LOG_EVERY_S = 10.0

_Outcome = Literal["sent", "wait", "refused"]
_SENT: _Outcome = "sent"
_WAIT: _Outcome = "wait"
_REFUSED: _Outcome = "refused"

PERMANENT_ERRORS: frozenset[int] = frozenset(
    {
        KafkaError.MSG_SIZE_TOO_LARGE,  # over message.max.bytes (the client's check) or the topic's limit
        KafkaError.INVALID_MSG_SIZE,
        KafkaError.RECORD_LIST_TOO_LARGE,
        KafkaError.INVALID_RECORD,  # the broker's validation refused the record (a compacted topic without key...)
        KafkaError.INVALID_TIMESTAMP,
        KafkaError.TOPIC_AUTHORIZATION_FAILED,
        KafkaError.TOPIC_EXCEPTION,  # an invalid topic name
        KafkaError.POLICY_VIOLATION,
    }
)
"""Error codes that sending the same message again cannot fix. Not in it, so spooled and replayed: timeouts,
purges, transport errors, ``_UNKNOWN_TOPIC``/``UNKNOWN_TOPIC_OR_PART`` (the topic may be created), leader
changes, and ``_FATAL`` (the client is broken, not the message: the next process can send it)."""


def is_permanent(err: KafkaError) -> bool:
    """Whether the message can never be delivered as it is.

    ``retriable()`` alone cannot tell: librdkafka sets it on few delivery reports (``_MSG_TIMED_OUT`` says
    False), so the code decides; a fatal or retriable error is never the message's fault.
    """
    return not err.fatal() and not err.retriable() and err.code() in PERMANENT_ERRORS


class LogLimiter:
    """One line per kind per 10 s, not one per event."""

    __slots__ = ("_clock", "_last")

    def __init__(self, clock: Clock = SYSTEM_CLOCK) -> None:
        self._clock = clock
        self._last: dict[str, float] = {}

    def error(self, kind: str, message: str, *args: Any) -> None:
        now = self._clock.monotonic()
        if now - self._last.get(kind, -_LOG_EVERY_S) >= _LOG_EVERY_S:
            self._last[kind] = now
            log.error(message, *args)


class Backlog:
    """The overflow queue, the spool and the replay around one Kafka producer."""

    def __init__(
        self,
        producer: Producer,
        topic: str,
        counters: Counters,
        spool: Spool | None,
        *,
        max_queued: int,
        on_delivery: DeliveryCallback | None = None,
        replay_retry_s: float = 5.0,
        replay_max_in_flight: int = 20_000,
        clock: Clock = SYSTEM_CLOCK,
    ) -> None:
        self._producer = producer
        self._topic = topic
        self._counters = counters
        self._spool = spool
        self._max_queued = max_queued
        self._on_delivery = on_delivery
        self._replay_retry_s = replay_retry_s
        self._replay_max_in_flight = replay_max_in_flight
        self._clock = clock
        self._queue: deque[Record] = deque()
        self._to_spool: deque[Record] = deque()
        self._claim: Claim | None = None
        self._next_claim_at = clock.monotonic()
        self.broker_up: bool | None = None
        """True after a delivery succeeded, False after one failed, None before either."""
        self.closed = False
        self._log = LogLimiter(clock)

    # -- the caller's thread ---------------------------------------------------------------------

    def send(self, key: bytes, value: bytes) -> None:
        """Hands one message to the Kafka client, or queues it in memory; no I/O, never raises."""
        if self.closed:
            self._drop(1, "emit() after close()")
            return
        if not self._queue and self._produce(key, value, self._delivered) is not _WAIT:
            return
        if len(self._queue) >= self._max_queued:
            self._drop(1, f"in-memory queue full ({self._max_queued})")
            return
        self._queue.append((key, value))

    @property
    def queued(self) -> int:
        return len(self._queue) + len(self._to_spool)

    # -- the background thread -------------------------------------------------------------------

    def step(self) -> None:
        """One round of the background thread: drain the queue, spool what must be, replay."""
        self._drain()
        if self._queue and (self.broker_up is not True or len(self._queue) >= self._max_queued // 2):
            self._move_queue_to_spool()
        self._write_spool()
        self._replay()
        if self._spool is not None:
            self._spool.maybe_sync()

    def close(self, timeout_s: float) -> int:
        """Flushes for up to ``timeout_s``, then spools whatever is left; returns how many were lost.

        Run it after the background thread has stopped. When the broker is known to be down and there
        is a spool, it does not wait: the events go to the spool at once.
        """
        self.closed = True
        deadline = self._clock.monotonic() + timeout_s
        dropped_before = self._counters.dropped
        if self._spool is None or (self.broker_up is not False and not self._topic_missing(deadline)):
            while self._queue and self._clock.monotonic() < deadline:
                self._drain()
                self._producer.poll(0.05)
            self._producer.flush(max(0.0, deadline - self._clock.monotonic()))
        if len(self._producer):
            # Whatever the client still holds comes back through the delivery callback as an error.
            self._producer.purge(in_queue=True, in_flight=True, blocking=True)
            settle_by = self._clock.monotonic() + 1.0
            while len(self._producer) and self._clock.monotonic() < settle_by:
                self._producer.poll(0.01)
        self._move_queue_to_spool()
        self._write_spool()
        if self._claim is not None:
            self._claim.release()
            self._claim = None
        if self._spool is not None:
            self._spool.close()
        return self._counters.dropped - dropped_before

    # -- internals -------------------------------------------------------------------------------

    def _produce(self, key: bytes, value: bytes, on_delivery: Callable[[KafkaError | None, Message], None]) -> _Outcome:
        """Hands one message to the client: ``_SENT``, or ``_WAIT`` (queue full, client error: keep it).

        ``_REFUSED`` when the client refused it for good: counted in ``failed`` and logged, and not to
        be kept, or it would block every message behind it.
        """
        try:
            self._producer.produce(self._topic, value, key, on_delivery=on_delivery)
        except BufferError:
            return _WAIT
        except KafkaException as exc:
            err = exc.args[0] if exc.args and isinstance(exc.args[0], KafkaError) else None
            if err is not None and is_permanent(err):
                self._refused_for_good(key, value, err)
                return _REFUSED
            log.debug("usagemeter: produce failed", exc_info=True)  # a fatal client error, say: keep it
            return _WAIT
        except Exception:
            log.debug("usagemeter: produce failed", exc_info=True)
            return _WAIT
        return _SENT

    def _refused_for_good(self, key: bytes, value: bytes, err: KafkaError) -> None:
        self._counters.add("failed")
        self._log.error(
            f"permanent {err.name()}",
            "usagemeter: a usage event (%s, %d bytes) refused for good, skipped (%d failed in all): %s",
            key.decode(errors="replace"),
            len(key) + len(value),
            self._counters.failed,
            err.str(),
        )

    def _topic_missing(self, deadline: float) -> bool:
        """Whether the broker says the topic does not exist (no delivery can succeed: close need not wait).

        Asked only when nothing was delivered yet and something is waiting; False when it cannot tell.
        """
        if self.broker_up is True or not (self._queue or len(self._producer)):
            return False
        try:
            wait_s = max(0.1, min(1.0, deadline - self._clock.monotonic()))
            metadata = self._producer.list_topics(self._topic, timeout=wait_s)
        except Exception:  # the broker is down or slow: not known to be missing
            return False
        topic = metadata.topics.get(self._topic)
        missing = topic is None or (topic.error is not None and topic.error.code() == KafkaError.UNKNOWN_TOPIC_OR_PART)
        if missing:
            log.warning("usagemeter: topic %r does not exist: spooling its events at close", self._topic)
        return missing

    def _drain(self) -> None:
        while self._queue:
            key, value = self._queue[0]
            if self._produce(key, value, self._delivered) is _WAIT:
                return
            self._queue.popleft()

    def _move_queue_to_spool(self) -> None:
        for _ in range(len(self._queue)):  # the caller may append meanwhile: take only what is there
            self._to_spool.append(self._queue.popleft())

    def _write_spool(self) -> None:
        if not self._to_spool:
            return
        batch = [self._to_spool.popleft() for _ in range(len(self._to_spool))]
        if self._spool is None:
            self._drop(len(batch), "no spool configured")
            return
        try:
            stored = self._spool.append(batch)
        except OSError as exc:
            self._drop(len(batch), f"spool write failed: {exc}")
            return
        self._counters.add("spooled", stored)
        if stored < len(batch):
            self._drop(len(batch) - stored, f"spool full ({self._spool.max_bytes} bytes)")

    def _replay(self) -> None:
        if self._spool is None:
            return
        now = self._clock.monotonic()
        if self._claim is None:
            if now < self._next_claim_at or len(self._producer) >= self._replay_max_in_flight:
                return
            self._claim = self._spool.claim()
            if self._claim is None:
                self._next_claim_at = now + self._replay_retry_s
                return
            log.info("usagemeter: replaying %d spooled events from %s", len(self._claim.records), self._claim.path.name)
        claim = self._claim
        while len(self._producer) < self._replay_max_in_flight:
            if self.broker_up is not True and claim.sent > claim.acked:
                break  # a probe: one record at a time until one is acknowledged
            record = claim.next_record()
            if record is None:
                break
            key, value = record
            outcome = self._produce(key, value, self._make_replay_callback(claim))
            if outcome is _WAIT:
                break
            claim.sent += 1
            if outcome is _REFUSED:  # refused for good at once: skip it
                claim.ack(True)
        if claim.finished:
            self._claim = None
            # Straight on to the next segment after a success; after a failure, wait before probing.
            self._next_claim_at = now if not claim.failed else now + self._replay_retry_s

    def _make_replay_callback(self, claim: Claim) -> Callable[[KafkaError | None, Message], None]:
        def replayed(err: KafkaError | None, msg: Message) -> None:
            permanent = err is not None and is_permanent(err)
            claim.ack(err is None or permanent)  # a permanent error is skipped, not retried forever
            if permanent:
                assert err is not None
                self._refused_for_good(msg.key() or b"", msg.value() or b"", err)
                self._report(msg, err)
            else:
                self._observe(err)
            if err is None:
                self._counters.add("replayed")
                self._report(msg, err)  # a failure was reported when the event was spooled
            if claim.finished and claim is self._claim:
                self._claim = None
                self._next_claim_at = self._clock.monotonic() + (self._replay_retry_s if claim.failed else 0.0)

        return replayed

    def _delivered(self, err: KafkaError | None, msg: Message) -> None:
        if err is None:
            self._observe(err)
            self._counters.add("delivered")
        elif is_permanent(err):
            # The broker answered: it is up, but takes this message never. Failed, not spooled.
            self._refused_for_good(msg.key() or b"", msg.value() or b"", err)
        else:
            self._observe(err)
            # Counted once, as spooled (or dropped) when written: not as failed as well.
            self._to_spool.append((msg.key() or b"", msg.value() or b""))
            self._log.error("not delivered", "usagemeter: usage events not delivered yet, spooling them: %s", err.str())
        self._report(msg, err)

    def _observe(self, err: KafkaError | None) -> None:
        was = self.broker_up
        self.broker_up = err is None
        if was is False and err is None:
            self._next_claim_at = self._clock.monotonic()  # the broker is back: replay now
            log.info("usagemeter: broker reachable again")

    def _report(self, msg: Message, err: KafkaError | None) -> None:
        if self._on_delivery is not None:
            key = msg.key()
            self._on_delivery(key.decode() if key else "", err)

    def _drop(self, n: int, why: str) -> None:
        self._counters.add("dropped", n)
        kind = why.split(":", maxsplit=1)[0]
        self._log.error(kind, "usagemeter: %d usage events dropped (%d in all): %s", n, self._counters.dropped, why)
