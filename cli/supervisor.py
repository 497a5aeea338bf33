"""The background threads of one command (price refresher, overrides watcher, query API), stopped together.

Each is started through ``start`` and stopped, in reverse order and with a bounded join each, when the
``with`` block ends: when the worker returns, raises, or a stop signal ended its run. A stop requested
before a thread is started leaves it unstarted.
"""

from __future__ import annotations

import logging
import socket
import threading
from collections.abc import Callable
from types import TracebackType
from typing import Protocol, TypeVar

import uvicorn

log = logging.getLogger("usagemeter.worker")


class Stoppable(Protocol):
    """A started background thread: ``stop`` wakes it and joins it for at most ``timeout_s``."""

    def stop(self, timeout_s: float = 10.0) -> None: ...

    @property
    def alive(self) -> bool: ...


S = TypeVar("S", bound=Stoppable)


class Supervisor:
    def __init__(self, stop: threading.Event, join_timeout_s: float = 10.0) -> None:
        self._stop = stop
        self._join_timeout_s = join_timeout_s
        self._started: list[tuple[str, Stoppable]] = []

    def start(self, name: str, starter: Callable[[], S | None]) -> S | None:
        """Runs ``starter`` (which returns the started thread, or None when it is not configured) unless a
        stop was requested; what it started is stopped with the others, and returned."""
        if self._stop.is_set():
            return None
        started = starter()
        if started is not None:
            self._started.append((name, started))
        return started

    def stop_all(self) -> None:
        """Stops the threads, the last started first; one that outlives its join is named in the log."""
        while self._started:
            name, thread = self._started.pop()
            thread.stop(self._join_timeout_s)
            if thread.alive:
                log.warning("%s did not stop within %.0f s; leaving it (a daemon thread)", name, self._join_timeout_s)

    def __enter__(self) -> Supervisor:
        return self

    def __exit__(
        self, _type: type[BaseException] | None, _value: BaseException | None, _traceback: TracebackType | None
    ) -> None:
        self.stop_all()


class ApiThread:
    """The query API's uvicorn server in a daemon thread, serving on a socket bound before it started."""

    def __init__(self, server: uvicorn.Server, listener: socket.socket) -> None:
        self._server = server
        self._thread = threading.Thread(target=server.run, args=([listener],), name="usagemeter-api", daemon=True)
        self._thread.start()

    def stop(self, timeout_s: float = 10.0) -> None:
        self._server.should_exit = True
        self._thread.join(timeout_s)

    @property
    def alive(self) -> bool:
        return self._thread.is_alive()
