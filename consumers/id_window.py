"""Event ids one partition has inserted recently: the cross-batch half of deduplication by ``event_id``.

A re-sent event (same ``event_id``, hence the same key and partition) can arrive in any later batch, and
materialized views count every inserted row, so it has to be dropped before the insert. A day of ids at
a few thousand events a second is hundreds of millions: as a Python set of keys that is ~100 bytes an id,
here it is 16 (two uint64 per UUID, in sorted numpy runs searched in bulk, a batch at a time).

Runs are grouped by the time bucket they were added in (an eighth of the window); a bucket is dropped
whole once all of it is older than the window, so ids are remembered for between ``window_s`` and
``window_s * 9/8``. Inside a bucket, runs are merged geometrically, so a lookup searches O(log n) runs
per bucket.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import cast

import numpy as np
import numpy.typing as npt

U64 = npt.NDArray[np.uint64]
Mask = npt.NDArray[np.bool_]

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


class _Run:
    """Ids sorted by (lo, hi): lo is searched (random in UUIDv4 and v7 alike), hi confirms."""

    __slots__ = ("hi", "lo")

    def __init__(self, hi: U64, lo: U64) -> None:
        order = np.lexsort((hi, lo))
        self.hi: U64 = hi[order]
        self.lo: U64 = lo[order]

    def __len__(self) -> int:
        return len(self.lo)

    def merged(self, other: _Run) -> _Run:
        return _Run(np.concatenate((self.hi, other.hi)), np.concatenate((self.lo, other.lo)))

    def contains(self, hi: U64, lo: U64) -> Mask:
        at = np.searchsorted(self.lo, lo)
        inside = np.minimum(at, len(self.lo) - 1)
        same_lo = (at < len(self.lo)) & (self.lo[inside] == lo)
        found: Mask = same_lo & (self.hi[inside] == hi)
        for i in np.flatnonzero(same_lo & ~found):
            # Two ids sharing their low 64 bits: look at every entry with that lo (as good as never).
            j = int(at[i])
            while j < len(self.lo) and self.lo[j] == lo[i] and not found[i]:
                found[i] = self.hi[j] == hi[i]
                j += 1
        return found


class IdWindow:
    def __init__(self, window_s: float) -> None:
        self.window_s = window_s
        self._bucket_s = window_s / 8
        self._buckets: dict[int, list[_Run]] = {}

    def __len__(self) -> int:
        return sum(len(run) for runs in self._buckets.values() for run in runs)

    def add(self, hi: U64, lo: U64, at: float) -> None:
        """Remembers ids inserted at ``at`` (seconds since the epoch)."""
        if not len(lo):
            return
        runs = self._buckets.setdefault(int(at // self._bucket_s), [])
        runs.append(_Run(hi, lo))
        while len(runs) > 1 and len(runs[-2]) <= 2 * len(runs[-1]):
            last = runs.pop()
            runs[-1] = runs[-1].merged(last)

    def add_at(self, hi: U64, lo: U64, at: npt.NDArray[np.float64]) -> None:
        """Remembers ids each with its own insert time (a window rebuilt from ClickHouse)."""
        buckets = (at // self._bucket_s).astype(np.int64)
        for bucket in np.unique(buckets):
            chosen = buckets == bucket
            self.add(hi[chosen], lo[chosen], float(bucket) * self._bucket_s)

    def contains(self, hi: U64, lo: U64) -> Mask:
        # Searching sorted needles walks each run once, in order: several times faster than random probes.
        order = np.argsort(lo)
        hi_sorted, lo_sorted = hi[order], lo[order]
        found_sorted = np.zeros(len(lo), dtype=np.bool_)
        for runs in self._buckets.values():
            for run in runs:
                found_sorted |= run.contains(hi_sorted, lo_sorted)
        found = np.empty_like(found_sorted)
        found[order] = found_sorted
        return found

    def evict(self, now: float) -> None:
        """Drops the buckets wholly older than the window."""
        horizon = now - self.window_s
        for bucket in [b for b in self._buckets if (b + 1) * self._bucket_s <= horizon]:
            del self._buckets[bucket]
