"""SIGTERM and SIGINT become a stop request, so long-running commands drain and commit before exiting.

``usagemeter`` catches both before it imports its commands (about a second): a supervisor that stops a
worker during start-up gets a clean exit, not the default action. Commands that do not run long hand
the signals back (``restore_defaults``), re-raising one that arrived while the command was loading.
"""

from __future__ import annotations

import signal
import threading
from types import FrameType

_early: threading.Event | None = None
_received: list[int] = []


def _install(stop: threading.Event) -> threading.Event:
    def request_stop(signum: int, _frame: FrameType | None) -> None:
        _received.append(signum)
        stop.set()

    signal.signal(signal.SIGTERM, request_stop)
    signal.signal(signal.SIGINT, request_stop)
    return stop


def catch_early() -> None:
    """Turn SIGTERM/SIGINT into a stop request from now on, before the command is even known."""
    global _early  # noqa: PLW0603 -- one process, one set of signal handlers
    _early = _install(threading.Event())


def stop_on_signals() -> threading.Event:
    """The stop request of a long-running command; already set when a signal came during start-up."""
    global _early
    stop, _early = _early or threading.Event(), None
    return _install(stop)


def restore_defaults() -> None:
    """Default actions again (for short commands); a signal caught while loading takes effect now."""
    global _early  # noqa: PLW0603
    if _early is None:
        return
    _early = None
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    if _received:
        signal.raise_signal(_received[0])
