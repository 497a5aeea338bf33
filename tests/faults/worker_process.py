"""``usagemeter worker`` as a process of its own, configured by environment as an operator would, for kill tests."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path


class WorkerProcess:
    """``usagemeter worker`` as its own process, configured the way an operator would: by environment."""

    def __init__(self, env: dict[str, str], logs: Path) -> None:
        self._env = env
        self._logs = logs
        self.starts = 0

    def is_up(self) -> bool:
        """The latest worker has been given its partitions (it logs each assignment)."""
        return "assigned " in self._latest().read_text(errors="replace")

    def log_tail(self) -> str:
        return self._latest().read_text(errors="replace")[-3000:]

    def _latest(self) -> Path:
        return self._logs / f"worker-{self.starts}.log"

    def start(self) -> subprocess.Popen[bytes]:
        self.starts += 1
        with (self._logs / f"worker-{self.starts}.log").open("wb") as out:
            return subprocess.Popen(
                [sys.executable, "-c", "from usagemeter.cli.app import main; main()", "worker"],
                env=self._env,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
