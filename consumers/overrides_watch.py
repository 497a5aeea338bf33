"""Reloads the overrides file without a restart: the worker checks its fingerprint every few seconds.

A fingerprint is the file's size, modification time and SHA-256, so an editor that rewrites the file
with the same mtime still triggers a load, and a touch without a change does not. A file that does not
validate is logged and skipped: the engine keeps the last good overrides until the file is fixed.
"""

from __future__ import annotations

import hashlib
import logging
import threading
from pathlib import Path

from clickhouse_connect.driver.client import Client

from usagemeter.consumers import overrides

log = logging.getLogger("usagemeter.overrides")


def fingerprint(path: Path) -> tuple[int, int, str] | None:
    """(size, mtime in ns, sha256) of the file; None when it cannot be read."""
    try:
        stat = path.stat()
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
    except OSError:
        return None
    return stat.st_size, stat.st_mtime_ns, digest


class OverridesWatcher:
    """Loads ``path`` into the store when its fingerprint changes; ``check`` is one look, ``run`` loops."""

    def __init__(self, path: Path, client: Client) -> None:
        self._path = path
        self._client = client
        self._seen: tuple[int, int, str] | None = None

    def check(self) -> bool:
        """Loads the file if it changed since the last look; True when it loaded."""
        current = fingerprint(self._path)
        if current is None or current == self._seen:
            return False
        self._seen = current
        try:
            resolved = overrides.load(self._client, overrides.read(self._path))
        except overrides.OverridesError as exc:
            log.error("overrides file not loaded, the previous overrides stay in force: %s", exc)
            return False
        log.info(
            "overrides loaded from %s: %d price rows, %d contract rows",
            self._path,
            len(resolved.prices),
            len(resolved.contracts),
        )
        return True

    def run(self, stop: threading.Event, interval_s: float) -> None:
        while not stop.is_set():
            self.check()
            stop.wait(interval_s)
