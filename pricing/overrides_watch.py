"""Reloads the overrides file without a restart: the worker checks its fingerprint every few seconds.

A fingerprint is the file's size, modification time and SHA-256, so an editor that rewrites the file
with the same mtime still triggers a load, and a touch without a change does not. A file that cannot be
read or does not validate is logged once per change of the file and skipped: the engine keeps the last
good overrides until the file is fixed. A failure of the store is logged and the same file is tried
again at the next look, as that kind of failure passes; the thread itself ends only when told to.
"""

from __future__ import annotations

import hashlib
import logging
import threading
from pathlib import Path

from clickhouse_connect.driver.client import Client

from usagemeter.pricing import overrides
from usagemeter.schemas.errors import OverridesError

log = logging.getLogger("usagemeter.overrides")

Fingerprint = tuple[int, int, str]


def fingerprint(path: Path) -> Fingerprint | None:
    """(size, mtime in ns, sha256) of the file; None when it cannot be read."""
    try:
        return _read(path)[0]
    except OSError:
        return None


def _read(path: Path) -> tuple[Fingerprint, bytes]:
    """The fingerprint and the very bytes it is of, so what is loaded is what was fingerprinted."""
    stat = path.stat()
    content = path.read_bytes()
    return (stat.st_size, stat.st_mtime_ns, hashlib.sha256(content).hexdigest()), content


class OverridesWatcher:
    """Loads ``path`` into the store when its fingerprint changes; ``check`` is one look, ``run`` loops."""

    def __init__(self, path: Path, client: Client) -> None:
        self._path = path
        self._client = client
        self._seen: Fingerprint | str | None = None
        """The file last loaded or refused (its fingerprint), or why it could not be read."""
        self._repair = True
        """Whether a half-written version may be in the store: at start, and after a failed load."""
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()

    def check(self) -> bool:
        """Loads the file if it changed since the last look; True when it loaded.

        A bad file is logged here, once; a failure of the store raises, and the next call tries again.
        """
        if self._repair:
            overrides.repair(self._client)
            self._repair = False
        try:
            current, content = _read(self._path)
        except OSError as exc:
            self._refuse(str(exc), f"cannot read {self._path}: {exc}")
            return False
        if current == self._seen:
            return False
        try:
            parsed = overrides.parse(content, source=str(self._path))
        except Exception as exc:  # the content is at fault whatever the error: wait for a change
            self._refuse(current, _one_line(exc))
            return False
        try:
            resolved = overrides.load(self._client, parsed)
        except OverridesError as exc:
            self._refuse(current, _one_line(exc))
            return False
        except Exception:
            self._repair = True
            raise
        self._seen = current
        log.info(
            "overrides loaded from %s: %d price rows, %d contract rows",
            self._path,
            len(resolved.prices),
            len(resolved.contracts),
        )
        return True

    def _refuse(self, seen: Fingerprint | str, why: str) -> None:
        if seen != self._seen:
            log.error("overrides file not loaded, the previous overrides stay in force: %s", why)
        self._seen = seen

    def run(self, stop: threading.Event, interval_s: float) -> None:
        """``check`` every ``interval_s`` until ``stop`` is set; a failed look is logged, never fatal."""
        if interval_s <= 0:
            raise ValueError("interval_s must be positive")  # else the loop would spin
        while not stop.is_set():
            try:
                self.check()
            except Exception as exc:
                log.error(
                    "overrides not loaded, the previous overrides stay in force; next try in %g s: %s",
                    interval_s,
                    _one_line(exc),
                    exc_info=log.isEnabledFor(logging.DEBUG),
                )
            stop.wait(interval_s)

    def start(self, interval_s: float) -> None:
        """``run`` in a daemon thread of its own, until ``stop``."""
        self._thread = threading.Thread(
            target=self.run, args=(self._stop, interval_s), name="usagemeter-overrides", daemon=True
        )
        self._thread.start()

    def stop(self, timeout_s: float = 10.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout_s)

    @property
    def alive(self) -> bool:
        return self._thread is not None and self._thread.is_alive()


def _one_line(exc: BaseException) -> str:
    """``Type: message`` on one line (an ``OverridesError`` lists one bad entry per line)."""
    head, *rest = [line.strip() for line in str(exc).splitlines() if line.strip()] or [""]
    return " ".join([f"{type(exc).__name__}: {head}", "; ".join(rest)]).strip()
