"""Builds a running worker from settings: the store migrated and priced, the pipeline wired.

Shared by ``usagemeter worker`` and ``usagemeter serve`` (which adds the query API in the same process,
as an embedded chDB directory can be owned by one process only).
"""

from __future__ import annotations

import logging
import threading

from clickhouse_connect.driver.client import Client

from usagemeter.consumers import migrations, pricebook
from usagemeter.consumers.overrides_watch import OverridesWatcher
from usagemeter.consumers.settings import ClickHouseSettings, KafkaSettings, OverridesSettings, WorkerSettings
from usagemeter.consumers.store import connect
from usagemeter.consumers.worker import Worker
from usagemeter.consumers.writer import WriteResult

log = logging.getLogger("usagemeter.worker")


def prepare_store(settings: ClickHouseSettings) -> Client:
    """Connects, applies missing migrations, and loads the bundled price book when none is loaded yet."""
    client = connect(settings)
    applied = migrations.apply(client)
    if applied:
        log.info("applied migrations: %s", ", ".join(applied))
    # Both halves: a start killed between writing prices and aliases must load the book again.
    loaded = client.query("SELECT (SELECT count() FROM price_cell_current), (SELECT count() FROM model_alias_current)")
    if not all(loaded.result_rows[0]):
        stats = pricebook.load(client)
        log.info("loaded price book v%d: %d prices, %d aliases", stats.book_version, stats.price_rows, stats.alias_rows)
    watch_overrides(settings, OverridesSettings())
    return client


def watch_overrides(store: ClickHouseSettings, settings: OverridesSettings) -> OverridesWatcher | None:
    """Loads the overrides file now, then again whenever it changes, from a daemon thread of its own
    (with its own session); None when no file is configured."""
    if settings.path is None:
        return None
    watcher = OverridesWatcher(settings.path, connect(store))
    watcher.check()
    thread = threading.Thread(
        target=watcher.run,
        args=(threading.Event(), settings.check_interval_s),
        name="usagemeter-overrides",
        daemon=True,
    )
    thread.start()
    return watcher


def build_worker(kafka: KafkaSettings, settings: WorkerSettings, client: Client) -> Worker:
    return Worker(kafka, client, settings, on_flush=_log_flush)


def _log_flush(result: WriteResult) -> None:
    log.info(
        "batch written: %d inserted, %d dead-lettered, %d duplicates skipped%s",
        result.inserted,
        result.dead_lettered,
        result.duplicates,
        f", {result.triaged_blocks} blocks triaged" if result.triaged_blocks else "",
    )
