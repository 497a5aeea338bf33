"""Deduplication by ``event_id`` across batches, restarts and rebalances: each event counted once.

Three layers, each covering what the one before cannot:

1. within a batch, a repeated key is skipped (``Batch.add``);
2. across batches, ids inserted by the partition within the window (24 h by default) are dropped before
   the insert (``IdWindow``), since materialized views count every inserted row;
3. across crashes, the slice that may have been in flight is cut at the same offsets again (the ledger),
   with the same reference time, and its ids are left out of the rebuilt window, so the re-read makes the
   same blocks as the first attempt, with the same tokens, and each table keeps exactly one copy, however
   far the first attempt got; a slice the ledger marks completed keeps its ids in the window instead, so
   a re-read drops them whatever the tokens.

The window must hold exactly the ids ClickHouse has recorded in ``ingested_ids`` (events that passed
validation), so that a window rebuilt after a restart filters a slice exactly as the lost one did.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import numpy as np

from usagemeter.consumers.batch import Batch, SchemaGroup, TopicPartition
from usagemeter.consumers.id_window import U64, IdWindow, Mask, parse_keys
from usagemeter.consumers.ports import LedgerPort

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class _Admitted:
    where: TopicPartition
    group: SchemaGroup
    hi: U64
    lo: U64
    ok: Mask


@dataclass(frozen=True, slots=True)
class Admitted:
    """The ids a batch is about to insert, to remember once the insert succeeded."""

    groups: list[_Admitted]
    dropped: int
    unkeyed: int


class Deduplicator:
    def __init__(self, ledger: LedgerPort, window_s: float) -> None:
        self._ledger = ledger
        self._window_s = window_s
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
        since = datetime.fromtimestamp(now, UTC) - timedelta(seconds=self._window_s * 9 / 8)
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
            recent = self._ledger.recent_ids(topic, partition, since, None if pending is None else pending.first)
            window = self._windows[where] = IdWindow(self._window_s)
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

    def drop_seen(self, batch: Batch) -> Admitted:
        """Removes from ``batch`` the events its partitions inserted within the window."""
        admitted: list[_Admitted] = []
        dropped = unkeyed = 0
        for (where, _fingerprint), group in batch.groups.items():
            hi, lo, ok = parse_keys(group.keys)
            unkeyed += int((~ok).sum())
            window = self._windows.get(where)
            if window is not None and len(lo):
                seen = window.contains(hi, lo) & ok
                if seen.any():
                    dropped += int(seen.sum())
                    group.keep((~seen).tolist())
                    hi, lo, ok = hi[~seen], lo[~seen], ok[~seen]
            admitted.append(_Admitted(where, group, hi, lo, ok))
        batch.duplicates += dropped
        return Admitted(admitted, dropped, unkeyed)

    def remember(self, admitted: Admitted, rejected: set[tuple[str, int, int]], now: float) -> None:
        """Adds the ids a batch inserted, leaving out its dead letters (ClickHouse did not record them)."""
        for part in admitted.groups:
            window = self._windows.get(part.where)
            if window is None:
                window = self._windows[part.where] = IdWindow(self._window_s)
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
