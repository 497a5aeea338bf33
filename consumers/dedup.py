"""Deduplication by ``event_id`` across batches, restarts and rebalances: each event counted once.

Three layers, each covering what the one before cannot:

1. within a batch, a repeated key is skipped (``Batch.add``);
2. across batches, ids inserted by the partition within the window (24 h by default) are dropped before
   the insert, since materialized views count every inserted row: ``IdWindow``, a filter of ~1.5 bytes an
   id, says which ids may have been inserted, and one query per batch checks those exactly against
   ``ingested_ids`` (``confirm``), so an id the filter wrongly suspects is inserted all the same;
3. across crashes, the slice that may have been in flight is cut at the same offsets again (the ledger),
   with the same reference time, and its ids are left out of the rebuilt window, so the re-read makes the
   same blocks as the first attempt, with the same tokens, and each table keeps exactly one copy, however
   far the first attempt got; a slice the ledger marks completed keeps its ids in the window instead, so
   a re-read drops them whatever the tokens.

The filter must hold every id ClickHouse has recorded in ``ingested_ids`` (events that passed
validation) within the window, so its "no" is exact; it is filled before the offsets move (``remember``),
and rebuilt from ``ingested_ids`` when a partition is assigned. Since every drop is confirmed by the table,
and the exact check leaves out the ids of the slice being written, a slice read again after a crash
drops the same events as its first attempt, however the filter was rebuilt.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import numpy as np

from usagemeter.consumers.batch import Batch, SchemaGroup, TopicPartition
from usagemeter.consumers.id_window import U64, IdWindow, Mask, parse_keys
from usagemeter.consumers.ports import LedgerPort

log = logging.getLogger(__name__)


@dataclass(slots=True)
class _Admitted:
    where: TopicPartition
    group: SchemaGroup
    hi: U64
    lo: U64
    ok: Mask
    maybe: Mask
    """Ids the filter says may have been inserted before: dropped only if ``ingested_ids`` has them."""


@dataclass(slots=True)
class Admitted:
    """The ids a batch is about to insert, to remember once the insert succeeded."""

    groups: list[_Admitted]
    unkeyed: int
    since: datetime
    """The start of the window the exact check looks in."""
    dropped: int = 0
    confirmed: bool = False


class Deduplicator:
    def __init__(self, ledger: LedgerPort, window_s: float, window: Callable[[float], IdWindow] = IdWindow) -> None:
        self._ledger = ledger
        self._window_s = window_s
        self._window = window
        """Makes each partition's filter (tests pass one that says "maybe" to every id)."""
        self._windows: dict[TopicPartition, IdWindow] = {}
        self._floors: dict[TopicPartition, int] = {}
        self._cuts: dict[TopicPartition, list[tuple[int, int | None]]] = {}
        """Partition → the cuts its next batches must end at, each with the reference time of its slice."""

    def assign(self, topic: str, committed: dict[int, int], now: float) -> None:
        """Loads what a newly assigned partition's past owner left: its last cut and its window of ids.

        ``committed`` maps each partition to its committed offset (negative when the group has none). A
        last slice the ledger marks completed is not cut again: all of it is in the store, so its ids stay
        in the window and a re-read drops them (the second line of defence, should its blocks' tokens not
        be recognised).
        """
        last = self._ledger.last_slices(topic, list(committed))
        since = self._since(now)
        for partition, offset in committed.items():
            where = (topic, partition)
            recorded = last.get(partition)
            pending = None if recorded is None or recorded.completed else recorded.slice
            if pending is not None and pending.first < max(offset, 0):
                pending = None  # written and committed: nothing to cut again
            cuts: list[tuple[int, int | None]] = []
            if pending is not None:
                if pending.first > max(offset, 0):
                    # Offsets behind the ledger (lost or reset): end a batch just before the slice.
                    cuts.append((pending.first - 1, None))
                cuts.append((pending.last, pending.reference_us))
                log.info("partition %s/%d: re-reading slice %s with its original cut", topic, partition, pending.name)
            self._floors.pop(where, None)
            if pending is None and recorded is not None and recorded.slice.last >= max(offset, 0):
                # All in the store, not committed: the next slice starts after it, never overlapping it, so
                # that no two slices in the ledger share a first offset (the newest is found by it).
                self._floors[where] = recorded.slice.last + 1
                log.info("partition %s/%d: slice %s is all in the store", topic, partition, recorded.slice.name)
            self._cuts[where] = cuts
            window = self._windows[where] = self._window(self._window_s)
            excluded = None if pending is None else pending.first
            for bucket, count in self._ledger.recent_counts(topic, partition, since, excluded, window.bucket_s).items():
                window.reserve(bucket, count)
            for recent in self._ledger.recent_ids(topic, partition, since, excluded):
                window.add_at(recent.hi, recent.lo, recent.at)

    def revoke(self, wheres: Sequence[TopicPartition]) -> None:
        for where in wheres:
            self._windows.pop(where, None)
            self._cuts.pop(where, None)
            self._floors.pop(where, None)

    def floors(self) -> dict[TopicPartition, int]:
        """Per partition whose last slice is in the store but was not committed: the offset after it, which
        the worker commits at once and below which it reads nothing into a batch."""
        return dict(self._floors)

    def cuts(self) -> dict[TopicPartition, int]:
        """Where the next batch must end, per partition with a pending cut."""
        return {where: cuts[0][0] for where, cuts in self._cuts.items() if cuts}

    def references(self) -> dict[TopicPartition, int]:
        """The reference time of each slice the next batch re-forms, as its first attempt had it."""
        return {where: cuts[0][1] for where, cuts in self._cuts.items() if cuts and cuts[0][1] is not None}

    def cut_done(self, wheres: Sequence[TopicPartition]) -> None:
        for where in wheres:
            cuts = self._cuts.get(where)
            if cuts:
                cuts.pop(0)

    def drop_seen(self, batch: Batch, now: float) -> Admitted:
        """Marks in ``batch`` the events its partitions may have inserted within the window; nothing is
        dropped until ``confirm`` has checked them."""
        admitted: list[_Admitted] = []
        unkeyed = 0
        for (where, _fingerprint), group in batch.groups.items():
            hi, lo, ok = parse_keys(group.keys)
            unkeyed += int((~ok).sum())
            window = self._windows.get(where)
            maybe = window.contains(hi, lo) & ok if window is not None and len(lo) else np.zeros(len(lo), np.bool_)
            admitted.append(_Admitted(where, group, hi, lo, ok, maybe))
        return Admitted(admitted, unkeyed, self._since(now))

    def confirm(self, batch: Batch, admitted: Admitted) -> None:
        """Drops from ``batch`` the suspected events ``ingested_ids`` holds: one query for the batch, run
        once (a retry of the write does not run it again, so the blocks stay the same)."""
        if admitted.confirmed:
            return
        seen: set[tuple[str, int, int, int]] = set()
        for topic in {part.where[0] for part in admitted.groups}:
            candidates: dict[int, tuple[U64, U64, int]] = {}
            for part in admitted.groups:
                if part.where[0] == topic and part.maybe.any():
                    hi, lo, first = candidates.get(part.where[1], (_NONE, _NONE, batch.slice_of(part.where).first))
                    candidates[part.where[1]] = (
                        np.concatenate((hi, part.hi[part.maybe])),
                        np.concatenate((lo, part.lo[part.maybe])),
                        first,
                    )
            seen |= {(topic, *id_) for id_ in self._ledger.seen_ids(topic, candidates, admitted.since)}
        dropped = 0
        for part in admitted.groups:
            if not part.maybe.any():
                continue
            topic, partition = part.where
            suspects = np.flatnonzero(part.maybe)
            drop = np.zeros(len(part.lo), np.bool_)
            drop[suspects] = [(topic, partition, int(part.hi[i]), int(part.lo[i])) in seen for i in suspects]
            if drop.any():
                dropped += int(drop.sum())
                part.group.keep((~drop).tolist())
                part.hi, part.lo, part.ok = part.hi[~drop], part.lo[~drop], part.ok[~drop]
            part.maybe = np.zeros(len(part.lo), np.bool_)
        batch.duplicates += dropped
        admitted.dropped, admitted.confirmed = dropped, True

    def remember(self, admitted: Admitted, rejected: set[tuple[str, int, int]], now: float) -> None:
        """Adds the ids a batch inserted, leaving out its dead letters (ClickHouse did not record them)."""
        for part in admitted.groups:
            window = self._windows.get(part.where)
            if window is None:
                window = self._windows[part.where] = self._window(self._window_s)
            keep = part.ok
            if rejected:
                topic, partition = part.where
                inserted = np.fromiter(
                    ((topic, partition, m.offset()) not in rejected for m in part.group.messages),
                    dtype=np.bool_,
                    count=len(part.group.messages),
                )
                keep = keep & inserted
            window.add(part.hi[keep], part.lo[keep], now)
        for window in self._windows.values():
            window.evict(now)

    def _since(self, now: float) -> datetime:
        """The oldest insert time the window may still remember (a bucket lives up to 9/8 of it)."""
        return datetime.fromtimestamp(now, UTC) - timedelta(seconds=self._window_s * 9 / 8)


_NONE = np.zeros(0, np.uint64)
