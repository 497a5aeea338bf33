"""Event ids one partition has inserted recently, as a filter: the cross-batch half of deduplication.

A re-sent event (same ``event_id``, hence the same key and partition) can arrive in any later batch, and
materialized views count every inserted row, so it has to be dropped before the insert. A day of ids is
tens to hundreds of millions; kept exactly that is 16 bytes an id (1.4 GB a day at 1,000 events/s). Here
each id costs ``BITS_PER_ID`` bits of a register-blocked Bloom filter (one 64-bit word per id, ``_K`` bits
set in it): ``contains`` answers "maybe" for every id added and for about 1 % of the others, and
``consumers/dedup.py`` checks each "maybe" exactly against ``ingested_ids`` before dropping anything.
A false positive costs a lookup, never an event; a false negative cannot happen.

Filters are grouped by the time bucket they were filled in (an eighth of the window); a bucket is dropped
whole once all of it is older than the window, so ids are remembered for between ``window_s`` and
``window_s * 9/8``. A bucket's filter is sized for the ids the previous bucket held (exactly, when the
window is rebuilt from the store); ids beyond that go to extra segments sized for the rest of the bucket
at the rate seen so far, so a surge, or a worker's first bucket, adds a few percent of false positives.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import cast

import numpy as np
import numpy.typing as npt

U64 = npt.NDArray[np.uint64]
Mask = npt.NDArray[np.bool_]

BITS_PER_ID = 12
"""Filter bits per id at a segment's capacity: about 1 % false positives per bucket."""
_K = 5
_MIN_CAPACITY = 4_096
_HEADROOM = 1.1
"""A new bucket is sized for 10 % more ids than the one before it held."""

_UUID_LEN = 36
_DASHES = np.array([8, 13, 18, 23])
_HEX_AT = np.array([i for i in range(_UUID_LEN) if i not in (8, 13, 18, 23)])
_NIBBLE = np.full(256, 255, dtype=np.uint8)
for _digit, _char in enumerate(b"0123456789abcdef"):
    _NIBBLE[_char] = _digit
for _digit, _char in enumerate(b"ABCDEF", start=10):
    _NIBBLE[_char] = _digit
_PLACEHOLDER = b"00000000-0000-0000-0000-000000000000"


def parse_keys(keys: Sequence[bytes | None]) -> tuple[U64, U64, Mask]:
    """``(hi, lo, ok)``: each key read as a canonical UUID string (either case), as its two big-endian
    halves; ``ok`` is False for a key that is not one (those cannot be deduplicated across batches)."""
    n = len(keys)
    if not n:
        empty = np.zeros(0, dtype=np.uint64)
        return empty, empty.copy(), np.zeros(0, dtype=np.bool_)
    try:
        ok = np.fromiter(map(len, cast(Sequence[bytes], keys)), dtype=np.int64, count=n) == _UUID_LEN
    except TypeError:  # a key is None
        ok = np.fromiter((key is not None and len(key) == _UUID_LEN for key in keys), dtype=np.bool_, count=n)
    if ok.all():
        joined = b"".join(cast(Sequence[bytes], keys))
    else:
        joined = b"".join(key if key is not None and len(key) == _UUID_LEN else _PLACEHOLDER for key in keys)
    raw = np.frombuffer(joined, dtype=np.uint8).reshape(n, _UUID_LEN)
    nibbles = _NIBBLE[raw[:, _HEX_AT]]
    ok &= (nibbles < 16).all(axis=1) & (raw[:, _DASHES] == ord("-")).all(axis=1)
    packed = np.ascontiguousarray((nibbles[:, 0::2] << 4) | (nibbles[:, 1::2] & 15), dtype=np.uint8)
    halves = packed.view(">u8").astype(np.uint64)
    return np.ascontiguousarray(halves[:, 0]), np.ascontiguousarray(halves[:, 1]), ok


def _mix(x: U64) -> U64:
    """splitmix64's finaliser: every output bit depends on every input bit (UUIDv7's high half is a clock)."""
    x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return x ^ (x >> np.uint64(31))


def _probes(hi: U64, lo: U64, words: int) -> tuple[npt.NDArray[np.intp], U64]:
    """Each id's word (the top 32 bits of one hash, scaled to the filter) and the ``_K`` bits set in it."""
    with np.errstate(over="ignore"):
        first = _mix(lo ^ _mix(hi))
        second = _mix(first ^ np.uint64(0x9E3779B97F4A7C15))
        at = ((first >> np.uint64(32)) * np.uint64(words)) >> np.uint64(32)
        mask = np.zeros(len(lo), dtype=np.uint64)
        for i in range(_K):
            mask |= np.uint64(1) << ((second >> np.uint64(6 * i)) & np.uint64(63))
    return at.astype(np.intp), mask


class _Segment:
    """One Bloom filter of a fixed capacity; ``count`` is how many ids were added (repeats included)."""

    __slots__ = ("capacity", "count", "words")

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self.count = 0
        self.words: U64 = np.zeros(-(-capacity * BITS_PER_ID // 64), dtype=np.uint64)

    def add(self, hi: U64, lo: U64) -> None:
        at, mask = _probes(hi, lo, len(self.words))
        self.count += len(at)
        np.bitwise_or.at(self.words, at, mask)  # unbuffered: repeated words keep every bit

    def contains(self, hi: U64, lo: U64) -> Mask:
        at, mask = _probes(hi, lo, len(self.words))
        found: Mask = (self.words[at] & mask) == mask
        return found


class IdWindow:
    """The ids a partition inserted within ``window_s``: never forgets one early, sometimes says "maybe"."""

    def __init__(self, window_s: float) -> None:
        self.window_s = window_s
        self._bucket_s = window_s / 8
        self._buckets: dict[int, list[_Segment]] = {}

    def __len__(self) -> int:
        """Ids added and not expired (an id added twice counts twice)."""
        return sum(segment.count for segments in self._buckets.values() for segment in segments)

    @property
    def nbytes(self) -> int:
        return sum(segment.words.nbytes for segments in self._buckets.values() for segment in segments)

    def add(self, hi: U64, lo: U64, at: float) -> None:
        """Remembers ids inserted at ``at`` (seconds since the epoch)."""
        self._add(int(at // self._bucket_s), hi, lo, at)

    @property
    def bucket_s(self) -> float:
        return self._bucket_s

    def reserve(self, bucket: int, count: int) -> None:
        """Sizes bucket number ``bucket`` (``at // bucket_s``) for ``count`` ids before a rebuild fills it
        block by block; a bucket that exists already is left as it is."""
        if bucket not in self._buckets:
            self._buckets[bucket] = [_Segment(max(_MIN_CAPACITY, count))]

    def add_at(self, hi: U64, lo: U64, at: npt.NDArray[np.float64]) -> None:
        """Remembers ids each with its own insert time (a window rebuilt from ClickHouse, sized by ``reserve``)."""
        buckets = (at // self._bucket_s).astype(np.int64)
        for bucket in np.unique(buckets):
            chosen = buckets == bucket
            self._add(int(bucket), hi[chosen], lo[chosen], float(at[chosen].max()))

    def _add(self, bucket: int, hi: U64, lo: U64, at: float) -> None:
        if not len(lo):
            return
        segments = self._buckets.get(bucket)
        if segments is None:
            segments = self._buckets[bucket] = [_Segment(self._capacity_for(bucket))]
        start = 0
        while start < len(lo):
            last = segments[-1]
            room = last.capacity - last.count
            if room <= 0:
                last = _Segment(self._overflow(bucket, segments, at, len(lo) - start))
                segments.append(last)
                room = last.capacity
            last.add(hi[start : start + room], lo[start : start + room])
            start += room

    def _capacity_for(self, bucket: int) -> int:
        before = [b for b in self._buckets if b < bucket]
        held = sum(s.count for s in self._buckets[max(before)]) if before else 0
        return max(_MIN_CAPACITY, int(held * _HEADROOM))

    def _overflow(self, bucket: int, segments: list[_Segment], at: float, pending: int) -> int:
        """An extra segment's capacity: the rest of the bucket at the rate it filled so far (at most 4 times
        what it holds, at least half), so a bucket has a few segments, each adding its false positives."""
        held = sum(segment.count for segment in segments)
        elapsed = max(at - bucket * self._bucket_s, 1.0)
        projected = held * max(self._bucket_s - elapsed, 0.0) / elapsed * _HEADROOM
        return int(max(_MIN_CAPACITY, pending, held // 2, min(4 * held, projected)))

    def contains(self, hi: U64, lo: U64) -> Mask:
        """True for every id added (and not expired) and for a few others: a "maybe" to check exactly."""
        found = np.zeros(len(lo), dtype=np.bool_)
        for segments in self._buckets.values():
            for segment in segments:
                found |= segment.contains(hi, lo)
        return found

    def evict(self, now: float) -> None:
        """Drops the buckets wholly older than the window."""
        horizon = now - self.window_s
        for bucket in [b for b in self._buckets if (b + 1) * self._bucket_s <= horizon]:
            del self._buckets[bucket]
