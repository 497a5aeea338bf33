"""Where the worker cuts batches (size, age, a ledger's cut left by a crash) and what it holds for the next one."""

from __future__ import annotations

from tests.bad_inputs import event
from tests.fixtures.memory_kafka import memory_pipeline
from usagemeter.consumers.batch import Slice
from usagemeter.consumers.ledger import Recorded
from usagemeter.consumers.settings import WorkerSettings


def commits(entries: list[tuple[str, ...]]) -> list[tuple[str, ...]]:
    return [entry[1:] for entry in entries if entry[0] == "commit"]


def test_a_batch_is_cut_at_max_batch_rows() -> None:
    pipe = memory_pipeline(partitions=1)
    for _ in range(10):
        pipe.broker.produce(pipe.topic, 0, event(0))

    pipe.run(WorkerSettings(max_batch_rows=4, max_batch_wait_s=60), lambda w: w.totals["inserted"] == 10)

    assert commits(pipe.journal.entries) == [("0@4",), ("0@8",), ("0@10",)]


def test_a_batch_below_max_batch_rows_is_written_once_it_is_max_batch_wait_s_old() -> None:
    pipe = memory_pipeline(partitions=2)
    for partition in (0, 1, 0):
        pipe.broker.produce(pipe.topic, partition, event(0))
    ages: list[float] = []
    pipe.on_idle.append(lambda: ages.append(pipe.clock.monotonic_s) if not pipe.sink.blocks else None)

    worker = pipe.run(WorkerSettings(max_batch_rows=1_000, max_batch_wait_s=2.0), lambda w: w.totals["batches"] == 1)

    assert commits(pipe.journal.entries) == [("0@2", "1@1")]
    assert worker.totals["inserted"] == 3
    assert ages[-1] >= 2.0 - 0.5  # the last empty consume before the write was within one wait of the age limit


def test_a_slice_left_half_written_by_a_crash_is_cut_again_at_the_same_offsets() -> None:
    pipe = memory_pipeline(partitions=1)
    for _ in range(10):
        pipe.broker.produce(pipe.topic, 0, event(0))
    pipe.ledger.slices[(pipe.topic, 0)] = [Recorded(Slice(pipe.topic, 0, 0, 5, 123), completed=False)]

    pipe.run(WorkerSettings(max_batch_rows=1_000, max_batch_wait_s=1.0), lambda w: w.totals["inserted"] == 10)

    assert commits(pipe.journal.entries) == [("0@6",), ("0@10",)]
    inserts = [entry[1] for entry in pipe.journal.entries if entry[0] == "insert"]
    assert f"{pipe.topic}/0:0-5|t=123" in inserts[0]  # the same slice name and reference time: the same token
    assert f"{pipe.topic}/0:6-9|" in inserts[1]  # the messages past the cut were held for the next batch


def test_a_slice_the_ledger_marks_complete_is_not_cut_again() -> None:
    pipe = memory_pipeline(partitions=1)
    for _ in range(10):
        pipe.broker.produce(pipe.topic, 0, event(0))
    pipe.ledger.slices[(pipe.topic, 0)] = [Recorded(Slice(pipe.topic, 0, 0, 5, 123), completed=True)]

    pipe.run(WorkerSettings(max_batch_rows=1_000, max_batch_wait_s=1.0), lambda w: w.totals["inserted"] == 10)

    assert commits(pipe.journal.entries) == [("0@10",)]
