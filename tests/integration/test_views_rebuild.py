"""``rebuild()`` re-derives the aggregates from the events while a real worker ingests from a real broker.

The aggregates are broken three ways first (a table emptied as a new view would find it, rows counted
twice as by a wrong view, one client's user rows deleted from ``usage_15m_by_user`` alone), each checked
to be wrong. A rebuild from ``since`` runs during ingestion: from ``since`` on every table equals the
events' own sums, to the Decimal, and before it the damage is untouched. A full rebuild, again during
ingestion, leaves every table exact. A second rebuild of a table is refused while the first holds its lock.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from clickhouse_connect.driver.client import Client

from tests.fixtures.workers import run_until
from usagemeter.consumers.pipeline import build_worker
from usagemeter.consumers.settings import ClickHouseSettings, KafkaSettings, WorkerSettings
from usagemeter.consumers.store import connect
from usagemeter.producers import UsageEmitter
from usagemeter.query.rebuild import AGGREGATES, Aggregate, RebuildRequest, rebuild
from usagemeter.schemas.errors import RebuildRefused

pytestmark = [pytest.mark.kafka, pytest.mark.clickhouse]

MEASURES = "count() AS events, sum(requests), sum(input_tokens), sum(output_tokens), sum(cost_total)"
NOW = datetime.now(UTC).replace(second=0, microsecond=0)
SINCE = NOW - timedelta(hours=3) - timedelta(minutes=NOW.minute % 15)


def truth(client: Client, aggregate: Aggregate) -> dict[tuple[Any, ...], tuple[Any, ...]]:
    """The table's sums computed from ``usage_events`` alone (no reprice ran here)."""
    dims = ", ".join(f"{expression} AS {name}" for name, expression in aggregate.dimensions)
    names = ", ".join(name for name, _ in aggregate.dimensions)
    source = "(SELECT *, toStartOfFifteenMinutes(event_time) AS bucket FROM usage_events)"
    join = " ARRAY JOIN CAST(labels, 'Array(Tuple(String, String))') AS label" if aggregate.per_label else ""
    rows = client.query(f"SELECT {dims}, {MEASURES} FROM {source}{join} GROUP BY {names}").result_rows
    return {tuple(row[: len(aggregate.dimensions)]): tuple(row[len(aggregate.dimensions) :]) for row in rows}


def held(client: Client, aggregate: Aggregate) -> dict[tuple[Any, ...], tuple[Any, ...]]:
    """What the table says, rows summing to nothing left out (a SummingMergeTree drops them when it merges)."""
    names = ", ".join(name for name, _ in aggregate.dimensions)
    rows = client.query(
        f"SELECT {names}, sum(events), sum(requests), sum(input_tokens), sum(output_tokens), sum(cost_total) "
        f"FROM {aggregate.name} GROUP BY {names}"
    ).result_rows
    width = len(aggregate.dimensions)
    return {tuple(row[:width]): tuple(row[width:]) for row in rows if any(row[width:])}


def split(rows: dict[tuple[Any, ...], tuple[Any, ...]]) -> tuple[dict[Any, Any], dict[Any, Any]]:
    """(rows before SINCE, rows from SINCE on); the bucket is the second dimension of every table."""
    since = SINCE.replace(tzinfo=None)
    before = {k: v for k, v in rows.items() if _naive(k[1]) < since}
    return before, {k: v for k, v in rows.items() if _naive(k[1]) >= since}


def _naive(value: datetime) -> datetime:
    return value.replace(tzinfo=None) if value.tzinfo else value


class Traffic:
    """Emits events spread over the last six hours until stopped; counts what it sent."""

    def __init__(self, bootstrap: str, topic: str, spool: Path, seed: int) -> None:
        self.rng = random.Random(seed)
        self.meter = UsageEmitter(bootstrap, topic=topic, spool_dir=spool)
        self.sent = 0
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def burst(self, n: int) -> None:
        rng = self.rng
        for _ in range(n):
            labels = {"feature": rng.choice(["chat", "search"])} if rng.random() < 0.7 else {}
            if rng.random() < 0.3:
                labels["team"] = rng.choice(["a", "b", "c"])
            self.meter.emit(
                rng.choice(["gpt-4o", "gpt-4o-mini", "claude-sonnet-4"]),
                client_id=rng.choice(["acme", "globex"]),
                provider="openai",
                user_id=rng.choice(["alice", "bob", "carol", ""]),
                service=rng.choice(["chat-api", "batch"]),
                status="ok" if rng.random() < 0.9 else "error",
                input_tokens=rng.randint(1, 5000),
                output_tokens=rng.randint(0, 900),
                cost=f"0.{rng.randint(1, 99999):05d}{rng.randint(0, 999):03d}",
                labels=labels,
                event_time=NOW - timedelta(seconds=rng.randint(0, 6 * 3600)),
            )
        self.sent += n

    def _run(self) -> None:
        while not self.stop.is_set():
            self.burst(100)
            time.sleep(0.1)

    def __enter__(self) -> Traffic:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        """Idempotent: the test ends the traffic itself before it waits for the worker."""
        if self.stop.is_set():
            return
        self.stop.set()
        self.thread.join(30)
        assert self.meter.flush(30) == 0
        self.meter.close()


def test_rebuild_during_ingestion_makes_every_aggregate_exact_from_since_then_everywhere(
    clickhouse: Client,
    clickhouse_settings: ClickHouseSettings,
    kafka_broker: Any,
    kafka_topic: Callable[..., str],
    tmp_path: Path,
) -> None:
    topic, dlq = kafka_topic(partitions=4), kafka_topic(partitions=1)
    kafka = KafkaSettings(bootstrap_servers=kafka_broker.bootstrap_servers, topic=topic, dlq_topic=dlq, group_id=topic)
    settings = WorkerSettings(max_batch_rows=2_000, max_batch_wait_s=0.3)
    history = Traffic(kafka_broker.bootstrap_servers, topic, tmp_path / "spool", seed=13)
    history.burst(4_000)
    history.meter.flush(30)
    history.meter.close()
    worker = build_worker(kafka, settings, connect(clickhouse_settings))
    run_until(worker, lambda: worker.totals["inserted"] >= 4_000, 120)

    clickhouse.command("TRUNCATE TABLE usage_15m_by_label")
    clickhouse.command(
        "INSERT INTO usage_15m_by_dims SELECT * FROM usage_15m_by_dims", settings={"insert_deduplicate": 0}
    )
    clickhouse.command("ALTER TABLE usage_15m_by_user DELETE WHERE client_id = 'acme'", settings={"mutations_sync": 2})
    wrong = {a.name for a in AGGREGATES if held(clickhouse, a) != truth(clickhouse, a)}
    assert wrong == {"usage_15m_by_label", "usage_15m_by_dims", "usage_15m_by_user"}

    rebuilder = connect(clickhouse_settings)
    inserted = worker.totals["inserted"]
    for request in (RebuildRequest(since=SINCE), RebuildRequest()):
        with Traffic(
            kafka_broker.bootstrap_servers, topic, tmp_path / "spool2", seed=17 + (request.since is None)
        ) as live:
            worker = build_worker(kafka, settings, connect(clickhouse_settings))
            stop = threading.Event()
            thread = threading.Thread(target=worker.run, args=(stop,), daemon=True)
            thread.start()
            try:
                while worker.totals["inserted"] < 1_000:
                    time.sleep(0.05)
                events_before = clickhouse.query("SELECT count() FROM usage_events").result_rows[0][0]
                result = rebuild(rebuilder, request)
                events_after = clickhouse.query("SELECT count() FROM usage_events").result_rows[0][0]
                live.__exit__()
                deadline = time.monotonic() + 120
                while worker.totals["inserted"] < live.sent and time.monotonic() < deadline:
                    time.sleep(0.1)
            finally:
                stop.set()
                thread.join(60)
        assert not thread.is_alive(), "the worker did not stop"
        inserted += worker.totals["inserted"]
        print(result.model_dump_json())  # attempts and seconds per table, for the record
        assert events_after > events_before, "ingestion did not run during the rebuild"
        assert [t.table for t in result.tables] == [a.name for a in AGGREGATES]
        for aggregate in AGGREGATES:
            before_held, since_held = split(held(clickhouse, aggregate))
            before_truth, since_truth = split(truth(clickhouse, aggregate))
            assert since_held == since_truth, aggregate.name
            if request.since is None:
                assert before_held == before_truth, aggregate.name
            elif aggregate.name != "usage_15m_by_model":
                assert before_held != before_truth, f"{aggregate.name} before since was touched"
        costs = [v[-1] for v in truth(clickhouse, AGGREGATES[0]).values()]
        assert all(isinstance(c, Decimal) for c in costs) and sum(costs) > 0
    assert clickhouse.query("SELECT count() FROM usage_events").result_rows[0][0] == inserted


def test_a_second_rebuild_of_a_table_is_refused_until_the_lock_is_forced(clickhouse: Client) -> None:
    clickhouse.command("CREATE TABLE usagemeter_rebuild_lock_usage_15m_by_dims (started DateTime64(3)) ENGINE = Memory")
    with pytest.raises(RebuildRefused, match="another rebuild of usage_15m_by_dims is running"):
        rebuild(clickhouse, RebuildRequest(tables=["usage_15m_by_dims"]))
    with pytest.raises(ValueError, match="cannot rebuild usage_events"):
        rebuild(clickhouse, RebuildRequest(tables=["usage_events"]))
    result = rebuild(clickhouse, RebuildRequest(tables=["usage_15m_by_dims"], force=True))
    assert [(t.table, t.corrected_rows) for t in result.tables] == [("usage_15m_by_dims", 0)]
    assert not clickhouse.query("EXISTS TABLE usagemeter_rebuild_lock_usage_15m_by_dims").result_rows[0][0]
