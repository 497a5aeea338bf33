"""Where the worker's time goes: py-spy samples every thread of ``benchmarks.worker_throughput`` running
the real worker alone, and the folded stacks (the text form of a flame graph: one line per stack, frames
joined by ``;``, then its sample count; feed it to flamegraph.pl or speedscope for a picture) are written
to ``benchmarks/profiles/worker.folded.txt``, with a summary by stage printed and written beside it.

    .venv/bin/python -m benchmarks.profile_worker --events 400000
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path

OUT = Path(__file__).parent / "profiles"
STAGES = (  # the first whose marker is in a stack names it; the order matters (an insert runs inside flush)
    ("engine insert (chDB: parse, validate, price, views)", "raw_insert"),
    ("consuming thread waits for the insert in flight (next batch full)", "_wait_paused"),
    ("ledger and recovery queries", "ledger.py"),
    ("cross-batch dedup (id_window.py)", "id_window.py"),
    ("batch cutting and dedup by key (batch.py, dedup.py)", ("batch.py", "dedup.py")),
    ("Avro block assembly (avro_block.py)", "avro_block.py"),
    ("Kafka commit", "commit ("),
    ("dead letters", "dead_letters.py"),
)


def stage_of(stack: str) -> str:
    if stack.rpartition(";")[2].startswith("Worker._poll_once"):  # inside consume(), in librdkafka
        return "Kafka consume (librdkafka; waiting for messages included)"
    for name, markers in STAGES:
        if any(marker in stack for marker in ((markers,) if isinstance(markers, str) else markers)):
            return name
    if "worker.py" in stack:
        return "worker loop, other"
    return "benchmark harness and idle threads"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=400_000)
    args = parser.parse_args()
    spy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    OUT.mkdir(exist_ok=True)
    folded = OUT / "worker.folded.txt"
    bench = [sys.executable, "-m", "benchmarks.worker_throughput", "--events", str(args.events), "--rounds", "1",
             "--designs", "usagemeter"]  # fmt: skip
    subprocess.run([spy, "record", "--threads", "--idle", "--rate", "100", "--format", "raw", "--output",
                    str(folded), "--", *bench], check=True)  # fmt: skip
    samples: Counter[str] = Counter()
    for line in folded.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if "worker.py" in stack or "raw_insert" in stack:
            samples[stage_of(stack)] += int(count)
    total = sum(samples.values())
    lines = [f"worker threads, {total} samples at 100 Hz ({args.events:,} events), by stage:"]
    lines += [f"{count / total:6.1%}  {name}" for name, count in samples.most_common()]
    (OUT / "worker.summary.txt").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
