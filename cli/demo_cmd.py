"""``usagemeter demo``: the whole pipeline on one machine, end to end, in one command.

Starts the local Kafka broker, creates the topics, opens the embedded ClickHouse, runs a worker,
emits a realistic mix of events from several simulated services, clients, users and models (and a
few invalid ones, to show the dead-letter topic), waits until all of it is aggregated, and prints
each client's usage report read from the aggregate views.
"""

from __future__ import annotations

import random
import threading
import time
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from usagemeter.cli.service import build_worker, prepare_store, watch_overrides
from usagemeter.cli.supervisor import Supervisor
from usagemeter.cli.usage_cmd import render
from usagemeter.consumers.settings import KAFKA_LOG, ClickHouseSettings, KafkaSettings, WorkerSettings
from usagemeter.consumers.store import connect
from usagemeter.local.kafka import LocalKafka, create_topic
from usagemeter.producers import UsageEmitter
from usagemeter.producers.simulation import CLIENTS, simulated_calls
from usagemeter.query import get_usage

DASHBOARD_URL = "http://127.0.0.1:8765/dashboard?range=7d"
ADMIN_KEY_HINT = "${XDG_CONFIG_HOME:-$HOME/.config}/usagemeter/admin.key"
_INVALID = (
    {"model": "gpt-4o-mini", "client_id": "", "input_tokens": 10},
    {"model": "gpt-4o-mini", "client_id": "acme", "input_tokens": -3},
    {"model": "gpt-4o-mini", "client_id": "acme", "input_tokens": 10, "status": "exploded"},
)


def demo(
    events: Annotated[int, typer.Option(help="How many usage events to emit.")] = 20_000,
    data_dir: Annotated[Path, typer.Option(help="Where Kafka and ClickHouse keep their data.")] = Path(".var/demo"),
    keep_kafka: Annotated[bool, typer.Option(help="Leave the broker running afterwards.")] = False,
) -> None:
    """Run the pipeline end to end locally and print the usage report."""
    console = Console()
    started = time.monotonic()
    kafka = LocalKafka(data_dir=data_dir / "kafka", port=19092, controller_port=19093)
    result = kafka.start()
    console.print(f"[bold]Kafka[/] {kafka.bootstrap_servers} answering after {result.seconds_to_answer:.1f} s")
    run = int(time.time())  # fresh topics per run: the demo shows one run's numbers
    topic, dlq = f"usage.events.demo{run}", f"usage.events.demo{run}.dlq"
    create_topic(kafka.bootstrap_servers, topic, partitions=4)
    create_topic(kafka.bootstrap_servers, dlq, partitions=1)
    kafka_settings = KafkaSettings(bootstrap_servers=kafka.bootstrap_servers, topic=topic, dlq_topic=dlq)
    ch_settings = ClickHouseSettings(dsn=f"chdb:///{(data_dir / 'chdb').absolute()}", database="demo")
    try:
        fresh = connect(ch_settings)
        fresh.command("DROP DATABASE IF EXISTS demo SYNC")
        fresh.close()  # prepare_store reopens the engine after migrating: no other connection may hold it
        client = prepare_store(ch_settings)
        console.print(f"[bold]ClickHouse[/] embedded at {ch_settings.dsn}, database {ch_settings.database}")
        stop = threading.Event()
        with Supervisor(stop) as threads:
            threads.start("the overrides watcher", lambda: watch_overrides(ch_settings))
            worker = build_worker(kafka_settings, WorkerSettings(max_batch_rows=20_000, max_batch_wait_s=0.5), client)
            thread = threading.Thread(target=worker.run, args=(stop,), name="worker")
            thread.start()
            emit_started = time.monotonic()
            with UsageEmitter(kafka.bootstrap_servers, topic=topic, kafka_config={"logger": KAFKA_LOG}) as meter:
                for call in simulated_calls(random.Random(), events):
                    meter.emit(**call)
                for bad in _INVALID:
                    meter.emit(**bad)  # type: ignore[arg-type]
            console.print(
                f"[bold]Emitted[/] {events + len(_INVALID)} events in {time.monotonic() - emit_started:.1f} s"
            )
            expected = events + len(_INVALID)
            deadline = time.monotonic() + 300
            while worker.totals["inserted"] + worker.totals["dead_lettered"] < expected and time.monotonic() < deadline:
                time.sleep(0.2)
            stop.set()
            thread.join(60)
            console.print(
                f"[bold]Worker[/] inserted {worker.totals['inserted']}, dead-lettered {worker.totals['dead_lettered']} "
                f"in {worker.totals['batches']} batches"
            )
        for client_id in CLIENTS:
            console.print(render(get_usage(client, client_id, period="month"), "model"))
        client.close()  # the store is serve's to open next
    finally:
        if not keep_kafka:
            kafka.stop()
    _print_dashboard(console, ch_settings, kafka_settings if keep_kafka else None)
    console.print(f"[bold]Done[/] in {time.monotonic() - started:.1f} s")


def _print_dashboard(console: Console, store: ClickHouseSettings, kafka: KafkaSettings | None) -> None:
    """How to see this run on the dashboard: ``serve`` over the demo's store (the demo itself starts no API).

    With ``--keep-kafka`` the demo's broker and topics are still there, so serve reads them (and shows the
    demo's dead letters); otherwise serve needs the local broker of ``usagemeter kafka start``.
    """
    env = f"USAGEMETER_CLICKHOUSE_DSN={store.dsn} USAGEMETER_CLICKHOUSE_DATABASE={store.database}"
    if kafka is None:
        command = f".venv/bin/usagemeter kafka start && {env} .venv/bin/usagemeter serve"
    else:
        topics = f"USAGEMETER_KAFKA_TOPIC={kafka.topic} USAGEMETER_KAFKA_DLQ_TOPIC={kafka.dlq_topic}"
        command = (
            f"USAGEMETER_KAFKA_BOOTSTRAP_SERVERS={kafka.bootstrap_servers} {topics} {env} .venv/bin/usagemeter serve"
        )
    console.print(
        f"[bold]Dashboard[/] {DASHBOARD_URL} once serve runs over this store:\n  {command}\n"
        f"  then open the URL and sign in with the key in {ADMIN_KEY_HINT}",
        soft_wrap=True,
    )
