"""Background threads outlive any one failed iteration: the price refresher and the overrides watcher log
the failure on one line and try again at their next interval, against the real engine."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator
from decimal import Decimal
from pathlib import Path

import pytest
from clickhouse_connect.driver.client import Client

from tests.fixtures.snapshots import NEW_MODEL, Served, served, with_model
from usagemeter.consumers.settings import ClickHouseSettings
from usagemeter.consumers.store import connect
from usagemeter.pricing import price_updates, pricebook
from usagemeter.pricing.overrides_watch import OverridesWatcher
from usagemeter.query.prices import unit_prices

pytestmark = pytest.mark.clickhouse
__all__ = ["served"]

INTERVAL_S = 0.02


def _until(condition: Callable[[], bool], timeout_s: float = 20.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


@pytest.fixture
def book(clickhouse: Client) -> Client:
    pricebook.load(clickhouse)
    return clickhouse


@pytest.fixture
def refresher_client(clickhouse_settings: ClickHouseSettings, book: Client) -> Client:
    """The refresher's own session, as the worker gives it one."""
    return connect(clickhouse_settings)


def _version(client: Client) -> int:
    return int(client.query("SELECT max(book_version) FROM price_cell_source").result_rows[0][0])


def test_the_refresher_survives_a_deeply_nested_snapshot(
    book: Client, refresher_client: Client, served: Served
) -> None:
    url = served.put("data.json", b"[" * 100_000 + b"]" * 100_000)
    refresher = price_updates.start_refresher(refresher_client, url, INTERVAL_S)
    assert refresher is not None
    try:
        _until(lambda: refresher.failed >= 2)
        served.put("data.json", with_model({"input_mtok": "5"}))
        _until(lambda: refresher.loaded >= 1)
    finally:
        refresher.stop()
    assert _version(book) == 2
    assert unit_prices(book, NEW_MODEL, provider="openai").prices["input_mtok"] == Decimal(5)


def test_the_refresher_survives_a_clickhouse_error(
    book: Client, refresher_client: Client, served: Served, caplog: pytest.LogCaptureFixture
) -> None:
    url = served.put("data.json", with_model({"input_mtok": "6"}))
    book.command("DETACH TABLE price_cell_source")
    caplog.set_level(logging.INFO, "usagemeter.prices")
    refresher = price_updates.start_refresher(refresher_client, url, INTERVAL_S)
    assert refresher is not None
    try:
        _until(lambda: refresher.failed >= 2)
        book.command("ATTACH TABLE price_cell_source")
        _until(lambda: refresher.loaded >= 1)
    finally:
        refresher.stop()
    assert not refresher.alive, "stop() ends the thread"
    failures = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert failures, "each failure is logged"
    line = failures[0].getMessage()
    assert "price refresh failed" in line and "DatabaseError" in line and "\n" not in line
    assert not any(r.exc_info for r in failures), "the traceback only at DEBUG"
    assert unit_prices(book, NEW_MODEL, provider="openai").prices["input_mtok"] == Decimal(6)


def test_at_debug_a_refresh_failure_carries_its_traceback(
    book: Client, served: Served, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, "usagemeter.prices")
    refresher = price_updates.PriceRefresher(book, served.put("data.json", with_model({})), INTERVAL_S)
    book.command("DETACH TABLE price_cell_source")
    try:
        refresher.refresh_once()
    finally:
        book.command("ATTACH TABLE price_cell_source")
    assert refresher.failed == 1
    assert caplog.records[-1].exc_info is not None


OVERRIDE = '[[model]]\nprovider = "openai"\nmodel = "gpt-4o"\neffective_from = 2020-01-01\ninput_mtok = "{price}"\n'


def _override_price(client: Client) -> Decimal | None:
    rows = client.query(
        "SELECT input_mtok FROM price_override_current WHERE provider_id = 'openai' AND model_id = 'gpt-4o'"
    ).result_rows
    return rows[0][0] if rows else None


@pytest.fixture
def watched(book: Client, clickhouse_settings: ClickHouseSettings, tmp_path: Path) -> Iterator[Path]:
    """The overrides file, watched every ``INTERVAL_S`` by a thread with its own session, as the worker runs it."""
    path = tmp_path / "overrides.toml"
    path.write_text(OVERRIDE.format(price="1.00"))
    watcher = OverridesWatcher(path, connect(clickhouse_settings))
    stop = threading.Event()
    thread = threading.Thread(target=watcher.run, args=(stop, INTERVAL_S), daemon=True)
    thread.start()
    _until(lambda: _override_price(book) == Decimal(1))
    yield path
    stop.set()
    thread.join(10)
    assert not thread.is_alive(), "the watcher honours its stop event"


@pytest.mark.parametrize(
    "bad",
    [
        pytest.param(b"\xff\xfe" + OVERRIDE.format(price="2.00").encode(), id="not UTF-8"),
        pytest.param(OVERRIDE.format(price="2.00").replace("2020-01-01", "2107-01-01").encode(), id="past 2106"),
        pytest.param(b"model = [1]\n", id="an entry that is no table"),
    ],
)
def test_the_watcher_keeps_the_last_good_overrides_and_says_why_once(
    book: Client, watched: Path, bad: bytes, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, "usagemeter.overrides")
    watched.write_bytes(bad)
    _until(lambda: any(r.levelno >= logging.WARNING for r in caplog.records))
    time.sleep(20 * INTERVAL_S)  # twenty more looks at the same bad file
    complaints = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(complaints) == 1, [r.getMessage() for r in complaints]
    assert "previous overrides stay in force" in complaints[0].getMessage()
    assert "\n" not in complaints[0].getMessage()
    assert _override_price(book) == Decimal(1)
    watched.write_text(OVERRIDE.format(price="3.00"))
    _until(lambda: _override_price(book) == Decimal(3))


def test_the_watcher_retries_a_clickhouse_error_at_its_next_interval(book: Client, watched: Path) -> None:
    book.command("DETACH TABLE contract_source")
    watched.write_text(OVERRIDE.format(price="4.00"))
    time.sleep(10 * INTERVAL_S)
    assert _override_price(book) == Decimal(1)
    book.command("ATTACH TABLE contract_source")
    _until(lambda: _override_price(book) == Decimal(4))  # the same file, tried again
