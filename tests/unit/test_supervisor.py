"""The supervisor stops what it started, the last first, with bounded joins, and starts nothing after a stop."""

from __future__ import annotations

import threading
from dataclasses import dataclass

import pytest

from usagemeter.cli.supervisor import Supervisor


@dataclass
class Recorder:
    name: str
    stopped: list[tuple[str, float]]
    stuck: bool = False

    def stop(self, timeout_s: float = 10.0) -> None:
        self.stopped.append((self.name, timeout_s))

    @property
    def alive(self) -> bool:
        return self.stuck


def test_threads_are_stopped_in_reverse_order_with_bounded_joins_when_the_block_ends() -> None:
    stopped: list[tuple[str, float]] = []
    with Supervisor(threading.Event(), join_timeout_s=2.0) as threads:
        threads.start("watcher", lambda: Recorder("watcher", stopped))
        threads.start("not configured", lambda: None)
        threads.start("api", lambda: Recorder("api", stopped))
    assert stopped == [("api", 2.0), ("watcher", 2.0)]


def test_threads_are_stopped_when_the_worker_raises() -> None:
    stopped: list[tuple[str, float]] = []
    with pytest.raises(RuntimeError), Supervisor(threading.Event()) as threads:
        threads.start("refresher", lambda: Recorder("refresher", stopped))
        raise RuntimeError("the worker failed")
    assert [name for name, _ in stopped] == ["refresher"]


def test_nothing_starts_after_a_stop_was_requested() -> None:
    stop = threading.Event()
    stop.set()
    stopped: list[tuple[str, float]] = []
    starters: list[str] = []

    def starter() -> Recorder:
        starters.append("api")
        return Recorder("api", stopped)

    with Supervisor(stop) as threads:
        threads.start("api", starter)
    assert (starters, stopped) == ([], [])


def test_a_thread_that_outlives_its_join_is_named_and_the_rest_are_still_stopped(
    caplog: pytest.LogCaptureFixture,
) -> None:
    stopped: list[tuple[str, float]] = []
    with Supervisor(threading.Event(), join_timeout_s=0.1) as threads:
        threads.start("first", lambda: Recorder("first", stopped))
        threads.start("stuck", lambda: Recorder("stuck", stopped, stuck=True))
    assert [name for name, _ in stopped] == ["stuck", "first"]
    assert "stuck did not stop within" in caplog.text
