"""The order a batch becomes durable in, read off the in-memory ends: ledger, insert, dead letters, mark, commit."""

from __future__ import annotations

import threading

from tests.bad_inputs import event
from tests.fixtures.memory_kafka import memory_pipeline
from usagemeter.consumers.settings import WorkerSettings
from usagemeter.schemas.errors import StoreUnavailable

SETTINGS = WorkerSettings(max_batch_rows=1_000, max_batch_wait_s=1.0, insert_retry_max_s=0.2)


def test_a_batch_is_recorded_inserted_dead_lettered_marked_then_committed() -> None:
    pipe = memory_pipeline(partitions=1)
    for _ in range(10):
        pipe.broker.produce(pipe.topic, 0, event(0))
    pipe.broker.produce(pipe.topic, 0, b"not avro")

    worker = pipe.run(SETTINGS, lambda w: w.totals["batches"] == 1)

    assert pipe.journal.kinds() == ["record", "insert", "dead_letters", "complete", "commit"]
    assert pipe.journal.entries[-1] == ("commit", "0@11")
    assert (worker.totals["inserted"], worker.totals["dead_lettered"]) == (10, 1)
    assert pipe.broker.committed[("workers", (pipe.topic, 0))] == 11


def test_nothing_is_committed_until_the_store_takes_the_batch() -> None:
    pipe = memory_pipeline(partitions=1)
    for _ in range(5):
        pipe.broker.produce(pipe.topic, 0, event(0))
    failures = iter([StoreUnavailable("down"), StoreUnavailable("still down")])
    pipe.sink.fail = lambda _token: next(failures, None)

    pipe.run(SETTINGS, lambda w: w.totals["batches"] == 1)

    assert pipe.journal.kinds() == ["record", "record", "record", "insert", "dead_letters", "complete", "commit"]
    assert pipe.sink.rows == 5


def test_a_stop_while_the_store_is_down_commits_nothing() -> None:
    pipe = memory_pipeline(partitions=1)
    pipe.broker.produce(pipe.topic, 0, event(0))
    pipe.sink.fail = lambda _token: StoreUnavailable("down")
    worker, consumer = pipe.worker(SETTINGS)
    stop = threading.Event()
    pipe.on_idle.append(lambda: stop.set() if pipe.journal.kinds().count("record") >= 2 else None)

    worker.run(stop)

    assert "commit" not in pipe.journal.kinds()
    assert pipe.broker.committed == {}
    assert consumer.closed
