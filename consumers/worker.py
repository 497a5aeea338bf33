"""The worker: consume → batch (dedup by key, group by schema) → insert → dead letters → commit.

This module is the one place the pipeline is assembled; read ``Worker.flush`` for the order that makes
it correct. Offsets move only after the rows they cover are in ClickHouse and their dead letters are
acknowledged by Kafka, so a crash at any point re-reads, and never skips, events; the insert
deduplication token makes the re-read of an already-written batch a no-op.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

from confluent_kafka import Consumer, Message, Producer, TopicPartition

from usagemeter.consumers.batch import Batch
from usagemeter.consumers.clock import Clock, SystemClock
from usagemeter.consumers.dead_letters import DeadLetters
from usagemeter.consumers.errors import StoreUnavailable
from usagemeter.consumers.settings import KafkaSettings, WorkerSettings
from usagemeter.consumers.sink import ClickHouseSink
from usagemeter.consumers.writer import BatchWriter, WriteResult

log = logging.getLogger(__name__)

_CONSUME_CHUNK = 20_000
_CONSUMER_DEFAULTS: dict[str, Any] = {
    "enable.auto.commit": False,
    "enable.auto.offset.store": False,
    "auto.offset.reset": "earliest",
    "fetch.max.bytes": 64 * 1024 * 1024,
    "max.partition.fetch.bytes": 16 * 1024 * 1024,
    "queued.max.messages.kbytes": 256 * 1024,
    "fetch.wait.max.ms": 100,
}


class Worker:
    def __init__(
        self,
        kafka: KafkaSettings,
        sink: ClickHouseSink,
        settings: WorkerSettings,
        clock: Clock | None = None,
        on_flush: Callable[[WriteResult], None] | None = None,
    ) -> None:
        self._kafka = kafka
        self._settings = settings
        self._clock = clock or SystemClock()
        self._on_flush = on_flush
        self._consumer = Consumer({**_CONSUMER_DEFAULTS, **kafka.client_config(), "group.id": kafka.group_id})
        dlq_producer = Producer({**kafka.client_config(), "enable.idempotence": True, "acks": "all"})
        self._writer = BatchWriter(sink, DeadLetters(dlq_producer, kafka.dlq_topic), self._clock)
        self._batch = Batch(self._clock.monotonic())
        self._held: list[Message] = []
        self.totals = {"consumed": 0, "inserted": 0, "dead_lettered": 0, "duplicates": 0, "batches": 0}

    def run(self, stop: threading.Event) -> None:
        """Consumes until ``stop`` is set, then drains: inserts and commits what it holds, and leaves the group."""
        self._consumer.subscribe([self._kafka.topic], on_revoke=self._on_revoke)
        try:
            while not stop.is_set():
                self._poll_once()
            self.flush()
        finally:
            self._consumer.close()

    def _poll_once(self) -> None:
        wait = self._settings.max_batch_wait_s - (self._clock.monotonic() - self._batch.started_at)
        room = self._settings.max_batch_rows - self._batch.size
        messages = self._held or self._consumer.consume(min(room, _CONSUME_CHUNK), timeout=max(0.0, min(wait, 0.5)))
        self._held = []
        if messages:
            if not self._batch.size:
                self._batch.started_at = self._clock.monotonic()
            self._batch.add(messages)
            self.totals["consumed"] += len(messages)
        full = self._batch.size >= self._settings.max_batch_rows
        old = self._clock.monotonic() - self._batch.started_at >= self._settings.max_batch_wait_s
        if self._batch.size and (full or old):
            self.flush()

    def flush(self) -> None:
        """Makes the current batch durable, then commits it:

        1. insert each writer-schema group into ClickHouse (bad messages found and set aside);
        2. produce the dead letters and wait for Kafka to acknowledge them;
        3. commit, synchronously, the offset after the last message of each partition in the batch.

        While ClickHouse is unavailable, step 1 is retried with back-off and the partitions stay paused,
        so memory holds one batch; nothing is committed until all three steps succeeded.
        """
        batch = self._batch
        if not batch.size:
            return
        result = self._write_with_retry(batch)
        self._consumer.commit(
            offsets=[
                TopicPartition(topic, partition, last + 1) for (topic, partition), (_, last) in batch.offsets.items()
            ],
            asynchronous=False,
        )
        self._batch = Batch(self._clock.monotonic())
        self.totals["inserted"] += result.inserted
        self.totals["dead_lettered"] += result.dead_lettered
        self.totals["duplicates"] += result.duplicates
        self.totals["batches"] += 1
        if self._on_flush is not None:
            self._on_flush(result)

    def _write_with_retry(self, batch: Batch) -> WriteResult:
        backoff = 0.2
        paused: list[TopicPartition] = []
        while True:
            try:
                result = self._writer.write(batch)
            except StoreUnavailable as exc:
                if not paused:
                    paused = self._consumer.assignment()
                    self._consumer.pause(paused)
                log.warning("ClickHouse unavailable (%s); retrying in %.1f s, consumption paused", exc, backoff)
                # Keeps the consumer in its group while waiting; paused partitions deliver nothing new,
                # and anything already fetched is held for the next batch, not added to this one.
                self._held.extend(self._consumer.consume(_CONSUME_CHUNK, timeout=backoff))
                backoff = min(backoff * 2, self._settings.insert_retry_max_s)
                continue
            if paused:
                self._consumer.resume(paused)
            return result

    def _on_revoke(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        """Before partitions move to another worker, what was consumed from them is written and committed."""
        self.flush()
