"""``Batch.add``: dedup by key, not-Avro set aside, grouping by partition and writer fingerprint, offsets,
cuts and insert tokens.

Pure logic: the messages are a small fake with the six methods the batch calls, no Kafka.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import cast

import pytest
from confluent_kafka import KafkaError, KafkaException, Message

from usagemeter.consumers.batch import Batch
from usagemeter.schemas.wire import MAGIC

FP_A = bytes.fromhex("0102030405060708")
FP_B = bytes.fromhex("f1f2f3f4f5f6f7f8")


@dataclass(frozen=True)
class FakeMessage:
    """What ``Batch.add`` reads of a confluent_kafka ``Message``."""

    _offset: int
    _key: bytes | None = None
    _value: bytes | None = None
    _topic: str = "usage.events"
    _partition: int = 0
    _error: KafkaError | None = None

    def error(self) -> KafkaError | None:
        return self._error

    def topic(self) -> str:
        return self._topic

    def partition(self) -> int:
        return self._partition

    def offset(self) -> int:
        return self._offset

    def key(self) -> bytes | None:
        return self._key

    def value(self) -> bytes | None:
        return self._value


def avro(fingerprint: bytes, body: bytes) -> bytes:
    return MAGIC + fingerprint + body


def msg(
    offset: int,
    key: bytes | None = None,
    value: bytes | None = None,
    *,
    topic: str = "usage.events",
    partition: int = 0,
) -> FakeMessage:
    body = value if value is not None else avro(FP_A, b"body-%d" % offset)
    return FakeMessage(offset, key, body, topic, partition)


def as_messages(fakes: list[FakeMessage]) -> list[Message]:
    return cast(list[Message], fakes)


def added(fakes: list[FakeMessage]) -> Batch:
    batch = Batch(started_at=0.0)
    batch.add(as_messages(fakes))
    return batch


P0 = ("usage.events", 0)


def offsets_by_group(batch: Batch) -> dict[bytes, list[int]]:
    """Offsets per fingerprint, over all partitions."""
    found: dict[bytes, list[int]] = {}
    for (_where, fp), group in batch.groups.items():
        found.setdefault(fp, []).extend(cast(FakeMessage, m).offset() for m in group.messages)
    return found


@pytest.mark.parametrize(
    ("fakes", "kept", "duplicates"),
    [
        pytest.param([msg(0, b"a"), msg(1, b"b"), msg(2, b"a")], [0, 1], 1, id="a repeated key is skipped"),
        pytest.param(
            [msg(0, b"a"), msg(1, b"a"), msg(2, b"a"), msg(3, b"b"), msg(4, b"b")],
            [0, 3],
            3,
            id="every repeat after the first is counted",
        ),
        pytest.param([msg(0), msg(1), msg(2)], [0, 1, 2], 0, id="keyless messages are all kept"),
        pytest.param(
            [msg(0, value=avro(FP_A, b"same")), msg(1, value=avro(FP_A, b"same"))],
            [0, 1],
            0,
            id="keyless messages with identical values are both kept",
        ),
        pytest.param(
            [msg(0, b"a", partition=0), msg(1, b"a", partition=1)],
            [0, 1],
            0,
            id="keys are per partition, so that a slice read again alone is filtered the same way",
        ),
        pytest.param([msg(0, b""), msg(1, b"")], [0], 1, id="an empty key is a key"),
        pytest.param([msg(0, b"a"), msg(1, b"A")], [0, 1], 0, id="keys are compared as bytes"),
    ],
)
def test_dedup_by_key(fakes: list[FakeMessage], kept: list[int], duplicates: int) -> None:
    batch = added(fakes)
    assert offsets_by_group(batch) == {FP_A: kept}
    assert batch.duplicates == duplicates
    assert batch.size == len(fakes)
    assert batch.invalid == []


def test_a_key_seen_in_an_earlier_add_is_a_duplicate() -> None:
    batch = added([msg(0, b"a")])
    batch.add(as_messages([msg(1, b"a"), msg(2, b"b")]))
    assert offsets_by_group(batch) == {FP_A: [0, 2]}
    assert batch.duplicates == 1
    assert batch.size == 3


@pytest.mark.parametrize(
    "value",
    [
        pytest.param(b'{"model": "gpt-4o"}', id="json"),
        pytest.param(b"", id="empty value"),
        pytest.param(None, id="no value (tombstone)"),
        pytest.param(b"\xc3\x02" + FP_A + b"body", id="wrong second marker byte"),
        pytest.param(b"\x01\xc3" + FP_A + b"body", id="marker not at the start"),
        pytest.param(MAGIC + FP_A, id="header only, no body"),
        pytest.param(MAGIC + FP_A[:4], id="truncated header"),
    ],
)
def test_values_that_are_not_single_object_avro_are_set_aside(value: bytes | None) -> None:
    bad = FakeMessage(7, b"k", value)
    batch = added([msg(6, b"j"), bad, msg(8, b"l")])
    assert [(cast(FakeMessage, m), r.reason) for m, r in batch.invalid] == [(bad, "not_avro")]
    assert offsets_by_group(batch) == {FP_A: [6, 8]}
    assert batch.offsets == {("usage.events", 0): (6, 8)}, "a bad message's offset is still consumed"


def test_a_repeated_key_of_a_bad_value_is_a_duplicate_not_another_dead_letter() -> None:
    batch = added([FakeMessage(0, b"k", b"junk"), FakeMessage(1, b"k", b"junk")])
    assert len(batch.invalid) == 1
    assert batch.duplicates == 1


@pytest.mark.parametrize(
    ("values", "groups"),
    [
        pytest.param(
            [avro(FP_A, b"a0"), avro(FP_B, b"b0"), avro(FP_A, b"a1"), avro(FP_B, b"b1"), avro(FP_B, b"b2")],
            {FP_A: [b"a0", b"a1"], FP_B: [b"b0", b"b1", b"b2"]},
            id="two writer schemas interleaved",
        ),
        pytest.param([avro(FP_B, b"x")], {FP_B: [b"x"]}, id="one message"),
        pytest.param(
            [avro(FP_A, b"\xc3\x01" + FP_B + b"nested")],
            {FP_A: [b"\xc3\x01" + FP_B + b"nested"]},
            id="only the first 10 bytes are cut",
        ),
        pytest.param([avro(FP_A, b"\x00")], {FP_A: [b"\x00"]}, id="a one-byte body"),
    ],
)
def test_messages_are_grouped_by_fingerprint_with_headers_cut(
    values: list[bytes], groups: dict[bytes, list[bytes]]
) -> None:
    fakes = [FakeMessage(i, None, value) for i, value in enumerate(values)]
    batch = added(fakes)
    assert {fp: group.bodies for (_, fp), group in batch.groups.items()} == groups
    for (_, fp), group in batch.groups.items():
        assert [cast(FakeMessage, m).value() for m in group.messages] == [MAGIC + fp + b for b in group.bodies]
    assert [fp for _, fp in batch.groups] == list(groups), "groups in order of first appearance"


def test_groups_are_per_partition() -> None:
    batch = added([msg(0, partition=0), msg(5, partition=1), msg(1, partition=0)])
    assert {where: [m.offset() for m in g.messages] for (where, _), g in batch.groups.items()} == {
        P0: [0, 1],
        ("usage.events", 1): [5],
    }


@pytest.mark.parametrize(
    ("fakes", "offsets"),
    [
        pytest.param([msg(5)], {("usage.events", 0): (5, 5)}, id="one message"),
        pytest.param([msg(5), msg(6), msg(9)], {("usage.events", 0): (5, 9)}, id="first and last of one partition"),
        pytest.param(
            [msg(5, partition=0), msg(40, partition=1), msg(6, partition=0), msg(41, partition=1)],
            {("usage.events", 0): (5, 6), ("usage.events", 1): (40, 41)},
            id="partitions tracked apart",
        ),
        pytest.param(
            [msg(1, topic="a"), msg(2, topic="b"), msg(3, topic="a")],
            {("a", 0): (1, 3), ("b", 0): (2, 2)},
            id="topics tracked apart",
        ),
        pytest.param(
            [msg(1, b"k"), msg(2, b"k"), msg(3, value=b"junk")],
            {("usage.events", 0): (1, 3)},
            id="duplicates and bad values move the offsets too",
        ),
    ],
)
def test_offsets_track_first_and_last_per_topic_partition(
    fakes: list[FakeMessage], offsets: dict[tuple[str, int], tuple[int, int]]
) -> None:
    assert added(fakes).offsets == offsets


def test_partition_eof_is_skipped_and_not_counted() -> None:
    eof = FakeMessage(99, _error=KafkaError(KafkaError._PARTITION_EOF))
    batch = added([msg(1), eof, msg(2)])
    assert batch.size == 2
    assert batch.offsets == {("usage.events", 0): (1, 2)}


def test_a_fatal_consumer_error_raises() -> None:
    broken = FakeMessage(99, _error=KafkaError(KafkaError._FATAL, "fenced", fatal=True))
    with pytest.raises(KafkaException):
        added([msg(1), broken])


def test_a_passing_consumer_error_is_skipped() -> None:
    """A broker gone or a topic missing is reported as a message; librdkafka retries, the batch goes on."""
    gone = FakeMessage(99, _error=KafkaError(KafkaError._TRANSPORT))
    batch = added([msg(1), gone, msg(2)])
    assert batch.size == 2


def test_the_token_carries_the_reference_time_and_a_re_formed_slice_keeps_the_ledger_s() -> None:
    batch = Batch(started_at=0.0, cuts={P0: 11}, references={P0: 1234})
    batch.reference_us = 999
    batch.add(as_messages([msg(10), msg(11)]))
    assert batch.token(P0, FP_A).endswith("|usage.events/0:10-11|t=1234")
    fresh = added([msg(10)])
    fresh.reference_us = 999
    assert fresh.token(P0, FP_A).endswith("|t=999")


def test_the_token_is_the_same_for_the_same_input() -> None:
    fakes = [msg(3, partition=1), msg(10, partition=0), msg(4, partition=1)]
    assert added(fakes).token(P0, FP_A) == added(fakes).token(P0, FP_A)


def test_the_token_names_only_its_own_partition_slice() -> None:
    one = added([msg(3, partition=1), msg(10, partition=0)])
    alone = added([msg(10, partition=0)])
    assert one.token(P0, FP_A) == alone.token(P0, FP_A) == f"{FP_A.hex()}|usage.events/0:10-10|t=0"


@pytest.mark.parametrize(
    "other",
    [
        pytest.param([msg(10), msg(12)], id="last offset differs"),
        pytest.param([msg(9), msg(11)], id="first offset differs"),
        pytest.param([msg(10, topic="x"), msg(11, topic="x")], id="topic differs"),
    ],
)
def test_the_token_differs_when_the_slice_differs(other: list[FakeMessage]) -> None:
    base = added([msg(10), msg(11)])
    where = (other[0].topic(), 0)
    assert base.token(P0, FP_A) != added(other).token(where, FP_A)


def test_the_token_differs_between_schema_groups_of_one_slice() -> None:
    batch = added([msg(0, value=avro(FP_A, b"a")), msg(1, value=avro(FP_B, b"b"))])
    assert batch.token(P0, FP_A) != batch.token(P0, FP_B)


def test_messages_past_a_cut_are_held_for_the_next_batch_in_order() -> None:
    batch = Batch(started_at=0.0, cuts={P0: 11})
    batch.add(as_messages([msg(10), msg(5, partition=1), msg(11), msg(12), msg(6, partition=1), msg(13)]))
    assert batch.offsets == {P0: (10, 11)}, "a batch with cuts holds only the slices being re-formed"
    assert [cast(FakeMessage, m).offset() for m in batch.held] == [5, 12, 6, 13]
    assert batch.unreached_cuts() == []


def test_a_cut_not_yet_reached_is_reported_and_names_the_slice() -> None:
    batch = Batch(started_at=0.0, cuts={P0: 20})
    batch.add(as_messages([msg(10), msg(11)]))
    assert batch.unreached_cuts() == [P0]
    batch.release_cut(P0)
    assert batch.unreached_cuts() == []
    assert "|usage.events/0:10-20|" in batch.token(P0, FP_A), "the ledger's name, though 12-20 are gone"


def test_a_dropped_partition_leaves_nothing_behind() -> None:
    batch = Batch(started_at=0.0, cuts={P0: 20, ("usage.events", 1): 5})
    batch.add(as_messages([msg(10), msg(11, value=b"junk"), msg(3, partition=1), msg(21)]))
    batch.drop_partition(P0)
    assert batch.offsets == {("usage.events", 1): (3, 3)}
    assert batch.invalid == []
    assert batch.held == []
    assert [where for where, _ in batch.groups] == [("usage.events", 1)]
    assert batch.unreached_cuts() == [("usage.events", 1)]


def test_cuts_added_later_apply_only_to_partitions_not_in_the_batch() -> None:
    batch = added([msg(10)])
    batch.add_cuts({P0: 10, ("usage.events", 1): 4}, {})
    assert batch.unreached_cuts() == [("usage.events", 1)]
