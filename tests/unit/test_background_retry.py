"""The retry loops without a store: a client that fails every call, a small interval, a stop event."""

from __future__ import annotations

import logging
import threading
import time
from pathlib import Path
from typing import cast

import pytest
from clickhouse_connect.driver.client import Client

from usagemeter.pricing import price_updates
from usagemeter.pricing.overrides_watch import OverridesWatcher

INTERVAL_S = 0.05


class Unreachable:
    """Stands for a client whose store is gone: every call raises, and the calls are counted."""

    def __init__(self) -> None:
        self.calls = 0

    def _fail(self, *_: object, **__: object) -> None:
        self.calls += 1
        raise ConnectionRefusedError("the store is gone")

    query = command = insert = _fail


def test_the_watcher_retries_once_per_interval_and_stops_when_told(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "overrides.toml"
    path.write_text("")
    client = Unreachable()
    watcher = OverridesWatcher(path, cast(Client, client))
    watcher.start(INTERVAL_S)
    time.sleep(10 * INTERVAL_S)
    watcher.stop()
    assert not watcher.alive
    assert 2 <= client.calls <= 12, "one look per interval: no busy loop"
    lines = [r for r in caplog.records if r.name == "usagemeter.overrides"]
    assert lines
    assert all("ConnectionRefusedError: the store is gone" in r.getMessage() for r in lines)
    assert not any(r.exc_info for r in lines), "the traceback only at DEBUG"


def test_the_watcher_logs_the_traceback_at_debug(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, "usagemeter.overrides")
    stop = threading.Event()
    watcher = OverridesWatcher(tmp_path / "overrides.toml", cast(Client, Unreachable()))
    thread = threading.Thread(target=watcher.run, args=(stop, INTERVAL_S))
    thread.start()
    time.sleep(INTERVAL_S)
    stop.set()
    thread.join(5)
    assert not thread.is_alive()
    assert caplog.records[0].exc_info


def test_a_refresher_never_raises_and_counts_its_failures(caplog: pytest.LogCaptureFixture) -> None:
    refresher = price_updates.PriceRefresher(cast(Client, Unreachable()), "http://[::1", INTERVAL_S)
    assert not refresher.refresh_once()
    assert refresher.failed == 1
    assert "price refresh failed" in caplog.records[-1].getMessage()


@pytest.mark.parametrize("interval_s", [0, -1])
def test_an_interval_that_would_spin_is_refused(tmp_path: Path, interval_s: float) -> None:
    with pytest.raises(ValueError, match="positive"):
        price_updates.PriceRefresher(cast(Client, Unreachable()), "http://127.0.0.1:9/", interval_s)
    with pytest.raises(ValueError, match="positive"):
        OverridesWatcher(tmp_path / "o.toml", cast(Client, Unreachable())).run(threading.Event(), interval_s)
