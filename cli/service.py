"""Builds a running worker from settings: the store migrated and priced, the pipeline wired.

Shared by ``usagemeter worker`` and ``usagemeter serve`` (which adds the query API in the same process,
as an embedded chDB directory can be owned by one process only).
"""

from __future__ import annotations

import logging

from clickhouse_connect.driver.client import Client

from usagemeter.budgets.metrics import AlertMetrics
from usagemeter.budgets.settings import AlertSettings
from usagemeter.budgets.watcher import BudgetWatcher
from usagemeter.consumers import migrations, pipeline
from usagemeter.consumers.metrics import WorkerMetrics
from usagemeter.consumers.settings import ClickHouseSettings, KafkaSettings, OverridesSettings, WorkerSettings
from usagemeter.consumers.store import connect
from usagemeter.consumers.worker import Worker
from usagemeter.consumers.writer import WriteResult
from usagemeter.pricing import overrides, pricebook
from usagemeter.pricing.overrides_watch import OverridesWatcher
from usagemeter.schemas.errors import StoreInUse

log = logging.getLogger("usagemeter.worker")


def prepare_store(settings: ClickHouseSettings) -> Client:
    """Connects, applies missing migrations, and loads the bundled price book when none is loaded yet.

    After migrations an embedded engine is closed and opened again, so that this process computes the
    deduplication block ids that any later process computes for the same tokens: measured, a process
    that changed the view chain (``ALTER ... MODIFY QUERY``) gets other ids than one that loaded the views
    from disk, and a block it inserted and another process retried was stored twice.
    """
    client = connect(settings)
    applied = migrations.apply(client, settings.cluster)
    if applied:
        log.info("applied migrations: %s", ", ".join(applied))
        if settings.embedded:
            client = reopen_engine(client, settings)
    # Both halves: a start killed between writing prices and aliases must load the book again.
    loaded = client.query("SELECT (SELECT count() FROM price_cell_current), (SELECT count() FROM model_alias_current)")
    if not all(loaded.result_rows[0]):
        stats = pricebook.load(client)
        log.info("loaded price book v%d: %d prices, %d aliases", stats.book_version, stats.price_rows, stats.alias_rows)
    overrides.repair(client)  # half a version left by a killed `usagemeter overrides load`
    return client


def reopen_engine(client: Client, settings: ClickHouseSettings) -> Client:
    """Closes the embedded engine and opens it from disk; raises when another handle kept it open.

    A Memory table's rows live only as long as the engine: one written before and found after means the
    engine was never closed, and inserting now could count a retried block twice.
    """
    client.command("CREATE TABLE IF NOT EXISTS engine_restart_probe (at DateTime64(6)) ENGINE = Memory")
    client.command("INSERT INTO engine_restart_probe VALUES (now64(6))")
    client.close()
    fresh = connect(settings)
    if fresh.query("SELECT count() FROM engine_restart_probe").result_rows[0][0]:
        fresh.command("TRUNCATE TABLE engine_restart_probe")
        raise StoreInUse(
            "the store's engine stayed open after migrating (another connection in this process holds it); "
            "run `usagemeter migrate` first, then start this process again"
        )
    return fresh


def watch_overrides(store: ClickHouseSettings) -> OverridesWatcher | None:
    """Loads the overrides file now, then again whenever it changes, from a daemon thread of its own
    (with its own session); None when no file is configured. Started through the command's supervisor."""
    settings = OverridesSettings()
    if settings.path is None:
        return None
    watcher = OverridesWatcher(settings.path, connect(store))
    watcher.check()
    watcher.start(settings.check_interval_s)
    return watcher


def start_alerter(
    store: ClickHouseSettings, kafka: KafkaSettings, metrics: AlertMetrics | None = None
) -> BudgetWatcher | None:
    """The budget alerter's threads, each on a session of its own; None when USAGEMETER_ALERTS_ENABLED=false."""
    settings = AlertSettings()
    if not settings.enabled:
        return None
    return BudgetWatcher(connect(store), connect(store), settings, kafka, metrics=metrics).start()


def build_worker(
    kafka: KafkaSettings,
    settings: WorkerSettings,
    client: Client,
    alerter: BudgetWatcher | None = None,
    metrics: WorkerMetrics | None = None,
) -> Worker:
    """The real pipeline, logging each batch written and telling the alerter about it."""

    def flushed(result: WriteResult) -> None:
        _log_flush(result)
        if alerter is not None and result.inserted:
            alerter.flushed()

    return pipeline.build_worker(kafka, settings, client, on_flush=flushed, metrics=metrics)


def _log_flush(result: WriteResult) -> None:
    log.info(
        "batch written: %d inserted, %d dead-lettered, %d duplicates skipped%s",
        result.inserted,
        result.dead_lettered,
        result.duplicates,
        f", {result.triaged_blocks} blocks triaged" if result.triaged_blocks else "",
    )
