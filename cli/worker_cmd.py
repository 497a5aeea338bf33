"""``usagemeter migrate``, ``usagemeter worker`` and ``usagemeter serve``."""

from __future__ import annotations

import logging
import threading
from typing import Annotated

import typer
import uvicorn

from usagemeter.consumers import migrations, price_updates
from usagemeter.consumers.service import build_worker, prepare_store
from usagemeter.consumers.settings import ClickHouseSettings, KafkaSettings, PriceRefreshSettings, WorkerSettings
from usagemeter.consumers.store import connect
from usagemeter.query.http import create_app
from usagemeter.signals import stop_on_signals
from usagemeter.topics_cmd import default_specs, describe, ensure_topics

log = logging.getLogger("usagemeter.worker")

MaxRows = Annotated[
    int | None, typer.Option(help="Flush a batch at this many messages [env USAGEMETER_WORKER_MAX_BATCH_ROWS].")
]
MaxWait = Annotated[
    float | None,
    typer.Option(help="Flush a non-empty batch this old, seconds [env USAGEMETER_WORKER_MAX_BATCH_WAIT_S]."),
]


def _worker_settings(max_batch_rows: int | None, max_batch_wait_s: float | None) -> WorkerSettings:
    overrides = {"max_batch_rows": max_batch_rows, "max_batch_wait_s": max_batch_wait_s}
    return WorkerSettings.model_validate({k: v for k, v in overrides.items() if v is not None})


def migrate() -> None:
    """Apply the ClickHouse migrations that are not applied yet (safe to run at every start)."""
    applied = migrations.apply(connect(ClickHouseSettings()))
    typer.echo(f"applied: {', '.join(applied)}" if applied else "up to date")


def worker(max_batch_rows: MaxRows = None, max_batch_wait_s: MaxWait = None) -> None:
    """Consume usage events into ClickHouse until SIGTERM or Ctrl-C, then drain, commit and exit."""
    stop = stop_on_signals()  # first: a stop during start-up ends the command after the step it is in
    _log_to_stderr()
    settings = _worker_settings(max_batch_rows, max_batch_wait_s)
    kafka, store = KafkaSettings(), ClickHouseSettings()
    _ensure_topics(kafka)
    if stop.is_set():
        return
    client = prepare_store(store)
    if stop.is_set():
        return
    refresher = _price_refresher(store)
    try:
        build_worker(kafka, settings, client).run(stop)
    finally:
        if refresher:
            refresher.stop()


def serve(
    max_batch_rows: MaxRows = None,
    max_batch_wait_s: MaxWait = None,
    host: Annotated[str, typer.Option(envvar="USAGEMETER_API_HOST", help="Address the query API binds to.")] = (
        "127.0.0.1"
    ),
    port: Annotated[int, typer.Option(envvar="USAGEMETER_API_PORT", help="Port of the query API.")] = 8765,
) -> None:
    """Worker and query API in one process: the mode for the embedded engine, whose directory one process owns."""
    stop = stop_on_signals()  # first: a stop during start-up ends the command after the step it is in
    _log_to_stderr()
    settings = _worker_settings(max_batch_rows, max_batch_wait_s)
    kafka, store = KafkaSettings(), ClickHouseSettings()
    _ensure_topics(kafka)
    if stop.is_set():
        return
    client = prepare_store(store)
    if stop.is_set():
        return
    query_client = connect(store)  # its own session: a server refuses concurrent queries in one session
    refresher = _price_refresher(store)
    api = uvicorn.Server(uvicorn.Config(create_app(lambda: query_client), host=host, port=port, log_level="warning"))
    api_thread = threading.Thread(target=api.run, name="usagemeter-api", daemon=True)
    api_thread.start()
    try:
        build_worker(kafka, settings, client).run(stop)
    finally:
        api.should_exit = True
        api_thread.join(10)
        if refresher:
            refresher.stop()


def _ensure_topics(kafka: KafkaSettings) -> None:
    """The topic and its DLQ, made when missing unless the operator manages them (USAGEMETER_KAFKA_CREATE_TOPICS)."""
    if kafka.create_topics:
        for line in describe(ensure_topics(kafka, default_specs(kafka))):
            log.info("%s", line)


def _log_to_stderr() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")


def _price_refresher(store: ClickHouseSettings) -> price_updates.PriceRefresher | None:
    """The configured periodic price refresh (USAGEMETER_PRICES_REFRESH_URL), on its own session; None when off."""
    prices = PriceRefreshSettings()
    if not prices.refresh_url:
        return None
    return price_updates.start_refresher(connect(store), prices.refresh_url, prices.refresh_interval_s)
