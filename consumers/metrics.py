"""The worker's Prometheus series, updated once per batch, never once per event.

The hot loop stays what the benchmarks measured: a consume call adds its count to one counter, and a
committed batch updates the rest in one call (``committed``), each a handful of increments and
observations whatever the batch size. Consumer lag is computed per partition of the committed batch from
the high watermark the consumer already holds (``get_watermark_offsets(cached=True)``: no broker request),
so an idle worker does no metric work at all. Names follow Prometheus conventions and ARCHITECTURE.md:
``usagemeter_`` prefix, ``_total`` counters, ``_seconds``; lag is labelled as kafka_exporter labels it
(``consumergroup``, ``topic``, ``partition``), so its dashboards and alerts apply; nothing is labelled by
client or user (per-client numbers are ClickHouse's).

Ingest delay is measured from the Kafka message timestamp (CreateTime: when the emitter handed the event
to its Kafka client, within milliseconds of the event time for a live emit) to the commit, for the oldest
message of each inserted block, so it is the worst case of each block. The worker never decodes the Avro
body, so the event's own ``event_time`` is not read; an event replayed from a producer's spool carries its
replay time.
"""

from __future__ import annotations

from collections import Counter as Tally
from collections.abc import Iterable
from typing import Literal

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

_ROWS_BUCKETS = (1, 10, 100, 1_000, 5_000, 10_000, 25_000, 50_000, 100_000, 250_000, 1_000_000)
_SECONDS_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)
_DELAY_BUCKETS = (0.1, 0.25, 0.5, 1, 2, 3, 5, 10, 30, 60, 300, 900, 3600)

DedupWhere = Literal["in_batch", "across_batches"]


class WorkerMetrics:
    """The worker's series on ``registry`` (one registry per process: ``cli`` makes it and serves it)."""

    def __init__(self, registry: CollectorRegistry, *, consumer_group: str) -> None:
        self._group = consumer_group
        self.consumed = Counter(
            "usagemeter_worker_consumed", "Messages consumed from Kafka.", registry=registry
        )
        self.inserted = Counter(
            "usagemeter_worker_inserted", "Events inserted into ClickHouse and committed.", registry=registry
        )
        self.deduplicated = Counter(
            "usagemeter_worker_deduplicated",
            "Re-sent events dropped before the insert: within one batch, or already inserted by an earlier one.",
            ["where"],
            registry=registry,
        )
        for where in ("in_batch", "across_batches"):
            self.deduplicated.labels(where)  # both series exist from the start, at 0
        self.dead_lettered = Counter(
            "usagemeter_worker_dead_lettered", "Messages sent to the dead-letter topic.", ["reason"], registry=registry
        )
        self.unkeyed = Counter(
            "usagemeter_worker_unkeyed", "Messages without a key (not deduplicated across batches).", registry=registry
        )
        self.batches = Counter("usagemeter_worker_batches", "Batches inserted and committed.", registry=registry)
        self.batch_rows = Histogram(
            "usagemeter_worker_batch_rows", "Messages per committed batch.", buckets=_ROWS_BUCKETS, registry=registry
        )
        self.insert_duration = Histogram(
            "usagemeter_worker_insert_duration_seconds",
            "Time to write one batch: its inserts and dead letters, one successful attempt (retries not included).",
            buckets=_SECONDS_BUCKETS,
            registry=registry,
        )
        self.insert_retries = Counter(
            "usagemeter_worker_insert_retries", "Batch writes retried because ClickHouse was unavailable.",
            registry=registry,
        )  # fmt: skip
        self.ingest_delay = Histogram(
            "usagemeter_worker_ingest_delay_seconds",
            "Kafka message timestamp to commit, for the oldest message of each inserted block.",
            buckets=_DELAY_BUCKETS,
            registry=registry,
        )
        self.lag = Gauge(
            "usagemeter_consumergroup_lag",
            "Messages behind the high watermark after the last commit, per partition (kafka_exporter's labels).",
            ["consumergroup", "topic", "partition"],
            registry=registry,
        )

    def committed(
        self,
        *,
        rows: int,
        inserted: int,
        dedup: dict[DedupWhere, int],
        dead_letters: Tally[str],
        unkeyed: int,
        write_s: float,
        delays_s: Iterable[float],
        lag: Iterable[tuple[str, int, int]],
    ) -> None:
        """One committed batch: ``lag`` is (topic, partition, messages behind) for its partitions."""
        self.batches.inc()
        self.batch_rows.observe(rows)
        self.inserted.inc(inserted)
        for where, count in dedup.items():
            self.deduplicated.labels(where).inc(count)
        for reason, count in dead_letters.items():
            self.dead_lettered.labels(reason).inc(count)
        self.unkeyed.inc(unkeyed)
        self.insert_duration.observe(write_s)
        for delay in delays_s:
            self.ingest_delay.observe(max(0.0, delay))
        for topic, partition, behind in lag:
            self.lag.labels(self._group, topic, str(partition)).set(max(0, behind))

    def revoked(self, partitions: Iterable[tuple[str, int]]) -> None:
        """Partitions that moved to another worker: their lag is that worker's to report now."""
        for topic, partition in partitions:
            try:
                self.lag.remove(self._group, topic, str(partition))
            except KeyError:
                continue
