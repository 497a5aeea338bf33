"""Time as usagemeter reads it, injected so that time rules are tested without sleeping or patching.

One type for every seam: the emitter, its sessions and backlog, the worker and the API's "now" take a
``Clock`` (``SYSTEM_CLOCK`` by default). ``monotonic()`` measures durations and deadlines; ``now_us()``
is the wall-clock time events carry. In ``schemas`` so that the producer can use it.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from typing import Final, Protocol

_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)


class Clock(Protocol):
    def monotonic(self) -> float:
        """Seconds from an arbitrary start, never going back: for durations and deadlines."""
        ...

    def now_us(self) -> int:
        """Wall-clock UTC microseconds since the epoch."""
        ...


class SystemClock:
    def monotonic(self) -> float:
        return time.monotonic()

    def now_us(self) -> int:
        return time.time_ns() // 1000


SYSTEM_CLOCK: Final = SystemClock()


def utc_datetime(now_us: int) -> datetime:
    """``now_us()`` as an aware UTC datetime."""
    return _EPOCH + timedelta(microseconds=now_us)
