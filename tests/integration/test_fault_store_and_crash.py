"""Fault suite 4, and the crash the kill test can only hit by chance, made certain.

- ClickHouse refusing every insert for 30 s (CI: 8 s): nothing lost, nothing duplicated, and the worker
  stops consuming (memory bounded) until the store is back. The failure is real: the table the staging
  view writes to is detached, and the engine answers UNKNOWN_TABLE, as it would during a botched deploy.
- A worker that inserted a batch and died before committing it, whose partitions a differently
  configured worker then takes: the new owner must cut the batch at the same offsets (ledger), so its
  insert is recognised, and must drop re-sends of events the dead worker inserted (window rebuilt from
  ClickHouse).
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable
from typing import Any

import pytest
from clickhouse_connect.driver.client import Client

from tests.faults.traffic import (
    aggregates,
    events,
    expected_counts,
    lag,
    produce,
    reference_aggregates,
    with_resends,
)
from tests.fixtures.workers import run_until
from usagemeter.consumers.batch import Batch
from usagemeter.consumers.pipeline import build_worker
from usagemeter.consumers.settings import ClickHouseSettings, KafkaSettings, WorkerSettings
from usagemeter.consumers.store import connect
from usagemeter.pricing import pricebook

pytestmark = pytest.mark.kafka
log = logging.getLogger(__name__)

FULL = os.environ.get("USAGEMETER_FAULT_FULL") == "1"
STORE_OUTAGE_S = 30.0 if FULL else 8.0


FaultStage = Callable[..., tuple[str, KafkaSettings, Client, Client]]


@pytest.fixture
def fault_stage(
    kafka_broker: Any, kafka_topic: Any, clickhouse_factory: Callable[[], ClickHouseSettings]
) -> FaultStage:
    """``fault_stage(partitions=n)``: a new topic and its DLQ, the worker's settings for them, a priced store,
    and a second store to compute the expected aggregates in."""

    def make(partitions: int) -> tuple[str, KafkaSettings, Client, Client]:
        topic, dlq_topic = kafka_topic(partitions=partitions), kafka_topic(partitions=1)
        store, reference = connect(clickhouse_factory()), connect(clickhouse_factory())
        pricebook.load(store)
        settings = KafkaSettings(
            bootstrap_servers=kafka_broker.bootstrap_servers, topic=topic, dlq_topic=dlq_topic, group_id=f"g-{topic}"
        )
        return topic, settings, store, reference

    return make


def test_clickhouse_refusing_inserts_loses_nothing_and_pauses_consumption(
    kafka_broker: Any, fault_stage: FaultStage
) -> None:
    topic, settings, store, reference = fault_stage(partitions=4)
    unique = events(120_000, seed=41)
    stream = with_resends(unique, 0.10, seed=42)
    producing = threading.Thread(
        target=produce, args=(kafka_broker.bootstrap_servers, topic, stream, STORE_OUTAGE_S + 10), daemon=True
    )
    worker = build_worker(
        settings,
        WorkerSettings(max_batch_rows=5_000, max_batch_wait_s=0.5, insert_retry_max_s=2.0),
        store,
    )
    stop = threading.Event()
    thread = threading.Thread(target=worker.run, args=(stop,))
    thread.start()
    producing.start()
    while worker.totals["inserted"] < 5_000:
        time.sleep(0.05)

    store.command("DETACH TABLE usage_events")
    outage_started = time.monotonic()
    consumed: list[tuple[float, int]] = []
    while time.monotonic() - outage_started < STORE_OUTAGE_S:
        consumed.append((time.monotonic() - outage_started, worker.totals["consumed"]))
        time.sleep(0.25)
    inserted_during = worker.totals["inserted"]
    store.command("ATTACH TABLE usage_events")

    producing.join(120)
    deadline = time.monotonic() + 300
    while worker.totals["inserted"] + worker.totals["duplicates"] < len(stream) and time.monotonic() < deadline:
        time.sleep(0.1)
    stop.set()
    thread.join(120)

    last_2s = [count for at, count in consumed if at >= STORE_OUTAGE_S - 2]
    log.warning(
        "store outage %.0f s: consumed %d before, %d at its end, %d inserted during it; %d sent, %d unique",
        STORE_OUTAGE_S,
        consumed[0][1],
        consumed[-1][1],
        inserted_during,
        len(stream),
        len(unique),
    )
    assert last_2s[0] == last_2s[-1], "consumption is paused while the store refuses inserts"
    assert consumed[-1][1] - consumed[0][1] <= 2 * 5_000 + 100_000 + 20_000, "held: two batches and the prefetch"
    pricebook.load(reference)
    assert aggregates(store, "usage_15m_by_user") == reference_aggregates(reference, unique)
    assert aggregates(store, "usage_15m_by_model") == aggregates(reference, "usage_15m_by_model")


TARGET_TABLES = ("usage_events", "usage_15m_by_user", "usage_15m_by_model", "unknown_models", "ingested_ids")


@pytest.mark.parametrize(
    "crash",
    [
        pytest.param("before_completion", id="died after the insert, before the ledger marked it completed"),
        pytest.param("tokens_forgotten", id="died after the completion mark; the store forgot the tokens"),
    ],
)
def test_a_new_owner_redoes_a_dead_workers_uncommitted_batch_exactly(
    kafka_broker: Any,
    fault_stage: FaultStage,
    monkeypatch: pytest.MonkeyPatch,
    crash: str,
) -> None:
    """First line of defence: the heir cuts the slice again as the ledger says, with its reference time,
    and the tokens match. Second line, for when they would not (a server restarted after a migration may
    give other block ids): a slice the ledger marks completed is not inserted again at all."""
    topic, settings, store, reference = fault_stage(partitions=3)
    unique = events(30_000, seed=51)
    first, rest = unique[:12_000], unique[12_000:]
    # Re-sends of the first part arrive after it: only ClickHouse knows they were inserted before.
    stream = first + with_resends(rest, 0.0, seed=0) + first[::4]
    produce(kafka_broker.bootstrap_servers, topic, stream, 0.0)

    dying = build_worker(settings, WorkerSettings(max_batch_rows=4_000, max_batch_wait_s=5.0), store)
    if crash == "before_completion":
        ledger = dying._writer._ledger
        written = ledger.complete
        calls = {"n": 0}

        def complete_but_the_last(slices: Any) -> None:
            calls["n"] += 1
            if calls["n"] <= 2:
                written(slices)

        monkeypatch.setattr(ledger, "complete", complete_but_the_last)
    # Driven step by step (what ``run`` does), to stop it at the one point that matters: a batch inserted,
    # its offsets not committed.
    dying._consumer.subscribe([topic], on_assign=dying._on_assign, on_revoke=dying._on_revoke)
    while dying.totals["batches"] < 2:
        dying._poll_once()
    while dying._in_flight is None:
        dying._poll_once()
    dying._in_flight[2].result()
    dying._in_flight, dying._batch, dying._held = None, Batch(0.0), []  # its memory dies with it
    dying._consumer.close()
    dying._writes.shutdown()
    inserted_uncommitted = store.query("SELECT count() FROM usage_events").result_rows[0][0]
    if crash == "tokens_forgotten":
        for table in TARGET_TABLES:  # a retried block would now be stored again: only the ledger can prevent it
            store.command(f"ALTER TABLE {table} MODIFY SETTING non_replicated_deduplication_window = 0")

    # Another batch size: without the ledger its first batch would cut the partitions elsewhere.
    heir = build_worker(settings, WorkerSettings(max_batch_rows=2_500, max_batch_wait_s=0.3), store)
    committed_before = dying.totals["inserted"]
    run_until(heir, lambda: not lag(kafka_broker.bootstrap_servers, topic, settings.group_id, 3))

    log.warning(
        "crash after insert: %d rows in the store at the crash, %d of them committed; heir dropped %d duplicates",
        inserted_uncommitted,
        committed_before,
        heir.totals["duplicates"],
    )
    assert inserted_uncommitted > committed_before, "the crash came between an insert and its commit"
    assert store.query("SELECT count(), uniqExact(event_id) FROM usage_events").result_rows[0] == (
        len(unique),
        len(unique),
    )
    counts = {key: row[:7] for key, row in aggregates(store, "usage_15m_by_user").items()}
    assert counts == expected_counts(unique)
    pricebook.load(reference)
    assert aggregates(store, "usage_15m_by_user") == reference_aggregates(reference, unique)


def test_a_stop_ends_the_insert_retries_while_the_store_is_down_and_commits_nothing(
    kafka_broker: Any, fault_stage: FaultStage
) -> None:
    """SIGTERM during an outage must end the process promptly (it used to retry for ever); what it did not
    write stays uncommitted, and the next worker counts it once."""
    topic, settings, store, reference = fault_stage(partitions=2)
    unique = events(3_000, seed=61)
    produce(kafka_broker.bootstrap_servers, topic, unique, 0.0)
    store.command("DETACH TABLE usage_events")
    worker = build_worker(
        settings, WorkerSettings(max_batch_rows=1_000, max_batch_wait_s=0.3, insert_retry_max_s=30), store
    )
    stop = threading.Event()
    thread = threading.Thread(target=worker.run, args=(stop,))
    thread.start()
    while worker.totals["consumed"] == 0:
        time.sleep(0.05)
    time.sleep(3.0)  # a few retries, the back-off growing
    stop.set()
    stopped_at = time.monotonic()
    thread.join(60)
    took = time.monotonic() - stopped_at
    assert not thread.is_alive() and took < 10, f"the worker took {took:.1f} s to stop"
    assert worker.totals["inserted"] == 0 and lag(kafka_broker.bootstrap_servers, topic, settings.group_id, 2)

    store.command("ATTACH TABLE usage_events")
    heir = build_worker(settings, WorkerSettings(max_batch_rows=700, max_batch_wait_s=0.3), store)
    run_until(heir, lambda: not lag(kafka_broker.bootstrap_servers, topic, settings.group_id, 2))
    pricebook.load(reference)
    assert aggregates(store, "usage_15m_by_user") == reference_aggregates(reference, unique)
