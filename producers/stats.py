"""Counters an emitter keeps so a service can see what metering did without reading logs.

Every event ends in exactly one of ``delivered``, ``spooled``, ``dropped`` or ``failed``::

    emit() calls = emitted + refused
    emitted      = delivered + spooled + dropped + (failed - refused) + (waiting: in the Kafka client's
                   queue or ``queued``)

``refused`` is the part of ``failed`` that emit() turned away itself (never sent). Spooled events come
back as ``replayed`` or, when the broker refuses them for good, ``failed`` (possibly more than once, and
possibly by another process sharing the spool directory).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Literal

CounterName = Literal["emitted", "delivered", "spooled", "replayed", "failed", "dropped", "refused"]


@dataclass(frozen=True, slots=True)
class EmitterStats:
    emitted: int
    """emit() calls that produced a message (handed to the Kafka client or its overflow queue): sent."""
    delivered: int
    """Messages the broker acknowledged on their first send."""
    spooled: int
    """Messages written to the on-disk spool (the broker was down, slow, or the process was closing)."""
    replayed: int
    """Spooled messages sent again from the spool and acknowledged by the broker."""
    failed: int
    """Events lost because of what they are: refused at emit() (see ``refused``), or refused for good by
    the Kafka client or the broker (too large, invalid record, not authorized for the topic), live or on
    replay. An attempt the client gave up on for a reason that may pass (timeout, broker down, unknown
    topic) is not a failure: that event is spooled (or dropped when it cannot be)."""
    dropped: int
    """Messages thrown away for good: the spool was full (``spool_max_bytes``), disabled, or unwritable,
    or the in-memory queue was full, or emit() was called after close()."""
    queued: int
    """Messages waiting in memory for room in the Kafka client's queue or for a spool write."""
    spool_bytes: int = 0
    """Bytes in the spool directory's segments (as of this emitter's last look)."""
    spool_corrupt: int = 0
    """Torn or corrupt segment tails skipped during replay (a crash mid-write); their events are lost."""
    refused: int = 0
    """Of ``failed``, the events emit() refused before sending: an unknown field, a value of the wrong
    type, an encoded size over ``message.max.bytes``, an unreadable provider response. Not in ``emitted``."""


class Counters:
    """Thread-safe increments; the delivery callback runs on the poll thread."""

    __slots__ = ("_lock", "delivered", "dropped", "emitted", "failed", "refused", "replayed", "spooled")

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.emitted = self.delivered = self.spooled = self.replayed = self.failed = self.dropped = 0
        self.refused = 0

    def add(self, name: CounterName, n: int = 1) -> None:
        with self._lock:
            setattr(self, name, getattr(self, name) + n)
