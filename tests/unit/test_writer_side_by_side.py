"""A batch's partition slices inserted side by side on the sink's sessions: really at once, never more at once
than the sink has sessions, and a failed attempt fully ended before its retry starts (so a retry never races
the attempt it repeats); the dedup tokens then keep every slice once.

The same path against the real broker and engine: every integration suite that builds a worker with
``consumers/pipeline.build_worker``, whose sink has ``insert_sessions`` (2) sessions, the kill suites included.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field

from tests.bad_inputs import event
from tests.fixtures.memory_kafka import MemoryPipeline, MemorySink, memory_pipeline
from usagemeter.consumers.settings import WorkerSettings
from usagemeter.schemas import WriterSchema
from usagemeter.schemas.errors import StoreUnavailable

PARTITIONS = 4
SETTINGS = WorkerSettings(max_batch_rows=1_000, max_batch_wait_s=1.0, insert_retry_max_s=0.2)


@dataclass
class TimedSink(MemorySink):
    """Each insert takes 50 ms, and the first ``sessions`` wait for each other (a barrier, so a slow thread
    start on a loaded machine cannot hide or fake concurrency); records how many ran at once and when each
    insert began and ended."""

    running: int = 0
    most: int = 0
    started: int = 0
    spans: list[tuple[str, float, float]] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        self._first = threading.Barrier(self.sessions)

    def insert(self, schema: WriterSchema, bodies: list[bytes], token: str) -> None:
        began = time.monotonic()
        with self._lock:
            self.running += 1
            self.most = max(self.most, self.running)
            self.started += 1
            first = self.started <= self.sessions
        try:
            if first:
                self._first.wait(timeout=30)  # BrokenBarrierError: fewer inserts ran at once than there are sessions
            time.sleep(0.05)
            super().insert(schema, bodies, token)
        finally:
            with self._lock:
                self.running -= 1
                self.spans.append((token, began, time.monotonic()))


def _pipeline(sessions: int) -> tuple[TimedSink, MemoryPipeline]:
    pipe = memory_pipeline(partitions=PARTITIONS)
    sink = pipe.sink = TimedSink(pipe.journal, sessions=sessions)
    for partition in range(PARTITIONS):
        for _ in range(5):
            pipe.broker.produce(pipe.topic, partition, event(0))
    return sink, pipe


def test_slices_are_inserted_as_many_at_once_as_the_sink_has_sessions() -> None:
    for sessions in (1, 2, 3):
        sink, pipe = _pipeline(sessions)
        worker = pipe.run(SETTINGS, lambda w: w.totals["batches"] == 1)

        assert sink.most == sessions
        assert (worker.totals["inserted"], sink.rows, len(sink.blocks)) == (20, 20, PARTITIONS)
        kinds = pipe.journal.kinds()
        assert kinds == ["record", *["insert"] * PARTITIONS, "dead_letters", "complete", "commit"]


def test_a_failed_attempt_has_ended_before_its_retry_begins_and_the_retry_keeps_each_slice_once() -> None:
    sink, pipe = _pipeline(2)
    failed: list[str] = []

    def fail_partition_2_once(token: str) -> Exception | None:
        if "/2:" in token and not failed:
            failed.append(token)
            return StoreUnavailable("down for one insert")
        return None

    sink.fail = fail_partition_2_once
    worker = pipe.run(SETTINGS, lambda w: w.totals["batches"] == 1)

    assert failed
    records = [i for i, kind in enumerate(pipe.journal.kinds()) if kind == "record"]
    assert len(records) == 2  # the batch was tried twice
    first_attempt_ended = max(end for _, _, end in sink.spans[:PARTITIONS])
    retry_began = min(began for _, began, _ in sink.spans[PARTITIONS:])
    assert retry_began >= first_attempt_ended
    assert (worker.totals["inserted"], sink.rows, len(sink.blocks)) == (20, 20, PARTITIONS)
