"""Workers scale out in one consumer group: on an 8-partition topic, two workers start, a third joins mid-run and
dies mid-run (after its insert, before its commit), a fourth joins; the aggregates at the end equal those of the
unique events inserted once, to the last token and the last 1e-18 dollar, while 10 % of the events are re-sent.

How the workers share the store here: in embedded mode one process owns the chDB directory, so the workers are
threads of this process, each with its own ClickHouse session on the one engine, as worker processes each have
their own connection to a server; nothing else is shared (each has its own Kafka consumer, dead-letter producer,
ledger reader and dedup window). On a server they would be processes on any machines, and the dead one a
SIGKILLed process (tests/integration/test_fault_worker_kills.py kills processes in embedded mode).

The death: right after one of the third worker's inserts returned, its write thread and its loop both stop for
good (``Death``), so its rows are in the store, its offsets are not committed, and its consumer never polls
again. librdkafka then leaves the group once ``max.poll.interval.ms`` (10 s here) has passed, as the group
coordinator drops a killed process after ``session.timeout.ms``; the partitions' new owners read the slice
again, and the ingest ledger and insert deduplication tokens make that a no-op. At the end the dead worker's
threads are released with an error (so the interpreter can exit); nothing it does then can commit.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable
from typing import Any, Literal

import pytest
from clickhouse_connect.driver.client import Client
from confluent_kafka import Consumer, Message, TopicPartition

from tests.faults.traffic import aggregates, events, lag, produce, reference_aggregates, with_resends
from usagemeter.consumers.dead_letters import DeadLetters
from usagemeter.consumers.ledger import Ledger
from usagemeter.consumers.pipeline import dead_letter_producer, kafka_consumer
from usagemeter.consumers.settings import ClickHouseSettings, KafkaSettings, WorkerSettings
from usagemeter.consumers.sink import ClickHouseSink
from usagemeter.consumers.store import connect, more_sessions
from usagemeter.consumers.worker import Worker
from usagemeter.pricing import pricebook
from usagemeter.schemas import WriterSchema

pytestmark = [pytest.mark.kafka, pytest.mark.clickhouse]
log = logging.getLogger(__name__)
PARTITIONS = 8
PRODUCE_S = 20.0
"""Long enough that events still arrive after the group settles without the dead worker (~10 s after it died)."""


class Killed(Exception):
    """Raised in the dead worker's threads when the test ends, so that they end."""


class Death:
    """The moment a worker dies, and the end of the test that releases its stopped threads."""

    def __init__(self) -> None:
        self.dead = threading.Event()
        self.released = threading.Event()

    def stop_here(self) -> None:
        self.dead.set()
        self.released.wait()
        raise Killed


class DyingSink:
    """A real sink that dies right after its ``after``-th insert returned (counted across its sessions)."""

    def __init__(self, sink: ClickHouseSink, after: int, death: Death) -> None:
        self._sink = sink
        self._left = after
        self._counting = threading.Lock()
        self._death = death

    @property
    def sessions(self) -> int:
        return self._sink.sessions

    def insert(self, schema: WriterSchema, bodies: list[bytes], token: str) -> None:
        self._sink.insert(schema, bodies, token)
        with self._counting:
            self._left -= 1
            dies = self._left <= 0
        if dies:
            self._death.stop_here()

    def close(self) -> None:
        self._sink.close()


class DyingConsumer:
    """The real consumer, which stops polling when the worker dies (no poll: librdkafka leaves the group)."""

    def __init__(self, consumer: Consumer, death: Death) -> None:
        self._consumer = consumer
        self._death = death

    def subscribe(self, topics: list[str], on_assign: Any = None, on_revoke: Any = None) -> None:
        self._consumer.subscribe(topics, on_assign=on_assign, on_revoke=on_revoke)

    def consume(self, num_messages: int = 1, timeout: float = -1) -> list[Message]:
        if self._death.dead.is_set():
            self._death.stop_here()
        return list(self._consumer.consume(num_messages, timeout=timeout))

    def commit(self, *, offsets: list[TopicPartition], asynchronous: Literal[False]) -> list[TopicPartition]:
        if self._death.dead.is_set():
            raise Killed
        return list(self._consumer.commit(offsets=offsets, asynchronous=asynchronous) or [])

    def pause(self, partitions: list[TopicPartition]) -> None:
        self._consumer.pause(partitions)

    def resume(self, partitions: list[TopicPartition]) -> None:
        self._consumer.resume(partitions)

    def assignment(self) -> list[TopicPartition]:
        return list(self._consumer.assignment())

    def position(self, partitions: list[TopicPartition]) -> list[TopicPartition]:
        return list(self._consumer.position(partitions))

    def committed(self, partitions: list[TopicPartition], timeout: float = -1) -> list[TopicPartition]:
        return list(self._consumer.committed(partitions, timeout=timeout))

    def get_watermark_offsets(
        self, partition: TopicPartition, timeout: float = -1, cached: bool = False
    ) -> tuple[int, int]:
        low, high = self._consumer.get_watermark_offsets(partition, timeout=timeout, cached=cached)
        return int(low), int(high)

    def close(self) -> None:
        with contextlib.suppress(Exception):  # a dead member's revoke cannot flush: its write was killed
            self._consumer.close()


def _worker(
    kafka: KafkaSettings, settings: WorkerSettings, client: Client, death: Death | None = None, after: int = 0
) -> Worker:
    """As consumers/pipeline.build_worker assembles it; with ``death``, one that dies after ``after`` inserts."""
    consumer = kafka_consumer(kafka)
    sink = ClickHouseSink(client, more_sessions(client, settings.insert_sessions - 1))
    return Worker(
        DyingConsumer(consumer, death) if death else consumer,
        DeadLetters(dead_letter_producer(kafka, settings), kafka.dlq_topic, settings.dead_letter_max_bytes),
        DyingSink(sink, after, death) if death else sink,
        Ledger(client),
        settings,
        topic=kafka.topic,
    )


def _start(worker: Worker, stop: threading.Event, failures: list[BaseException]) -> threading.Thread:
    def run() -> None:
        try:
            worker.run(stop)
        except BaseException as exc:
            failures.append(exc)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


def _wait(done: Callable[[], bool], timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not done():
        assert time.monotonic() < deadline, what
        time.sleep(0.2)


def test_workers_joining_and_dying_mid_run_count_every_event_once(
    kafka_broker: Any,
    kafka_topic: Callable[..., str],
    clickhouse: Client,
    clickhouse_settings: ClickHouseSettings,
    clickhouse_factory: Callable[[], ClickHouseSettings],
) -> None:
    bootstrap = kafka_broker.bootstrap_servers
    topic, dlq_topic = kafka_topic(PARTITIONS), kafka_topic(1)
    unique = events(12_000, seed=81)
    stream = with_resends(unique, 0.10, seed=82)
    pricebook.load(clickhouse)
    reference_store = connect(clickhouse_factory())
    pricebook.load(reference_store)
    expected = reference_aggregates(reference_store, unique)

    kafka = KafkaSettings(
        bootstrap_servers=bootstrap, topic=topic, dlq_topic=dlq_topic, group_id=f"group-{topic}",
        extra_config={"max.poll.interval.ms": "10000", "session.timeout.ms": "6000"},
    )  # fmt: skip
    settings = WorkerSettings(max_batch_rows=1_000, max_batch_wait_s=0.2)
    stop, failures = threading.Event(), list[BaseException]()

    def session() -> Client:
        return connect(clickhouse_settings)

    steady = [_worker(kafka, settings, session()) for _ in range(2)]
    threads = [_start(worker, stop, failures) for worker in steady]
    producing = threading.Thread(target=produce, args=(bootstrap, topic, stream, PRODUCE_S), daemon=True)
    producing.start()

    time.sleep(2.0)
    death, after_death = Death(), list[BaseException]()
    dying = _start(_worker(kafka, settings, session(), death, after=2), threading.Event(), after_death)
    _wait(death.dead.is_set, 60, "the third worker was given partitions and inserted twice")
    log.warning("the third worker died after an insert, before its commit")

    added = _worker(kafka, settings, session())
    threads.append(_start(added, stop, failures))
    steady.append(added)

    producing.join(120)
    assert not producing.is_alive()
    _wait(lambda: lag(bootstrap, topic, kafka.group_id, PARTITIONS) == 0, 120,
          "the group committed every partition after the death")  # fmt: skip
    stop.set()
    death.released.set()
    for thread in [*threads, dying]:
        thread.join(60)
    assert not failures, f"a worker failed: {failures[0]!r}"
    assert all(isinstance(exc, Killed) for exc in after_death), after_death
    assert added.totals["consumed"] > 0, f"the added worker was given partitions with events: {added.totals}"

    counted = clickhouse.query("SELECT count(), uniqExact(event_id) FROM usage_events").result_rows[0]
    log.warning(
        "group: %d unique events, %d sent; usage_events %s; workers' totals %s",
        len(unique), len(stream), counted, [w.totals for w in steady],
    )  # fmt: skip
    assert tuple(counted) == (len(unique), len(unique)), "every event stored once"
    assert aggregates(clickhouse, "usage_15m_by_user") == expected
    assert aggregates(clickhouse, "usage_15m_by_model") == expected
