"""Worker memory while it drains a backlog: ``usagemeter worker`` as its own process, configured by
environment as an operator runs it, started on a topic that already holds ``--events`` events. Its RSS
(``/proc/<pid>/status``) is sampled every 0.2 s until its metrics endpoint counts every event inserted.
The baseline, measured first in the same run, is the same worker idle on an empty topic.

    .venv/bin/python -m benchmarks.backlog_memory --events 5000000
"""

from __future__ import annotations

import argparse
import os
import re
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from benchmarks.worker_throughput import topic_of
from usagemeter.local.kafka import LocalKafka, create_topic

_INSERTED = re.compile(r"^usagemeter_worker_inserted_total (\S+)$", re.MULTILINE)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _rss_mib(pid: int) -> float:
    status = Path(f"/proc/{pid}/status").read_text()
    return int(re.search(r"VmRSS:\s+(\d+) kB", status).group(1)) / 1024  # type: ignore[union-attr]


def _inserted(port: int) -> int | None:
    """Events the worker has inserted, by its metrics endpoint; None while it does not answer yet."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2) as answer:
            found = _INSERTED.search(answer.read().decode())
    except OSError:
        return None
    return int(float(found.group(1))) if found else 0


def drain(env: dict[str, str], topic: str, events: int, logs: Path) -> tuple[float, float, float]:
    """(RSS once it answers, peak RSS, seconds to insert ``events``) of a worker started on ``topic``."""
    port = _free_port()
    env = {**env, "USAGEMETER_KAFKA_TOPIC": topic, "USAGEMETER_KAFKA_DLQ_TOPIC": f"{topic}.dlq",
           "USAGEMETER_KAFKA_GROUP_ID": f"memory-{topic}", "USAGEMETER_METRICS_PORT": str(port)}  # fmt: skip
    with (logs / f"{topic}.log").open("wb") as out:
        worker = subprocess.Popen([sys.executable, "-m", "usagemeter.cli", "worker"], env=env, stdout=out,
                                  stderr=subprocess.STDOUT)  # fmt: skip
    try:
        while _inserted(port) is None:
            assert worker.poll() is None, (logs / f"{topic}.log").read_text()[-2000:]
            time.sleep(0.2)
        started = time.perf_counter()
        at_start = peak = _rss_mib(worker.pid)
        while (_inserted(port) or 0) < events:
            assert worker.poll() is None, (logs / f"{topic}.log").read_text()[-2000:]
            peak = max(peak, _rss_mib(worker.pid))
            time.sleep(0.2)
            if not events:
                time.sleep(10)  # idle: what it holds with nothing to do
                peak = max(peak, _rss_mib(worker.pid))
                break
        return at_start, peak, time.perf_counter() - started
    finally:
        worker.terminate()
        worker.wait(120)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=5_000_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        kafka = LocalKafka(data_dir=Path(tmp) / "kafka", port=0, controller_port=0)
        kafka.start()
        try:
            bootstrap = kafka.bootstrap_servers
            env = {**os.environ, "USAGEMETER_CLICKHOUSE_DSN": f"chdb:///{tmp}/chdb",
                   "USAGEMETER_KAFKA_BOOTSTRAP_SERVERS": bootstrap}  # fmt: skip
            migrate = [sys.executable, "-m", "usagemeter.cli", "migrate"]
            subprocess.run(migrate, env=env, check=True, capture_output=True)
            create_topic(bootstrap, "bench.idle", partitions=4)
            create_topic(bootstrap, "bench.idle.dlq", partitions=1)
            idle_start, idle_peak, _ = drain(env, "bench.idle", 0, Path(tmp))
            backlog = topic_of(bootstrap, 4, args.events)
            start, peak, seconds = drain(env, backlog, args.events, Path(tmp))
        finally:
            kafka.stop()
    print(f"idle worker: RSS {idle_start:.0f} MiB at start, peak {idle_peak:.0f} MiB over 10 s")
    print(f"draining {args.events:,} events: RSS {start:.0f} MiB at start, peak {peak:.0f} MiB, "
          f"{seconds:.0f} s ({args.events / seconds:,.0f} events/s)")  # fmt: skip
    print(f"peak while draining / idle = {peak / idle_peak:.2f}x")


if __name__ == "__main__":
    main()
