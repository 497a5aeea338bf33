"""Time as the worker sees it, injectable so batching and time rules are tested without sleeping."""

from __future__ import annotations

import time
from typing import Protocol


class Clock(Protocol):
    def monotonic(self) -> float: ...

    def now_us(self) -> int:
        """Wall-clock UTC microseconds since the epoch."""
        ...


class SystemClock:
    def monotonic(self) -> float:
        return time.monotonic()

    def now_us(self) -> int:
        return time.time_ns() // 1000
