"""The whole benchmark suite in one command, one benchmark after the other (never side by side: each
measures its own baseline in its own run, and two at once would share the two cores).

    .venv/bin/python -m benchmarks
    .venv/bin/python -m benchmarks --only engine_path,freshness

Each benchmark starts what it needs (a Kafka broker from the Maven jars on free ports, the embedded engine)
and stops it.
Their output goes to the terminal and to ``build/benchmarks/<UTC time>.txt``; BENCHMARKS.md opens with the
figures of such a run against their goals.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

SUITE: dict[str, str] = {
    "worker_throughput": "--events 400000 --rounds 3",
    "worker_throughput_sweep": "--events 200000 --rounds 2 --designs usagemeter --sweep-partitions 4,16,64 "
    "--sweep-batch-rows 20000,100000",
    "engine_path": "--events 100000 --rounds 5 --setting parallel_view_processing=0",
    "emit_latency": "--events 50000 --rounds 3",
    "dedup_memory": "--ids 86400000",
    "freshness": "--rate 10000 --seconds 60",
    "backlog_memory": "--events 5000000",
    "report_latency": "--events 10000000 --runs 300 --raw-runs 5",
    "budget_alerts": "--part all",
}
MODULE_OF = {"worker_throughput_sweep": "worker_throughput"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", default=",".join(SUITE), help=f"a subset of: {', '.join(SUITE)}")
    args = parser.parse_args()
    chosen = args.only.split(",")
    unknown = sorted(set(chosen) - set(SUITE))
    if unknown:
        parser.error(f"no benchmark {', '.join(unknown)}; choose from {', '.join(SUITE)}")
    out = Path("build/benchmarks") / f"{datetime.now(UTC):%Y-%m-%dT%H%M%SZ}.txt"
    out.parent.mkdir(parents=True, exist_ok=True)
    with out.open("w") as log:
        for name in chosen:
            command = [sys.executable, "-m", f"benchmarks.{MODULE_OF.get(name, name)}", *SUITE[name].split()]
            log.write(f"$ {' '.join(command[1:])}\n")
            print(f"== {name}: {' '.join(command[2:])}", flush=True)
            began = time.monotonic()
            done = subprocess.run(command, capture_output=True, text=True, check=False)
            summary = done.stdout if done.returncode == 0 else done.stdout + done.stderr[-3000:]
            log.write(summary + f"({name}: exit {done.returncode}, {time.monotonic() - began:.0f} s)\n\n")
            log.flush()
            print(summary, flush=True)
            if done.returncode:
                print(f"{name} failed (exit {done.returncode})", file=sys.stderr)
    print(f"written to {out}")


if __name__ == "__main__":
    main()
