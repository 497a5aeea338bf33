"""``usagemeter migrate``, ``usagemeter worker``, ``usagemeter serve`` and ``usagemeter alerter``."""

from __future__ import annotations

import contextlib
import logging
import socket
import threading
import time
from typing import Annotated

import typer
import uvicorn
from clickhouse_connect.driver.client import Client
from prometheus_client import CollectorRegistry

from usagemeter.api.app import create_app
from usagemeter.api.local_admin import ensure_local_admin, key_secret
from usagemeter.api.settings import ApiSettings
from usagemeter.budgets.metrics import AlertMetrics
from usagemeter.budgets.settings import AlertSettings
from usagemeter.cli.metrics_server import MetricsServer, process_registry
from usagemeter.cli.service import build_worker, prepare_store, start_alerter, watch_overrides
from usagemeter.cli.signals import stop_on_signals
from usagemeter.cli.supervisor import ApiThread, Supervisor
from usagemeter.cli.topics_cmd import default_specs, ensure_topics
from usagemeter.consumers import migrations
from usagemeter.consumers.metrics import WorkerMetrics
from usagemeter.consumers.settings import (
    ClickHouseSettings,
    KafkaSettings,
    MetricsSettings,
    PriceRefreshSettings,
    WorkerSettings,
)
from usagemeter.consumers.store import connect, wait_until_answering
from usagemeter.dashboard.dead_letters import dead_letter_reasons
from usagemeter.pricing import price_updates
from usagemeter.schemas.errors import PortInUse, StoreMissing, Unreachable

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


def migrate(
    check: Annotated[
        bool, typer.Option("--check", help="Apply nothing; exit 1 naming the migrations not applied yet.")
    ] = False,
) -> None:
    """Apply the ClickHouse migrations that are not applied yet (safe to run at every start)."""
    if check:
        missing = migrations.pending(connect(ClickHouseSettings(), create=False))
        if missing:
            typer.echo(f"not applied: {', '.join(missing)} (run `usagemeter migrate`)", err=True)
            raise typer.Exit(1)
        typer.echo("up to date")
        return
    store = ClickHouseSettings()
    applied = migrations.apply(connect(store), store.cluster)
    typer.echo(f"applied: {', '.join(applied)}" if applied else "up to date")


def worker(max_batch_rows: MaxRows = None, max_batch_wait_s: MaxWait = None) -> None:
    """Consume usage events into ClickHouse until SIGTERM or Ctrl-C, then drain, commit and exit."""
    stop = stop_on_signals()  # first: a stop during start-up ends the command after the step it is in
    _log_to_stderr()
    metrics_settings = MetricsSettings()
    started = _start(max_batch_rows, max_batch_wait_s, stop)
    if started is None:
        return
    kafka, store, settings, client = started
    registry = process_registry()
    with Supervisor(stop) as threads:
        threads.start("the metrics endpoint", lambda: MetricsServer.start(registry, metrics_settings))
        _start_background(threads, store)
        alerter = threads.start("the budget alerter", lambda: start_alerter(store, kafka, AlertMetrics(registry)))
        build_worker(kafka, settings, client, alerter, _worker_metrics(registry, kafka)).run(stop)


def alerter() -> None:
    """Budget alerts only, until SIGTERM or Ctrl-C: evaluate budgets every sweep, deliver alerts (no worker).

    For a ClickHouse server, where workers run with USAGEMETER_ALERTS_ENABLED=false and one alerter process
    serves them all. Without a worker in the process no flush wakes it: crossings are found by the sweep
    (USAGEMETER_ALERTS_SWEEP_INTERVAL_S), so alerts arrive up to one sweep later than beside a worker.
    """
    stop = stop_on_signals()
    _log_to_stderr()
    metrics_settings, kafka, store = MetricsSettings(), KafkaSettings(), ClickHouseSettings()
    settings = AlertSettings()
    if not settings.enabled:
        typer.echo("USAGEMETER_ALERTS_ENABLED is false: nothing to do", err=True)
        raise typer.Exit(2)
    wait_until_answering(store, WorkerSettings().start_timeout_s, stop)
    if stop.is_set():
        return
    prepare_store(store).close()  # the budget and alert tables, as every start makes sure
    registry = process_registry()
    with Supervisor(stop) as threads:
        threads.start("the metrics endpoint", lambda: MetricsServer.start(registry, metrics_settings))
        threads.start("the budget alerter", lambda: start_alerter(store, kafka, AlertMetrics(registry)))
        stop.wait()


def _worker_metrics(registry: CollectorRegistry, kafka: KafkaSettings) -> WorkerMetrics:
    return WorkerMetrics(registry, consumer_group=kafka.group_id)


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
    api_settings = ApiSettings(host=host)  # a bad USAGEMETER_API_* stops serve before anything starts
    metrics_settings = MetricsSettings()
    listener = _listen(host, port)  # before anything joins the consumer group
    with contextlib.closing(listener):
        started = _start(max_batch_rows, max_batch_wait_s, stop)
        if started is None:
            return
        kafka, store, settings, client = started
        if api_settings.local_admin:
            ensure_local_admin(client, key_secret(api_settings))
        query_client = connect(store)  # its own session: a server refuses concurrent queries in one session
        registry = process_registry()  # served by the API's GET /metrics, and USAGEMETER_METRICS_PORT if set
        with Supervisor(stop) as threads:
            threads.start("the metrics endpoint", lambda: MetricsServer.start(registry, metrics_settings))
            _start_background(threads, store)
            alert_metrics = AlertMetrics(registry)
            alerter = threads.start("the budget alerter", lambda: start_alerter(store, kafka, alert_metrics))
            changed = alerter.changed if alerter else None
            app = create_app(
                lambda: query_client,
                on_budgets_changed=changed,
                settings=api_settings,
                dead_letters=dead_letter_reasons(kafka),
                metrics_registry=registry,
            )
            api = uvicorn.Server(uvicorn.Config(app, host=host, port=port, log_level="warning"))
            threads.start("the query API", lambda: ApiThread(api, listener))
            build_worker(kafka, settings, client, alerter, _worker_metrics(registry, kafka)).run(stop)


def api(
    host: Annotated[str, typer.Option(envvar="USAGEMETER_API_HOST", help="Address the query API binds to.")] = (
        "127.0.0.1"
    ),
    port: Annotated[int, typer.Option(envvar="USAGEMETER_API_PORT", help="Port of the query API.")] = 8765,
) -> None:
    """The query API alone, until SIGTERM or Ctrl-C: for a ClickHouse server, beside `worker` processes.

    It never migrates (a migration changes the view chain under running workers: `usagemeter migrate` does
    it, once) and refuses to start on a store that is not up to date. GET /metrics serves its series.
    Budget changes made through it are seen by the alerter's next sweep, not at once as in `serve`.
    """
    stop = stop_on_signals()
    _log_to_stderr()
    api_settings = ApiSettings(host=host)
    listener = _listen(host, port)
    with contextlib.closing(listener):
        store = ClickHouseSettings()
        wait_until_answering(store, WorkerSettings().start_timeout_s, stop)
        if stop.is_set():
            return
        client = connect(store, create=False)
        missing = migrations.pending(client)
        if missing:
            raise StoreMissing(f"the store is not migrated ({', '.join(missing)} missing); run `usagemeter migrate`")
        if api_settings.local_admin:
            ensure_local_admin(client, key_secret(api_settings))
        registry = process_registry()
        app = create_app(lambda: client, settings=api_settings, metrics_registry=registry)
        server = uvicorn.Server(uvicorn.Config(app, host=host, port=port, log_level="warning"))
        with Supervisor(stop) as threads:
            threads.start("the query API", lambda: ApiThread(server, listener))
            log.info("query API on http://%s:%d", host, port)
            stop.wait()


Started = tuple[KafkaSettings, ClickHouseSettings, WorkerSettings, Client]


def _start(max_batch_rows: int | None, max_batch_wait_s: float | None, stop: threading.Event) -> Started | None:
    """Settings, then Kafka and ClickHouse answering (bounded waits), topics, the store migrated; None when a
    stop was requested meanwhile (each step finishes first)."""
    settings = _worker_settings(max_batch_rows, max_batch_wait_s)
    kafka, store = KafkaSettings(), ClickHouseSettings()
    _wait_for_kafka(kafka, settings.start_timeout_s, stop)
    wait_until_answering(store, settings.start_timeout_s, stop)
    if stop.is_set():
        return None
    _ensure_topics(kafka)
    if stop.is_set():
        return None
    client = prepare_store(store)
    if stop.is_set():
        return None
    return kafka, store, settings, client


def _listen(host: str, port: int) -> socket.socket:
    """The query API's socket, bound now: a taken port stops ``serve`` before it consumes anything."""
    listener = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        listener.bind((host, port))
    except OSError as exc:
        listener.close()
        raise PortInUse(
            f"the query API cannot listen on {host}:{port}: {exc.strerror} (another `usagemeter serve`?); "
            "choose another with --port or USAGEMETER_API_PORT"
        ) from exc
    return listener


def _wait_for_kafka(kafka: KafkaSettings, timeout_s: float, stop: threading.Event) -> None:
    """Some bootstrap server accepts a connection within ``timeout_s``. Plain TCP, so librdkafka logs no
    refusals meanwhile; a broker that answers TCP but not Kafka surfaces in the topics step."""
    servers = [server.strip() for server in kafka.bootstrap_servers.split(",") if server.strip()]
    deadline = time.monotonic() + timeout_s
    while not stop.is_set():
        for server in servers:
            host, _, port = server.rpartition(":")
            with contextlib.suppress(OSError, ValueError), socket.create_connection((host.strip("[]"), int(port)), 2):
                return
        if time.monotonic() >= deadline:
            raise Unreachable(
                f"Kafka does not answer at {kafka.bootstrap_servers} (USAGEMETER_KAFKA_BOOTSTRAP_SERVERS) after "
                f"{timeout_s:.0f} s; is the broker up? (`usagemeter kafka start` runs a local one)"
            )
        stop.wait(0.5)


def _ensure_topics(kafka: KafkaSettings) -> None:
    """The topic and its DLQ, made when missing unless the operator manages them (USAGEMETER_KAFKA_CREATE_TOPICS)."""
    if kafka.create_topics:
        for name, created in ensure_topics(kafka, default_specs(kafka)).items():
            log.log(logging.INFO if created else logging.DEBUG, "%s topic %s", "created" if created else "found", name)


def _log_to_stderr() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")


def _start_background(threads: Supervisor, store: ClickHouseSettings) -> None:
    """The threads beside every worker: the overrides watcher (which loads the file first), the price refresher."""
    threads.start("the overrides watcher", lambda: watch_overrides(store))
    threads.start("the price refresher", lambda: _price_refresher(store))


def _price_refresher(store: ClickHouseSettings) -> price_updates.PriceRefresher | None:
    """The configured periodic price refresh (USAGEMETER_PRICES_REFRESH_URL), on its own session; None when off."""
    prices = PriceRefreshSettings()
    if not prices.refresh_url:
        return None
    return price_updates.start_refresher(connect(store), prices.refresh_url, prices.refresh_interval_s)
