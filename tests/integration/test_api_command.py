"""``usagemeter migrate --check`` and ``usagemeter api``, as the deployments run them: the check changes nothing and
says what is missing (an init container waits on it); the API alone refuses a store that is not migrated, serves
``/healthz`` and ``GET /metrics`` once it is, and stops cleanly on SIGTERM."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.integration.test_metrics_endpoints import free_port, parse, value

pytestmark = pytest.mark.clickhouse
CLI = [sys.executable, "-c", "from usagemeter.cli.app import main; main()"]


def run(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*CLI, *args], env=env, capture_output=True, text=True, timeout=300, check=False)


def test_check_then_migrate_then_serve_the_api_alone(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("USAGEMETER_")}
    env |= {"USAGEMETER_CLICKHOUSE_DSN": f"chdb:///{tmp_path / 'store'}", "USAGEMETER_API_KEY_SECRET": "x" * 32,
            "XDG_CONFIG_HOME": str(tmp_path / "config")}  # fmt: skip
    port = free_port()

    assert run(env, "migrate", "--check").returncode != 0, "no store yet: not up to date, and nothing made"
    refused = run(env, "api", "--port", str(port))
    assert refused.returncode != 0
    assert "usagemeter migrate" in refused.stderr, refused.stderr
    assert run(env, "migrate").returncode == 0
    checked = run(env, "migrate", "--check")
    assert (checked.returncode, checked.stdout.strip()) == (0, "up to date"), checked.stderr

    log = tmp_path / "api.log"
    with log.open("wb") as out:
        api = subprocess.Popen([*CLI, "api", "--port", str(port)], env=env, stdout=out, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 60
        while True:
            assert api.poll() is None, log.read_text()[-2000:]
            try:
                health = httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2)
                break
            except httpx.TransportError:
                assert time.monotonic() < deadline, log.read_text()[-2000:]
                time.sleep(0.2)
        assert health.status_code == 200
        scraped = parse(httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text)
        assert value(scraped, "usagemeter_api_requests_total", route="/healthz", method="GET", status="200") == 1
        assert not any(name.startswith("usagemeter_worker_") for name, _ in scraped), "no worker in this process"
    finally:
        api.send_signal(signal.SIGTERM)
        code = api.wait(60)
    assert code == 0, log.read_text()[-2000:]
