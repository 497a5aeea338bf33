"""The ingest ledger and the ids it inserted: what a worker reads back when it is given a partition.

An insert's deduplication token helps only if a retry sends the identical block. After a crash the
re-read would be cut again from whatever arrives, so before inserting a batch the worker writes where it
cut each partition (``ingest_ledger``); the next owner of the partition cuts the slice that may have
been in flight at the same offsets again. ``ingested_ids`` (fed by a view on ``usage_events``) holds
each inserted event id with its slice, from which the dedup window is rebuilt.
"""

from __future__ import annotations

from collections.abc import Sequence
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
            first = (str(exc).strip().splitlines() or ["no message"])[0][:300]
            raise StoreUnavailable(f"the ingest ledger could not be written: {first}") from exc

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

    def recent_ids(self, topic: str, partition: int, since: datetime, excluding_slice: int | None) -> RecentIds:
        """Ids the partition inserted since ``since``, except those of the slice starting at ``excluding_slice``
        (the one to be read again: its ids must not count as seen before it)."""
        columns = self._client.query(
            "SELECT"
            " reinterpretAsUInt64(reverse(substring(UUIDStringToNum(toString(event_id)), 1, 8))),"
            " reinterpretAsUInt64(reverse(substring(UUIDStringToNum(toString(event_id)), 9, 8))),"
            " toUnixTimestamp(ingested_at)"
            " FROM ingested_ids WHERE topic = {topic:String} AND partition = {partition:UInt32}"
            " AND ingested_at >= {since:DateTime} AND slice_first != {excluded:Int64}",
            parameters={
                "topic": topic,
                "partition": partition,
                "since": since.astimezone(UTC).replace(tzinfo=None),
                "excluded": -1 if excluding_slice is None else excluding_slice,
            },
        ).result_columns
        if not columns:
            return RecentIds(np.zeros(0, np.uint64), np.zeros(0, np.uint64), np.zeros(0, np.float64))
        return RecentIds(
            np.array(columns[0], dtype=np.uint64),
            np.array(columns[1], dtype=np.uint64),
            np.array(columns[2], dtype=np.float64),
        )
