"""The ingest ledger and the ids it inserted: what a worker reads back when it is given a partition.

An insert's deduplication token helps only if a retry sends the identical block. After a crash the
re-read would be cut again from whatever arrives, so before inserting a batch the worker writes where it
cut each partition (``ingest_ledger``); the next owner of the partition cuts the slice that may have
been in flight at the same offsets again. ``ingested_ids`` (fed by a view on ``usage_events``) holds
each inserted event id with its slice, from which the dedup window is rebuilt.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

import numpy as np
from clickhouse_connect.driver.client import Client
from clickhouse_connect.driver.exceptions import ClickHouseError

from usagemeter.consumers.batch import Slice
from usagemeter.consumers.id_window import U64
from usagemeter.schemas.errors import StoreUnavailable


@dataclass(frozen=True, slots=True)
class RecentIds:
    """Ids one partition inserted since a moment, as ``IdWindow`` takes them."""

    hi: U64
    lo: U64
    at: np.typing.NDArray[np.float64]


@dataclass(frozen=True, slots=True)
class Recorded:
    """A partition's newest slice in the ledger, and whether all of it reached the store."""

    slice: Slice
    completed: bool


class Ledger:
    def __init__(self, client: Client) -> None:
        self._client = client

    def record(self, slices: Sequence[Slice]) -> None:
        """Writes the cuts of a batch about to be inserted (idempotent: a retry writes the same rows)."""
        self._write(slices, completed=False)

    def complete(self, slices: Sequence[Slice]) -> None:
        """Marks the slices of a batch whose every insert and dead letter is done, before its commit."""
        self._write(slices, completed=True)

    def _write(self, slices: Sequence[Slice], *, completed: bool) -> None:
        try:
            self._insert(slices, completed=completed)
        except (ClickHouseError, OSError) as exc:  # the batch is retried whole, with the same rows and tokens
            raise _unavailable("the ingest ledger could not be written", exc) from exc

    def _insert(self, slices: Sequence[Slice], *, completed: bool) -> None:
        self._client.insert(
            "ingest_ledger",
            [[s.topic, s.partition, s.first, s.last, s.reference_us, int(completed)] for s in slices],
            column_names=["topic", "partition", "first_offset", "last_offset", "reference_us", "completed"],
            settings={
                "async_insert": 0,
                "insert_deduplication_token": f"ledger|{int(completed)}|" + ",".join(s.name for s in slices),
            },
        )

    def last_slices(self, topic: str, partitions: Sequence[int]) -> dict[int, Recorded]:
        """The newest recorded slice of each partition: the only one that can have been in flight."""
        rows = self._client.query(
            "SELECT partition, max(first_offset), argMax(last_offset, first_offset),"
            " argMax(reference_us, first_offset),"
            " argMax(completed, (first_offset, completed))"
            " FROM ingest_ledger"
            " WHERE topic = {topic:String} AND partition IN {partitions:Array(UInt32)} GROUP BY partition",
            parameters={"topic": topic, "partitions": list(partitions)},
        ).result_rows
        return {
            int(p): Recorded(Slice(topic, int(p), int(first), int(last), int(reference)), bool(done))
            for p, first, last, reference, done in rows
        }

    def recent_ids(
        self, topic: str, partition: int, since: datetime, excluding_slice: int | None
    ) -> Iterator[RecentIds]:
        """Ids the partition inserted since ``since``, except those of the slice starting at ``excluding_slice``
        (the one to be read again: its ids must not count as seen before it), in blocks: a day of ids is
        gigabytes as one array, but a filter's worth a block at a time."""
        with self._client.query_column_block_stream(
            f"SELECT {_HI}, {_LO}, toFloat64(toUnixTimestamp(ingested_at)) FROM ingested_ids WHERE {_RECENT}",
            parameters=_recent(topic, partition, since, excluding_slice),
        ) as blocks:
            for hi, lo, at in blocks:
                yield RecentIds(np.asarray(hi, np.uint64), np.asarray(lo, np.uint64), np.asarray(at, np.float64))

    def recent_counts(
        self, topic: str, partition: int, since: datetime, excluding_slice: int | None, bucket_s: float
    ) -> dict[int, int]:
        """How many ids ``recent_ids`` gives per time bucket (``at // bucket_s``), to size the filters first."""
        rows = self._client.query(
            "SELECT toInt64(floor(toUnixTimestamp(ingested_at) / {bucket_s:Float64})) AS bucket, count()"
            f" FROM ingested_ids WHERE {_RECENT} GROUP BY bucket",
            parameters={**_recent(topic, partition, since, excluding_slice), "bucket_s": bucket_s},
        ).result_rows
        return {int(bucket): int(count) for bucket, count in rows}

    def seen_ids(self, topic: str, candidates: Candidates, since: datetime) -> set[SeenId]:
        """Which of the ``candidates`` (partition → the ids to check and the first offset of the slice about
        to insert them) the store recorded since ``since``, in one query. The slice's own ids are left out:
        a slice retried, or read again after a crash, must form the same blocks as its first attempt."""
        if not candidates:
            return set()
        ids = [
            uuid.UUID(int=(int(h) << 64) | int(low))
            for high, lows, _ in candidates.values()
            for h, low in zip(high, lows, strict=True)
        ]
        try:
            rows = self._client.query(
                f"SELECT partition, {_HI}, {_LO} FROM ingested_ids"
                " WHERE topic = {topic:String} AND partition IN {partitions:Array(UInt32)}"
                " AND event_id IN {ids:Array(UUID)} AND ingested_at >= {since:DateTime}"
                " AND (partition, slice_first) NOT IN {own:Array(Tuple(UInt32, UInt64))}",
                parameters={
                    "topic": topic,
                    "partitions": list(candidates),
                    "ids": ids,
                    "since": _naive_utc(since),
                    "own": [(partition, first) for partition, (_, _, first) in candidates.items()],
                },
            ).result_rows
        except (ClickHouseError, OSError) as exc:  # the batch is retried whole, before anything is inserted
            raise _unavailable("ingested_ids could not be read", exc) from exc
        return {(int(p), int(h), int(lo)) for p, h, lo in rows}


_HI = "reinterpretAsUInt64(reverse(substring(UUIDStringToNum(toString(event_id)), 1, 8)))"
_LO = "reinterpretAsUInt64(reverse(substring(UUIDStringToNum(toString(event_id)), 9, 8)))"
_RECENT = (
    "topic = {topic:String} AND partition = {partition:UInt32}"
    " AND ingested_at >= {since:DateTime} AND slice_first != {excluded:Int64}"
)
"""The rows of a window being rebuilt: one partition's since a moment, but the slice to be read again."""
Candidates = dict[int, tuple[U64, U64, int]]
"""Partition → (hi, lo) of the ids to check exactly, and the first offset of the slice that brings them."""
SeenId = tuple[int, int, int]
"""(partition, hi, lo) of an id the store already holds."""


def _recent(topic: str, partition: int, since: datetime, excluding_slice: int | None) -> dict[str, object]:
    return {
        "topic": topic,
        "partition": partition,
        "since": _naive_utc(since),
        "excluded": -1 if excluding_slice is None else excluding_slice,
    }


def _unavailable(what: str, exc: Exception) -> StoreUnavailable:
    first = (str(exc).strip().splitlines() or ["no message"])[0][:300]
    return StoreUnavailable(f"{what}: {first}")


def _naive_utc(moment: datetime) -> datetime:
    return moment.astimezone(UTC).replace(tzinfo=None)
