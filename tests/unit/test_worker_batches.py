"""Where the worker cuts batches (size, age, a ledger's cut left by a crash) and what it holds for the next one."""

from __future__ import annotations

import pytest

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


@pytest.mark.parametrize(
    ("completed", "slices", "inserted"),
    [
        pytest.param(False, ["0:0-5|t=123", "0:6-9|"], 10, id="half written: cut again at the same offsets and time"),
        pytest.param(True, ["0:6-9|"], 4, id="marked complete: committed at once, the next slice starts after it"),
    ],
)
def test_a_slice_the_ledger_recorded_before_a_crash(completed: bool, slices: list[str], inserted: int) -> None:
    pipe = memory_pipeline(partitions=1)
    for _ in range(10):
        pipe.broker.produce(pipe.topic, 0, event(0))
    pipe.ledger.slices[(pipe.topic, 0)] = [Recorded(Slice(pipe.topic, 0, 0, 5, 123), completed=completed)]

    pipe.run(WorkerSettings(max_batch_rows=1_000, max_batch_wait_s=1.0), lambda w: w.totals["inserted"] == inserted)

    # The same slice name and reference time give the same token; messages past a cut start the next batch.
    inserts = [entry[1] for entry in pipe.journal.entries if entry[0] == "insert"]
    assert [piece in token for piece, token in zip(slices, inserts, strict=True)] == [True] * len(slices)
