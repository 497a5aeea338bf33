"""Counters an emitter keeps so a service can see what metering did without reading logs."""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Literal


@dataclass(frozen=True, slots=True)
class EmitterStats:
    emitted: int
    """emit() calls that produced a message (handed to the Kafka client or its overflow queue)."""
    delivered: int
    """Messages the broker acknowledged."""
    failed: int
    """Events that could not be encoded, or messages the Kafka client gave up on."""
    dropped: int
    """Messages thrown away because the overflow queue was full."""
    queued: int
    """Messages waiting in the overflow queue for room in the Kafka client's queue."""


class Counters:
    """Thread-safe increments; the delivery callback runs on the poll thread."""

    __slots__ = ("_lock", "delivered", "dropped", "emitted", "failed")

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.emitted = self.delivered = self.failed = self.dropped = 0

    def add(self, name: Literal["emitted", "delivered", "failed", "dropped"], n: int = 1) -> None:
        with self._lock:
            setattr(self, name, getattr(self, name) + n)
