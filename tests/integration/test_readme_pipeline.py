"""The README's "Running the pipeline" commands, run exactly as written, on a fresh broker and store.

The commands are parsed out of the section's bash block, so the test follows the README: a command
added there runs here. Only the environment is changed (ports, the store), to stay off 9092 and 8765.
"""

from __future__ import annotations

import json
import logging
import os
import re
import shlex
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from usagemeter.producers import UsageEmitter

pytestmark = [pytest.mark.kafka, pytest.mark.clickhouse]

ROOT = Path(__file__).resolve().parents[2]
LONG_RUNNING = {"serve", "worker"}


def readme_commands() -> list[str]:
    """The lines of the bash block of the "Running the pipeline" section, comments removed."""
    text = (ROOT / "README.md").read_text()
    section = text.split("## Running the pipeline", 1)[1].split("\n## ", 1)[0]
    block = re.search(r"```bash\n(.*?)```", section, re.DOTALL)
    assert block, "the section has no bash block"
    lines = [shlex.split(line, comments=True) for line in block.group(1).splitlines()]
    return [shlex.join(words) for words in lines if words]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
def workdir(tmp_path: Path) -> Iterator[tuple[Path, dict[str, str]]]:
    """A fresh directory with ``.venv`` pointing at the project's, and an environment of free ports."""
    (tmp_path / ".venv").symlink_to(ROOT / ".venv")
    kafka_port, api_port = free_port(), free_port()
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("USAGEMETER_")},
        "USAGEMETER_LOCAL_KAFKA_PORT": str(kafka_port),
        "USAGEMETER_LOCAL_KAFKA_CONTROLLER_PORT": str(free_port()),
        "USAGEMETER_KAFKA_BOOTSTRAP_SERVERS": f"127.0.0.1:{kafka_port}",
        "USAGEMETER_CLICKHOUSE_DSN": f"chdb:///{tmp_path / 'store'}",
        "USAGEMETER_API_PORT": str(api_port),
        "USAGEMETER_API_URL": f"http://127.0.0.1:{api_port}",
    }
    if "USAGEMETER_HOME" in os.environ:  # the shared jar cache
        env["USAGEMETER_HOME"] = os.environ["USAGEMETER_HOME"]
    try:
        yield tmp_path, env
    finally:
        subprocess.run([".venv/bin/usagemeter", "kafka", "stop"], cwd=tmp_path, env=env, check=False, timeout=60)


def run(command: str, cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(
        shlex.split(command), cwd=cwd, env=env, capture_output=True, text=True, timeout=180, check=False
    )
    assert done.returncode == 0, f"{command}: exit {done.returncode}\n{done.stdout}\n{done.stderr}"
    return done


def wait_for_usage(cwd: Path, env: dict[str, str], requests: int, timeout_s: float = 90) -> None:
    deadline = time.monotonic() + timeout_s
    seen = None
    while time.monotonic() < deadline:
        done = subprocess.run(
            [".venv/bin/usagemeter", "usage", "--client", "acme", "--format", "json"],
            cwd=cwd,
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        if done.returncode == 0:
            seen = json.loads(done.stdout)["total_requests"]
            if seen == requests:
                return
        time.sleep(0.5)
    pytest.fail(f"usage shows {seen} requests of acme, expected {requests}")


def test_readme_running_the_pipeline(workdir: tuple[Path, dict[str, str]]) -> None:
    cwd, env = workdir
    commands = readme_commands()
    assert any(shlex.split(c)[1] in LONG_RUNNING for c in commands), commands
    bootstrap, quiet = env["USAGEMETER_KAFKA_BOOTSTRAP_SERVERS"], {"logger": logging.getLogger("test.emitter")}
    servers: list[subprocess.Popen[str]] = []
    outputs: dict[str, str] = {}
    try:
        for command in commands:
            if shlex.split(command)[1] in LONG_RUNNING:
                servers.append(
                    subprocess.Popen(
                        shlex.split(command),
                        cwd=cwd,
                        env=env,
                        stdout=subprocess.PIPE,
                        stderr=subprocess.STDOUT,
                        text=True,
                    )
                )
                with UsageEmitter(bootstrap, spool_dir=None, kafka_config=quiet) as meter:
                    for _ in range(4):
                        meter.emit(
                            "gpt-4o-mini",
                            provider="openai",
                            client_id="acme",
                            user_id="alice",
                            input_tokens=1000,
                            output_tokens=200,
                        )
                    meter.emit("gpt-4o", provider="openai", client_id="acme", user_id="bob", input_tokens=10)
                    meter.emit("gpt-4o-mini", client_id="", input_tokens=10)  # a dead letter: serve goes on
                wait_for_usage(cwd, env, 5)
                continue
            outputs[command] = run(command, cwd, env).stdout
        for server in servers:
            assert server.poll() is None, f"a long-running command ended: {server.communicate()[0][-3000:]}"
    finally:
        for server in servers:
            if server.poll() is None:
                server.send_signal(signal.SIGTERM)
            try:
                log, _ = server.communicate(timeout=60)
            except subprocess.TimeoutExpired:
                server.kill()
                log, _ = server.communicate()
            assert server.returncode == 0, log[-3000:]
    usage = {cmd: out for cmd, out in outputs.items() if shlex.split(cmd)[1] == "usage"}
    reports = [json.loads(out) for cmd, out in usage.items() if "--format json" in cmd]
    tables = [out for cmd, out in usage.items() if "--format json" not in cmd]
    assert reports and tables, outputs
    for report in reports:  # the README's JSON query is alice's
        assert report["client_id"] == "acme" and report["total_requests"] == (4 if report["user_id"] else 5)
    for table in tables:
        assert "gpt-4o-mini" in table and "acme" in table
