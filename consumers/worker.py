"""The worker: consume → batch (cut per partition) → dedup (filter, then exact check) → ledger → insert →
dead letters → commit.

The real pipeline is assembled in ``consumers/pipeline.py``; read ``Worker._complete`` here for the order
that makes it correct. Offsets move only after the rows they cover are in ClickHouse and their dead letters are
acknowledged by Kafka, so a crash at any point re-reads, and never skips, events; the ledger makes the
re-read form the same blocks, whose deduplication tokens make it a no-op (consumers/dedup.py).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor

from confluent_kafka import KafkaException, Message, TopicPartition

from usagemeter.consumers.batch import Batch
from usagemeter.consumers.dedup import Admitted, Deduplicator
from usagemeter.consumers.metrics import WorkerMetrics
from usagemeter.consumers.ports import ConsumerPort, DeadLetterPort, LedgerPort, SinkPort
from usagemeter.consumers.settings import WorkerSettings
from usagemeter.consumers.writer import BatchWriter, WriteResult
from usagemeter.schemas.clock import SYSTEM_CLOCK, Clock
from usagemeter.schemas.errors import StopRequested, StoreUnavailable

log = logging.getLogger(__name__)

_CONSUME_CHUNK = 20_000
Written = tuple[WriteResult, float]
"""A batch's write result and the seconds its successful attempt took."""
_PAUSE_AFTER_S = 5.0


class Worker:
    """The pipeline's loop and its commit order; its Kafka, store and dead-letter ends come in as parameters
    (built for real by ``consumers/pipeline.py``, in memory by the unit tests)."""

    def __init__(
        self,
        consumer: ConsumerPort,
        dead_letters: DeadLetterPort,
        sink: SinkPort,
        ledger: LedgerPort,
        settings: WorkerSettings,
        *,
        topic: str,
        clock: Clock = SYSTEM_CLOCK,
        on_flush: Callable[[WriteResult], None] | None = None,
        metrics: WorkerMetrics | None = None,
    ) -> None:
        self._topic = topic
        self._metrics = metrics
        self._settings = settings
        self._clock = clock
        self._on_flush = on_flush
        self._consumer = consumer
        self._sink = sink
        self._writer = BatchWriter(sink, ledger, dead_letters, settings)
        self._dedup = Deduplicator(ledger, settings.dedup_window_s)
        self._batch = Batch(self._clock.monotonic())
        self._stop = threading.Event()
        self._held: list[Message] = []
        self._writes = ThreadPoolExecutor(max_workers=1, thread_name_prefix="usagemeter-write")
        self._in_flight: tuple[Batch, Admitted, Future[Written]] | None = None
        self.totals = {
            "consumed": 0,
            "inserted": 0,
            "dead_lettered": 0,
            "duplicates": 0,
            "duplicates_across_batches": 0,
            "unkeyed": 0,
            "batches": 0,
        }

    def run(self, stop: threading.Event) -> None:
        """Consumes until ``stop`` is set, then drains: inserts and commits what it holds, and leaves the group.

        A stop while ClickHouse is unavailable ends the insert retries: what is not written is not
        committed, and the partitions' next owner reads it again (the ledger makes that exact).
        """
        self._stop = stop
        self._consumer.subscribe([self._topic], on_assign=self._on_assign, on_revoke=self._on_revoke)
        try:
            while not stop.is_set():
                self._poll_once()
            self.flush()
        except StopRequested:
            log.warning("stopped while ClickHouse was unavailable: what was not written is not committed")
            # Forgotten, not flushed again when closing the consumer revokes the partitions.
            self._in_flight, self._batch, self._held = None, Batch(self._clock.monotonic()), []
        finally:
            self._writes.shutdown(wait=True)
            self._consumer.close()
            self._sink.close()

    def _poll_once(self) -> None:
        before = self._clock.monotonic()
        # An empty batch has no age: wait for messages as long as a write in flight allows.
        age = before - self._batch.started_at if self._batch.size else 0.0
        wait = self._settings.max_batch_wait_s - age
        room = self._settings.max_batch_rows - self._batch.size
        unreached = self._batch.unreached_cuts()
        if unreached:
            room = _CONSUME_CHUNK  # a slice read again must reach its cut, however full the batch is
        # While a write is in flight, come back often enough to commit it as soon as it is done.
        longest = 0.02 if self._in_flight is not None else 0.5
        messages = self._held or self._consumer.consume(
            max(1, min(room, _CONSUME_CHUNK)), timeout=max(0.0, min(wait, longest))
        )
        if not self._held:
            self.totals["consumed"] += len(messages)
            if messages and self._metrics is not None:
                self._metrics.consumed.inc(len(messages))
        self._held = []
        if messages:
            if not self._batch.size:
                self._batch.started_at = before  # the first of them may have arrived as the wait began
            self._batch.add(messages)
        full = self._batch.size >= self._settings.max_batch_rows
        old = self._clock.monotonic() - self._batch.started_at >= self._settings.max_batch_wait_s
        if unreached and old:
            self._release_compacted_cuts(unreached)
        if self._batch.size and (full or old) and not self._batch.unreached_cuts():
            self._submit(keep_alive=True)
        elif self._in_flight is not None and self._in_flight[2].done():
            self._complete(keep_alive=True)

    def flush(self) -> None:
        """Writes and commits everything consumed so far; returns when all of it is committed."""
        self._submit(keep_alive=False)
        self._complete(keep_alive=False)

    def _submit(self, *, keep_alive: bool) -> None:
        """Starts writing the current batch in the background, after the previous write is committed.

        One write is in flight while the next batch is consumed, so Python's per-message work runs
        beside ClickHouse's insert; memory holds two batches at most.
        """
        self._complete(keep_alive=keep_alive)
        batch = self._batch
        for where in batch.unreached_cuts():
            batch.drop_partition(where)  # only when stopping or revoked: the next owner reads it again
        self._dedup.cut_done(batch.cut_partitions())
        self._batch = Batch(self._clock.monotonic(), self._dedup.cuts(), self._dedup.references(), self._dedup.floors())
        self._held = batch.held + self._held
        if not batch.offsets:
            return
        batch.reference_us = self._clock.now_us()
        admitted = self._dedup.drop_seen(batch, batch.reference_us / 1e6)
        self._in_flight = (batch, admitted, self._writes.submit(self._write_with_retry, batch, admitted))

    def _complete(self, *, keep_alive: bool) -> None:
        """Waits for the write in flight, then commits it. The order that makes a batch durable:

        1. drop the ids ``ingested_ids`` holds among those the filter suspects, then insert each
           writer-schema group into ClickHouse (bad messages found and set aside);
        2. produce the dead letters and wait for Kafka to acknowledge them;
        3. commit, synchronously, the offset after the last message of each partition in the batch.

        Steps 1-2 run on the write thread, retried with back-off while ClickHouse is unavailable; step 3
        runs here, only after they succeeded. A long wait pauses consumption (``keep_alive``) so the
        consumer stays in its group without taking more messages.
        """
        if self._in_flight is None:
            return
        batch, admitted, write = self._in_flight
        if keep_alive:
            self._wait_paused(write)
        result, write_s = write.result()
        self._in_flight = None
        # Before the commit, so an id is in the filter before it can be re-delivered: the next batch is
        # checked against these ids once this returns.
        self._dedup.remember(admitted, result.rejected, self._clock.now_us() / 1e6)
        offsets = [TopicPartition(t, p, last + 1) for (t, p), (_, last) in batch.offsets.items()]
        committed = self._consumer.commit(offsets=offsets, asynchronous=False) or []
        failed = [tp for tp in committed if tp.error is not None]
        if failed:  # per-partition errors come back in the result, not as an exception
            raise KafkaException(failed[0].error)
        log.debug("committed %s", ", ".join(f"{tp.partition}@{tp.offset}" for tp in offsets))
        self.totals["inserted"] += result.inserted
        self.totals["dead_lettered"] += result.dead_lettered
        self.totals["duplicates"] += result.duplicates
        self.totals["duplicates_across_batches"] += admitted.dropped
        self.totals["unkeyed"] += admitted.unkeyed
        self.totals["batches"] += 1
        if self._metrics is not None:
            self._report(batch, admitted, result, write_s)
        if self._on_flush is not None:
            self._on_flush(result)

    def _report(self, batch: Batch, admitted: Admitted, result: WriteResult, write_s: float) -> None:
        """The committed batch's metrics: per block and per partition, never per event."""
        assert self._metrics is not None
        now_ms = self._clock.now_us() / 1000
        delays = [
            (now_ms - stamp) / 1000
            for group in batch.groups.values()
            if group.messages and (stamp := group.messages[0].timestamp()[1]) > 0
        ]
        lag = []
        for topic, partition in batch.offsets:
            marks = self._consumer.get_watermark_offsets(TopicPartition(topic, partition), cached=True)
            if marks[1] >= 0:
                lag.append((topic, partition, marks[1] - (batch.offsets[(topic, partition)][1] + 1)))
        self._metrics.committed(
            rows=batch.size,
            inserted=result.inserted,
            # the batch's duplicates count both: repeated keys within it, and those the window dropped
            dedup={"in_batch": result.duplicates - admitted.dropped, "across_batches": admitted.dropped},
            dead_letters=result.reasons,
            unkeyed=admitted.unkeyed,
            write_s=write_s,
            delays_s=delays,
            lag=lag,
        )

    def _wait_paused(self, write: Future[Written]) -> None:
        try:
            write.result(timeout=_PAUSE_AFTER_S)
            return
        except TimeoutError:
            pass
        paused = self._consumer.assignment()
        self._consumer.pause(paused)
        log.warning("a write has taken over %.0f s; consumption paused until it succeeds", _PAUSE_AFTER_S)
        while not write.done():
            # Keeps the consumer in its group; paused partitions deliver nothing new, and anything
            # already fetched is held for the next batch.
            self._held.extend(self._consumer.consume(_CONSUME_CHUNK, timeout=0.5))
        self._consumer.resume(paused)

    def _write_with_retry(self, batch: Batch, admitted: Admitted) -> Written:
        """The batch's suspected duplicates checked exactly, then the batch written; and how long its
        successful attempt took (for the insert latency histogram)."""
        backoff = 0.2
        while True:
            started = self._clock.monotonic()
            try:
                self._dedup.confirm(batch, admitted)
                return self._writer.write(batch), self._clock.monotonic() - started
            except StoreUnavailable as exc:
                if self._metrics is not None:
                    self._metrics.insert_retries.inc()
                log.warning("ClickHouse unavailable (%s); retrying the same block in %.1f s", exc, backoff)
                if self._stop.wait(backoff):
                    raise StopRequested from exc
                backoff = min(backoff * 2, self._settings.insert_retry_max_s)

    def _release_compacted_cuts(self, unreached: list[tuple[str, int]]) -> None:
        """A cut whose last messages are gone (compaction, retention) is reached once the consumer is past it."""
        positions = self._consumer.position([TopicPartition(t, p) for t, p in unreached])
        cuts = self._dedup.cuts()
        for tp in positions:
            where = (tp.topic, tp.partition)
            if tp.offset > cuts.get(where, tp.offset):
                self._batch.release_cut(where)

    def _on_assign(self, consumer: ConsumerPort, partitions: list[TopicPartition]) -> None:
        """Loads the dedup window and any cut to honour for each partition given to this worker."""
        committed = consumer.committed(partitions, timeout=30)
        for topic in {tp.topic for tp in committed}:
            offsets = {tp.partition: tp.offset for tp in committed if tp.topic == topic}
            self._dedup.assign(topic, offsets, self._clock.now_us() / 1e6)
        self._batch.add_cuts(self._dedup.cuts(), self._dedup.references())
        given = {(tp.topic, tp.partition) for tp in committed}
        floors = {where: floor for where, floor in self._dedup.floors().items() if where in given}
        if floors:  # what a dead owner stored completely but did not commit is committed now
            done = [TopicPartition(topic, partition, floor) for (topic, partition), floor in floors.items()]
            consumer.commit(offsets=done, asynchronous=False)
            self._batch.add_floors(floors)
        log.info("assigned %s", ", ".join(f"{tp.topic}/{tp.partition}@{tp.offset}" for tp in committed))

    def _on_revoke(self, consumer: ConsumerPort, partitions: list[TopicPartition]) -> None:
        """Before partitions move to another worker, what was consumed from them is written and committed."""
        self.flush()
        revoked = {(tp.topic, tp.partition) for tp in partitions}
        self._held = [m for m in self._held if (m.topic(), m.partition()) not in revoked]
        self._dedup.revoke(list(revoked))
        if self._metrics is not None:
            self._metrics.revoked(revoked)
        # The batch the flush opened still carries the revoked partitions' cuts: one that is never reached
        # would hold every message of the partitions kept. It is empty, so it is opened again without them.
        self._batch = Batch(self._clock.monotonic(), self._dedup.cuts(), self._dedup.references(), self._dedup.floors())
