"""The on-disk spool without Kafka: format, torn tails, the cap, deletion only after acknowledgement."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest

from usagemeter.producers.spool import MAGIC, Spool, decode_records, encode_record


def records(n: int, start: int = 0, size: int = 80) -> list[tuple[bytes, bytes]]:
    return [(f"id-{i}".encode(), bytes([i % 251]) * size) for i in range(start, start + n)]


def replay_all(spool: Spool) -> list[tuple[bytes, bytes]]:
    """Claims every segment, acknowledges every record; returns them in replay order."""
    seen: list[tuple[bytes, bytes]] = []
    while (claim := spool.claim()) is not None:
        while (record := claim.next_record()) is not None:
            claim.sent += 1
            seen.append(record)
        for _ in range(claim.sent):
            claim.ack(True)
        assert claim.finished
    return seen


def test_records_written_are_read_back_in_order(tmp_path: Path) -> None:
    spool = Spool(tmp_path)
    written = records(100)
    assert spool.append(written[:60]) == 60
    assert spool.append(written[60:]) == 40
    assert spool.size_bytes == len(MAGIC) + sum(len(encode_record(k, v)) for k, v in written)
    assert replay_all(spool) == written
    assert spool.segments() == []
    assert spool.size_bytes == 0


def test_a_later_spool_on_the_same_directory_replays_what_a_closed_one_wrote(tmp_path: Path) -> None:
    first = Spool(tmp_path)
    first.append(records(10))
    first.close()
    second = Spool(tmp_path)
    assert second.size_bytes > 0
    assert replay_all(second) == records(10)


def test_segments_are_replayed_oldest_first(tmp_path: Path) -> None:
    spool = Spool(tmp_path, segment_max_bytes=1_000)
    written = records(50)  # ~100 bytes each: a new segment every ten records
    for record in written:
        spool.append([record])
    assert len(spool.segments()) >= 5
    assert replay_all(spool) == written


def test_a_torn_tail_is_skipped_and_counted(tmp_path: Path) -> None:
    writer = Spool(tmp_path)
    writer.append(records(10))
    writer.close()
    (segment,) = writer.segments()
    os.truncate(segment, segment.stat().st_size - 30)  # a crash in the middle of the last record

    reader = Spool(tmp_path)
    assert replay_all(reader) == records(9)
    assert reader.corrupt == 1
    assert reader.segments() == []


@pytest.mark.parametrize(
    ("damage", "readable"),
    [
        pytest.param(lambda data: data[: len(MAGIC) + 5], 0, id="header cut short"),
        pytest.param(lambda data: data[:-1], 2, id="value cut short"),
        pytest.param(lambda data: data[:-1] + bytes([data[-1] ^ 1]), 2, id="flipped bit fails the CRC"),
        pytest.param(lambda data: b"garbage!" + data[len(MAGIC) :], 0, id="not a segment"),
    ],
)
def test_decoding_stops_at_damage(damage: Callable[[bytes], bytes], readable: int) -> None:
    data = MAGIC + b"".join(encode_record(k, v) for k, v in records(3))
    found, torn = decode_records(damage(data))
    assert torn
    assert found == records(3)[:readable]


def test_the_cap_refuses_what_would_pass_it(tmp_path: Path) -> None:
    one = len(encode_record(*records(1)[0]))
    spool = Spool(tmp_path, max_bytes=len(MAGIC) + 10 * one)
    assert spool.append(records(6)) == 6
    assert spool.append(records(6, start=6)) == 4
    assert spool.append(records(1, start=12)) == 0
    assert spool.size_bytes <= spool.max_bytes
    assert len(replay_all(spool)) == 10
    assert spool.append(records(3, start=20)) == 3, "room again once replayed"


def test_a_segment_is_deleted_only_after_every_record_is_acknowledged(tmp_path: Path) -> None:
    spool = Spool(tmp_path)
    spool.append(records(3))
    claim = spool.claim()
    assert claim is not None
    while claim.next_record() is not None:
        claim.sent += 1
    claim.ack(True)
    claim.ack(True)
    assert claim.path.exists() and not claim.finished
    claim.ack(True)
    assert claim.finished and not claim.path.exists()


def test_a_failed_record_keeps_the_whole_segment_for_later(tmp_path: Path) -> None:
    spool = Spool(tmp_path)
    spool.append(records(3))
    claim = spool.claim()
    assert claim is not None
    claim.sent = 2
    claim.ack(False)
    assert claim.next_record() is None, "no more sends after a failure"
    assert not claim.finished
    claim.ack(True)
    assert claim.finished and claim.path.exists()
    assert replay_all(spool) == records(3), "claimed again, whole"


def test_a_claimed_segment_is_not_claimed_twice(tmp_path: Path) -> None:
    writer = Spool(tmp_path)
    writer.append(records(3))
    writer.close()
    first, second = Spool(tmp_path), Spool(tmp_path)
    claim = first.claim()
    assert claim is not None
    assert second.claim() is None
    claim.release()
    assert second.claim() is not None


def test_a_segment_still_being_written_by_another_spool_is_not_claimed(tmp_path: Path) -> None:
    writer = Spool(tmp_path)
    writer.append(records(3))
    assert Spool(tmp_path).claim() is None
    writer.close()
    assert Spool(tmp_path).claim() is not None


def test_claim_seals_its_own_open_segment_when_it_is_the_only_one(tmp_path: Path) -> None:
    spool = Spool(tmp_path)
    spool.append(records(3))
    assert replay_all(spool) == records(3)
    spool.append(records(2, start=3))  # a new segment
    assert replay_all(spool) == records(2, start=3)


def test_an_abandoned_partial_segment_is_removed(tmp_path: Path) -> None:
    (tmp_path / "00000000000000000001-1-000000.seg.tmp").write_bytes(MAGIC)
    spool = Spool(tmp_path)
    assert list(tmp_path.iterdir()) == []
    assert spool.claim() is None


def test_invalid_sizes_fail_at_start(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="positive"):
        Spool(tmp_path, max_bytes=0)
