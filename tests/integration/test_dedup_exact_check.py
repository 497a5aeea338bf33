"""The dedup filter's "maybe" is checked against ``ingested_ids`` before an event is dropped: a false
positive costs a lookup, never an event; a true duplicate is dropped, also after a restart."""

from __future__ import annotations

import time
import uuid

import numpy as np
import pytest
from clickhouse_connect.driver.client import Client
from confluent_kafka import TIMESTAMP_CREATE_TIME, Message

from tests.fixtures.memory_kafka import Journal, MemoryDeadLetters
from usagemeter.consumers.batch import Batch
from usagemeter.consumers.dedup import Deduplicator
from usagemeter.consumers.id_window import U64, IdWindow, Mask
from usagemeter.consumers.ledger import Ledger
from usagemeter.consumers.settings import WorkerSettings
from usagemeter.consumers.sink import ClickHouseSink
from usagemeter.consumers.writer import BatchWriter
from usagemeter.schemas import CURRENT
from usagemeter.schemas.wire import encode

pytestmark = pytest.mark.clickhouse

TOPIC = "events"


class SuspectsAll(IdWindow):
    """A filter as wrong as a filter may be: "maybe" for every id."""

    def contains(self, hi: U64, lo: U64) -> Mask:
        return np.ones(len(lo), dtype=np.bool_)


def _messages(ids: list[str], first_offset: int) -> list[Message]:
    now_us = time.time_ns() // 1000
    return [
        Message(
            topic=TOPIC,
            partition=0,
            offset=first_offset + i,
            key=event_id.encode(),
            value=encode(CURRENT, {"event_id": event_id, "event_time": now_us, "client_id": "acme", "model": "m"}),
            timestamp=(TIMESTAMP_CREATE_TIME, 0),
        )
        for i, event_id in enumerate(ids)
    ]


def _write(
    dedup: Deduplicator, writer: BatchWriter, ids: list[str], first_offset: int, reference_us: int | None = None
) -> int:
    batch = Batch(time.monotonic())
    batch.add(_messages(ids, first_offset))
    batch.reference_us = reference_us or time.time_ns() // 1000  # a slice read again keeps its first one
    admitted = dedup.drop_seen(batch, time.time())
    dedup.confirm(batch, admitted)
    writer.write(batch)
    dedup.remember(admitted, set(), time.time())
    return admitted.dropped


def _count(clickhouse: Client) -> int:
    return int(clickhouse.query("SELECT count() FROM usage_events").result_rows[0][0])


def test_a_filter_suspecting_every_id_drops_only_the_real_duplicates(clickhouse: Client) -> None:
    ledger = Ledger(clickhouse)
    dedup = Deduplicator(ledger, 3_600, SuspectsAll)
    writer = BatchWriter(ClickHouseSink(clickhouse), ledger, MemoryDeadLetters(Journal()), WorkerSettings())
    dedup.assign(TOPIC, {0: 0}, time.time())
    first = [str(uuid.uuid4()) for _ in range(300)]
    assert _write(dedup, writer, first, 0) == 0, "nothing inserted yet: every suspect is new"
    fresh = [str(uuid.uuid4()) for _ in range(200)]
    assert _write(dedup, writer, first[:50] + fresh, 300) == 50
    assert _count(clickhouse) == 500, "every new event inserted once, every re-sent one dropped"


def test_a_duplicate_after_a_restart_is_dropped_by_the_rebuilt_window(clickhouse: Client) -> None:
    ledger = Ledger(clickhouse)
    writer = BatchWriter(ClickHouseSink(clickhouse), ledger, MemoryDeadLetters(Journal()), WorkerSettings())
    before = Deduplicator(ledger, 3_600)
    before.assign(TOPIC, {0: 0}, time.time())
    ids = [str(uuid.uuid4()) for _ in range(400)]
    _write(before, writer, ids, 0)

    after = Deduplicator(ledger, 3_600)  # a restarted worker: its window comes from ingested_ids
    after.assign(TOPIC, {0: 400}, time.time())
    fresh = [str(uuid.uuid4()) for _ in range(100)]
    assert _write(after, writer, ids[::4] + fresh, 400) == 100
    assert _count(clickhouse) == 500


def test_a_slice_written_again_keeps_its_own_ids(clickhouse: Client) -> None:
    """A slice retried after a partial insert must form the same blocks: its own ids are not duplicates."""
    ledger = Ledger(clickhouse)
    writer = BatchWriter(ClickHouseSink(clickhouse), ledger, MemoryDeadLetters(Journal()), WorkerSettings())
    dedup = Deduplicator(ledger, 3_600, SuspectsAll)
    dedup.assign(TOPIC, {0: 0}, time.time())
    ids = [str(uuid.uuid4()) for _ in range(100)]
    reference_us = time.time_ns() // 1000
    _write(dedup, writer, ids, 0, reference_us)
    again = Deduplicator(ledger, 3_600, SuspectsAll)
    assert _write(again, writer, ids, 0, reference_us) == 0, "same slice, same blocks"
    assert _count(clickhouse) == 100, "its token makes the second attempt a no-op"
