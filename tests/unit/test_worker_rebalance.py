"""Rebalances: what a worker consumed from partitions it loses is written and committed before they move."""

from __future__ import annotations

from tests.bad_inputs import event
from tests.fixtures.memory_kafka import memory_pipeline
from usagemeter.consumers.batch import Slice
from usagemeter.consumers.ledger import Recorded
from usagemeter.consumers.settings import WorkerSettings

SLOW = WorkerSettings(max_batch_rows=1_000, max_batch_wait_s=60)
"""Batches that never close by themselves within a test: only a revoke or a stop writes them."""


def test_a_revoke_writes_and_commits_what_was_consumed_before_the_partitions_move() -> None:
    pipe = memory_pipeline(partitions=2)
    for partition in (0, 0, 1):
        pipe.broker.produce(pipe.topic, partition, event(0))
    worker, consumer = pipe.worker(SLOW)
    pipe.on_idle.append(
        lambda: consumer.reassign([(pipe.topic, 1)]) if consumer.assignment()[0].partition == 0 else None
    )

    pipe.run_worker(worker, lambda w: [tp.partition for tp in consumer.assignment()] == [1])

    assert pipe.journal.entries[-1] == ("commit", "0@2", "1@1")  # written by the revoke, before the stop
    assert worker.totals["batches"] == 1


def test_the_next_owner_resumes_after_the_commit_and_reads_nothing_twice() -> None:
    pipe = memory_pipeline(partitions=2)
    for partition in (0, 1, 0, 1):
        pipe.broker.produce(pipe.topic, partition, event(0))
    pipe.run(SLOW, lambda w: w.totals["consumed"] == 4)
    for partition in (0, 1):
        pipe.broker.produce(pipe.topic, partition, event(0))

    heir = pipe.run(SLOW, lambda w: w.totals["consumed"] == 2)

    assert heir.totals["inserted"] == 2
    assert pipe.sink.rows == 6
    assert pipe.broker.committed == {("workers", (pipe.topic, 0)): 3, ("workers", (pipe.topic, 1)): 3}


def test_a_partition_revoked_before_its_cut_is_reached_does_not_stall_the_others() -> None:
    pipe = memory_pipeline(partitions=2)
    for _ in range(6):
        pipe.broker.produce(pipe.topic, 0, event(0))
    pipe.broker.produce(pipe.topic, 1, event(0))
    pipe.ledger.slices[(pipe.topic, 0)] = [Recorded(Slice(pipe.topic, 0, 0, 9, 1), completed=False)]
    worker, consumer = pipe.worker(WorkerSettings(max_batch_rows=1_000, max_batch_wait_s=1.0))
    pipe.on_idle.append(lambda: consumer.reassign([(pipe.topic, 1)]) if len(consumer.assignment()) == 2 else None)

    pipe.run_worker(worker, lambda w: w.totals["batches"] == 1, limit_s=3.0)

    assert ("workers", (pipe.topic, 0)) not in pipe.broker.committed  # its cut was never reached: read again whole
    assert pipe.broker.committed[("workers", (pipe.topic, 1))] == 1
