"""Errors retrying cannot fix must be counted and skipped, never block the queue nor the spool replay.

A fake Kafka client stands in for librdkafka so each case is exact: which message it refuses at
``produce()``, and which error each delivery report carries.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, cast

import pytest
from confluent_kafka import KafkaError, KafkaException, Producer

from tests.fixtures.clock import ManualClock
from usagemeter.producers.backlog import Backlog, is_permanent
from usagemeter.producers.spool import Record, Spool
from usagemeter.producers.stats import Counters

BIG = b"B" * 64


class FakeProducer:
    """``produce`` raises BufferError while ``full``, and MSG_SIZE_TOO_LARGE for ``BIG``; ``poll`` answers
    every pending message with ``outcome(value)`` (None: delivered)."""

    def __init__(self, outcome: Callable[[bytes], KafkaError | None] = lambda _: None) -> None:
        self.full = False
        self.outcome = outcome
        self.pending: list[tuple[bytes, bytes, Callable[..., None]]] = []
        self.produced: list[bytes] = []

    def produce(self, topic: str, value: bytes, key: bytes, on_delivery: Callable[..., None]) -> None:
        if self.full:
            raise BufferError("queue full")
        if value == BIG:
            raise KafkaException(KafkaError(KafkaError.MSG_SIZE_TOO_LARGE, "Message size too large"))
        self.pending.append((key, value, on_delivery))
        self.produced.append(value)

    def poll(self, timeout: float = 0.0) -> int:
        pending, self.pending = self.pending, []
        for key, value, callback in pending:
            callback(self.outcome(value), FakeMessage(key, value))
        return len(pending)

    def flush(self, timeout: float = 0.0) -> int:
        self.poll()
        return 0

    def purge(self, **_: Any) -> None:
        self.pending.clear()

    def __len__(self) -> int:
        return len(self.pending)


class FakeMessage:
    def __init__(self, key: bytes, value: bytes) -> None:
        self._key, self._value = key, value

    def key(self) -> bytes:
        return self._key

    def value(self) -> bytes:
        return self._value


def backlog(producer: FakeProducer, counters: Counters, spool: Spool | None = None) -> Backlog:
    return Backlog(cast(Producer, producer), "t", counters, spool, max_queued=1000, clock=ManualClock())


def test_a_message_the_client_refuses_for_good_does_not_block_the_in_memory_queue() -> None:
    producer, counters = FakeProducer(), Counters()
    queue = backlog(producer, counters)
    producer.full = True
    queue.send(b"big", BIG)  # at the head of the in-memory queue
    for i in range(5):
        queue.send(b"k%d" % i, b"good %d" % i)
    producer.full = False
    queue.step()
    producer.poll()
    assert producer.produced == [b"good %d" % i for i in range(5)]
    assert (counters.failed, counters.delivered, counters.spooled, queue.queued) == (1, 5, 0, 0)


def test_a_message_the_client_refuses_for_good_at_once_is_counted_failed_not_queued() -> None:
    producer, counters = FakeProducer(), Counters()
    queue = backlog(producer, counters)
    queue.send(b"big", BIG)
    queue.send(b"k", b"good")
    producer.poll()
    assert (counters.failed, counters.delivered, queue.queued) == (1, 1, 0)


def test_a_permanent_delivery_error_is_failed_and_a_passing_one_spooled_each_counted_once(tmp_path: Path) -> None:
    errors = {
        b"invalid": KafkaError(KafkaError.INVALID_RECORD),
        b"denied": KafkaError(KafkaError.TOPIC_AUTHORIZATION_FAILED),
        b"timeout": KafkaError(KafkaError._MSG_TIMED_OUT),
        b"no topic": KafkaError(KafkaError._UNKNOWN_TOPIC),
    }
    producer, counters = FakeProducer(errors.get), Counters()
    queue = backlog(producer, counters, Spool(tmp_path / "spool"))
    for value in [*errors, b"ok"]:
        queue.send(value, value)
    producer.poll()
    queue.step()
    assert (counters.delivered, counters.failed, counters.spooled, counters.dropped) == (1, 2, 2, 0)


def test_spool_replay_skips_a_record_refused_for_good_and_deletes_the_segment(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "spool")
    good: list[Record] = [(b"k%d" % i, b"good %d" % i) for i in range(6)]
    assert spool.append([*good[:3], (b"big", BIG), *good[3:]]) == 7
    spool.close()
    producer, counters = FakeProducer(), Counters()
    queue = backlog(producer, counters, Spool(tmp_path / "spool"))
    for _ in range(20):  # probes one record at a time until one is acknowledged, then the rest
        queue.step()
        producer.poll()
    assert (counters.replayed, counters.failed, counters.dropped) == (6, 1, 0)
    assert producer.produced == [value for _, value in good]
    assert not list((tmp_path / "spool").glob("*.seg"))


def test_spool_replay_skips_a_record_the_broker_refuses_for_good(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "spool")
    assert spool.append([(b"a", b"first"), (b"b", b"invalid"), (b"c", b"last")]) == 3
    spool.close()
    refuse = KafkaError(KafkaError.INVALID_RECORD)
    producer, counters = FakeProducer(lambda value: refuse if value == b"invalid" else None), Counters()
    queue = backlog(producer, counters, Spool(tmp_path / "spool"))
    for _ in range(20):
        queue.step()
        producer.poll()
    assert (counters.replayed, counters.failed) == (2, 1)
    assert not list((tmp_path / "spool").glob("*.seg"))


@pytest.mark.parametrize(
    ("code", "permanent"),
    [
        (KafkaError.MSG_SIZE_TOO_LARGE, True),
        (KafkaError.INVALID_RECORD, True),
        (KafkaError.TOPIC_AUTHORIZATION_FAILED, True),
        (KafkaError.RECORD_LIST_TOO_LARGE, True),
        (KafkaError._MSG_TIMED_OUT, False),
        (KafkaError._UNKNOWN_TOPIC, False),
        (KafkaError.UNKNOWN_TOPIC_OR_PART, False),
        (KafkaError._PURGE_QUEUE, False),
        (KafkaError._TRANSPORT, False),
        (KafkaError.NOT_LEADER_FOR_PARTITION, False),
        (KafkaError._FATAL, False),
    ],
)
def test_which_errors_are_permanent(code: int, permanent: bool) -> None:
    assert is_permanent(KafkaError(code)) is permanent


def test_a_retriable_or_fatal_error_is_never_permanent() -> None:
    assert not is_permanent(KafkaError(KafkaError.INVALID_RECORD, retriable=True))
    assert not is_permanent(KafkaError(KafkaError.TOPIC_AUTHORIZATION_FAILED, fatal=True))
