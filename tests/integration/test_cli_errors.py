"""Operational errors end a command with one or two lines naming what to fix, and exit 2 (configuration)
or 1 (a failure); never a traceback, and nothing printed after the command has finished."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.fixtures.kafka import KafkaBroker
from usagemeter.local.kafka import create_topic

pytestmark = [pytest.mark.kafka, pytest.mark.clickhouse]

USAGEMETER = str(Path(sys.executable).parent / "usagemeter")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass(frozen=True)
class Running:
    """A ``usagemeter serve`` owning a store, and the environment that points at both."""

    env: dict[str, str]
    store: Path
    api_port: int
    workdir: Path


@pytest.fixture(scope="module")
def running(kafka_broker: KafkaBroker, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Running]:
    workdir = tmp_path_factory.mktemp("errors")
    store, api_port = workdir / "store", free_port()
    suffix = uuid.uuid4().hex[:8]
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("USAGEMETER_")},
        "USAGEMETER_KAFKA_BOOTSTRAP_SERVERS": kafka_broker.bootstrap_servers,
        "USAGEMETER_KAFKA_TOPIC": f"errors-{suffix}",
        "USAGEMETER_KAFKA_DLQ_TOPIC": f"errors-{suffix}.dlq",
        "USAGEMETER_KAFKA_GROUP_ID": f"errors-{suffix}",
        "USAGEMETER_CLICKHOUSE_DSN": f"chdb:///{store}",
        "USAGEMETER_API_URL": f"http://127.0.0.1:{api_port}",
        "USAGEMETER_WORKER_START_TIMEOUT_S": "2",
    }
    for topic in (env["USAGEMETER_KAFKA_TOPIC"], env["USAGEMETER_KAFKA_DLQ_TOPIC"]):
        create_topic(kafka_broker.bootstrap_servers, topic)
    serve = subprocess.Popen(
        [USAGEMETER, "serve", "--port", str(api_port)], env=env, cwd=workdir,
        stdout=subprocess.DEVNULL, stderr=(workdir / "serve.log").open("w"),
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            try:
                httpx.get(f"http://127.0.0.1:{api_port}/v1/usage", params={"client_id": "x"}, timeout=1)
                break
            except httpx.TransportError:
                assert serve.poll() is None, (workdir / "serve.log").read_text()[-2000:]
                time.sleep(0.3)
        yield Running(env, store, api_port, workdir)
    finally:
        serve.terminate()
        serve.wait(60)


def cli(running: Running, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [USAGEMETER, *args], env={**running.env, **env}, cwd=running.workdir,
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip


def taken_port(running: Running) -> dict[str, str]:
    return {"USAGEMETER_API_PORT": str(running.api_port)}


def other_store(running: Running) -> dict[str, str]:
    return {"USAGEMETER_CLICKHOUSE_DSN": f"chdb:///{running.workdir / uuid.uuid4().hex}"}


Case = tuple[list[str], Callable[[Running], dict[str, str]], int, str]
CASES = [
    pytest.param(["migrate"], lambda r: {"USAGEMETER_CLICKHOUSE_DSN": "mysql://x"}, 2, "USAGEMETER_CLICKHOUSE_DSN",
                 id="bad-dsn"),
    pytest.param(["migrate"], lambda r: {"USAGEMETER_CLICKHOUSE_DSN": f"http://127.0.0.1:{free_port()}"}, 1,
                 "no ClickHouse server answers", id="http-dsn-no-server"),
    pytest.param(["worker"], lambda r: {"USAGEMETER_WORKER_MAX_BATCH_ROWS": "-5"}, 2,
                 "USAGEMETER_WORKER_MAX_BATCH_ROWS=-5", id="negative-max-batch-rows"),
    pytest.param(["worker"], lambda r: {"USAGEMETER_KAFKA_BOOTSTRAP_SERVERS": f"127.0.0.1:{free_port()}",
                                        **other_store(r)}, 1, "USAGEMETER_KAFKA_BOOTSTRAP_SERVERS",
                 id="bad-bootstrap"),
    pytest.param(["serve", "--port", "0"], lambda r: {}, 1, "in use by process", id="second-serve-same-store"),
    pytest.param(["migrate"], lambda r: {}, 1, "in use by process", id="migrate-while-serve-runs"),
    pytest.param(["serve"], lambda r: {**taken_port(r), **other_store(r)}, 1, "USAGEMETER_API_PORT",
                 id="api-port-taken"),
    pytest.param(["dlq", "count"], lambda r: {"USAGEMETER_KAFKA_BOOTSTRAP_SERVERS": f"127.0.0.1:{free_port()}"}, 1,
                 "127.0.0.1:", id="dlq-count-kafka-down"),
    pytest.param(["serve"], lambda r: {"USAGEMETER_API_MAX_BODY_BYTES": "lots", **other_store(r)}, 2,
                 "USAGEMETER_API_MAX_BODY_BYTES=lots", id="bad-api-setting"),
    pytest.param(["serve"], lambda r: {"USAGEMETER_API_KEY_SECRET": "hunter2", **other_store(r)}, 2,
                 "USAGEMETER_API_KEY_SECRET=***: Value should have at least 16", id="short-secret-not-shown"),
]  # fmt: skip


@pytest.mark.parametrize(("args", "env", "code", "says"), CASES)
def test_error_is_one_line(
    running: Running, args: list[str], env: Callable[[Running], dict[str, str]], code: int, says: str
) -> None:
    done = cli(running, *args, **env(running))
    lines = done.stderr.strip().splitlines()
    assert done.returncode == code, done.stderr[-3000:]
    assert 1 <= len(lines) <= 2, done.stderr[-3000:]
    assert says in done.stderr and "Traceback" not in done.stderr
    assert "hunter2" not in done.stderr, "a secret's value is never printed"


def test_debug_shows_the_traceback(running: Running) -> None:
    done = cli(running, "--debug", "migrate", USAGEMETER_CLICKHOUSE_DSN="mysql://x")
    assert done.returncode != 0 and "Traceback" in done.stderr


def test_api_port_taken_stops_before_joining_the_group(running: Running) -> None:
    """The group keeps only the running serve: the refused one never joined."""
    done = cli(running, "serve", **taken_port(running), **other_store(running))
    assert done.returncode == 1
    assert "joined" not in done.stderr and "assigned" not in done.stderr, done.stderr


@pytest.mark.parametrize(
    "args",
    [
        pytest.param(["usage", "--client", "acme", "--direct"], id="usage"),
        pytest.param(["prices", "show", "gpt-4o", "--direct"], id="prices-show"),
        pytest.param(["reprice", "--since", "2026-01-01", "--dry-run", "--direct"], id="reprice-dry-run"),
    ],
)
def test_reading_commands_never_create_a_store(running: Running, args: list[str]) -> None:
    elsewhere = running.workdir / uuid.uuid4().hex
    done = cli(running, *args, USAGEMETER_CLICKHOUSE_DSN=f"chdb://{elsewhere}")
    assert done.returncode == 2, done.stderr
    assert f"no usagemeter store in {elsewhere}" in done.stderr and len(done.stderr.strip().splitlines()) <= 2
    assert not elsewhere.exists()
