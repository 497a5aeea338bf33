"""``usagemeter kafka start|stop|status``: the local single-node broker for development and tests."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from usagemeter.local.kafka import DEFAULT_CONTROLLER_PORT, DEFAULT_DATA_DIR, DEFAULT_PORT, LocalKafka
from usagemeter.schemas.errors import LocalKafkaError

app = typer.Typer(
    help="Run a local single-node Kafka broker (KRaft, 127.0.0.1) from the Apache Kafka jars; no Docker needed.",
    no_args_is_help=True,
)

DataDir = Annotated[
    Path,
    typer.Option(
        envvar="USAGEMETER_LOCAL_KAFKA_DIR", help="Where the broker keeps its config, data, logs and pid file."
    ),
]
Port = Annotated[
    int,
    typer.Option(envvar="USAGEMETER_LOCAL_KAFKA_PORT", help="The PLAINTEXT listener clients connect to, on 127.0.0.1."),
]
ControllerPort = Annotated[
    int,
    typer.Option(envvar="USAGEMETER_LOCAL_KAFKA_CONTROLLER_PORT", help="The KRaft controller listener, on 127.0.0.1."),
]


def _broker(data_dir: Path, port: int, controller_port: int) -> LocalKafka:
    return LocalKafka(data_dir, port=port, controller_port=controller_port)


@app.command()
def start(
    data_dir: DataDir = DEFAULT_DATA_DIR,
    port: Port = DEFAULT_PORT,
    controller_port: ControllerPort = DEFAULT_CONTROLLER_PORT,
) -> None:
    """Start the broker (fetching its jars the first time) and wait until it answers."""
    kafka = _broker(data_dir, port, controller_port)
    try:
        result = kafka.start()
    except LocalKafkaError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from exc
    if result.already_running:
        typer.echo(f"Kafka already running (pid {result.pid}) on {result.bootstrap_servers}")
    else:
        typer.echo(
            f"Kafka started (pid {result.pid}) on {result.bootstrap_servers}, "
            f"answering after {result.seconds_to_answer:.1f} s; log: {kafka.log_file}"
        )


@app.command()
def stop(
    data_dir: DataDir = DEFAULT_DATA_DIR,
    port: Port = DEFAULT_PORT,
    controller_port: ControllerPort = DEFAULT_CONTROLLER_PORT,
) -> None:
    """Stop the broker of this data dir (SIGTERM, then SIGKILL after 20 s). Data is kept."""
    if _broker(data_dir, port, controller_port).stop():
        typer.echo("Kafka stopped")
    else:
        typer.echo("Kafka was not running")


@app.command()
def status(
    data_dir: DataDir = DEFAULT_DATA_DIR,
    port: Port = DEFAULT_PORT,
    controller_port: ControllerPort = DEFAULT_CONTROLLER_PORT,
) -> None:
    """Say whether the broker runs and answers; exit 1 when it does not answer."""
    state = _broker(data_dir, port, controller_port).status()
    if not state.running:
        typer.echo(f"Kafka not running (data dir {state.data_dir})")
        raise typer.Exit(1)
    answer = "answering" if state.answering else "NOT answering"
    typer.echo(f"Kafka running (pid {state.pid}), {answer} on {state.bootstrap_servers}; log: {state.log_file}")
    if not state.answering:
        raise typer.Exit(1)
