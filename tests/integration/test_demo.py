"""The README's first command, ``usagemeter demo`` (what ``deploy/local/demo.sh`` runs), end to end.

It must finish with every emitted event inserted or dead-lettered, and print nothing once it has said
"Done" (librdkafka clients left alive used to report the stopped broker on the terminal afterwards).
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = [pytest.mark.kafka, pytest.mark.clickhouse]


def test_the_demo_runs_end_to_end_and_prints_nothing_after_it_is_done(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-c", "from usagemeter.cli.app import main; main()", "demo", "--events", "1000",
         "--data-dir", str(tmp_path / "demo")],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        timeout=300,
        check=False,
    )  # fmt: skip
    lines = [line for line in done.stdout.splitlines() if line.strip()]
    assert done.returncode == 0, done.stdout[-3000:]
    assert re.fullmatch(r"Done in [0-9.]+ s", lines[-1]), lines[-5:]
    worker = next(line for line in lines if line.startswith("Worker inserted"))
    assert worker.startswith("Worker inserted 1000, dead-lettered 3"), worker
