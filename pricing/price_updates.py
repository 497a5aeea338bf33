"""Newer genai-prices data without a release: a snapshot file or URL becomes a new price book version.

genai-prices publishes its whole data set as one JSON array of providers (``DEFAULT_SNAPSHOT_URL``, the
file its own ``UpdatePrices`` fetches); ``read_snapshot`` validates it with genai-prices' own pydantic
schema, then builds the book from it, and only a snapshot that survives both is written
(``pricebook.load``: a new ``book_version``, then the dictionaries reload). A bad snapshot raises
``SnapshotRejected`` before anything is written, so the book in force stays in force.

Nothing here fetches on its own: ``PriceRefresher`` runs only where a refresh URL is configured
(``USAGEMETER_PRICES_REFRESH_URL``; off by default).
"""

from __future__ import annotations

import dataclasses
import json
import logging
import threading
from datetime import date, datetime, time
from decimal import Decimal
from pathlib import Path
from typing import Any, Final

import httpx
import pydantic
from clickhouse_connect.driver.client import Client
from genai_prices.data_snapshot import DataSnapshot
from genai_prices.types import ModelPrice, _providers_from_raw

from usagemeter.pricing import pricebook
from usagemeter.schemas.errors import SnapshotRejected

DEFAULT_SNAPSHOT_URL: Final = (
    "https://raw.githubusercontent.com/pydantic/genai-prices/refs/heads/main/prices/new_data/v2/data.json"
)
MAX_SNAPSHOT_BYTES: Final = 64 << 20

log = logging.getLogger("usagemeter.prices")


def read_snapshot(content: bytes, *, source: str = "snapshot") -> DataSnapshot:
    """The validated snapshot in ``content``; ``SnapshotRejected`` says what is wrong with it."""
    try:
        raw = json.loads(content)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise SnapshotRejected(f"{source} is not JSON: {exc}") from exc
    except RecursionError as exc:  # json recurses into nested arrays and objects
        raise SnapshotRejected(f"{source} is not JSON this book can read: arrays or objects nested too deeply") from exc
    if not isinstance(raw, list) or not raw:
        raise SnapshotRejected(f"{source} must be a non-empty JSON array of providers (genai-prices' data.json)")
    try:
        providers = _providers_from_raw(raw)
    except (pydantic.ValidationError, TypeError, ValueError, RecursionError) as exc:
        raise SnapshotRejected(f"{source} is not valid genai-prices data: {_first_errors(exc)}") from exc
    if not any(provider.models for provider in providers):
        raise SnapshotRejected(f"{source} has no models")
    snapshot = DataSnapshot(providers=providers, from_auto_update=True)
    try:
        pricebook.build(snapshot)
    except Exception as exc:  # the book's own rules (price kinds, periods): refuse rather than half-load
        raise SnapshotRejected(f"{source} cannot be turned into a price book: {exc}") from exc
    return snapshot


def read_file(path: Path) -> DataSnapshot:
    try:
        content = path.read_bytes()
    except OSError as exc:
        raise SnapshotRejected(f"cannot read {path}: {exc}") from exc
    return read_snapshot(content, source=str(path))


def fetch(url: str, *, timeout_s: float = 30.0) -> bytes:
    """The snapshot's bytes at ``url``; ``SnapshotRejected`` for transport errors, bad statuses or a huge body."""
    try:
        response = httpx.get(url, timeout=timeout_s, follow_redirects=True)
    except (httpx.HTTPError, httpx.InvalidURL) as exc:  # InvalidURL is no HTTPError
        raise SnapshotRejected(f"cannot fetch {url}: {exc}") from exc
    if response.status_code != 200:
        raise SnapshotRejected(f"{url} answered {response.status_code}")
    if len(response.content) > MAX_SNAPSHOT_BYTES:
        raise SnapshotRejected(f"{url} sent {len(response.content)} bytes, more than {MAX_SNAPSHOT_BYTES}")
    return response.content


def read_url(url: str, *, timeout_s: float = 30.0) -> DataSnapshot:
    return read_snapshot(fetch(url, timeout_s=timeout_s), source=url)


def apply(client: Client, snapshot: DataSnapshot) -> pricebook.BookStats:
    """Writes ``snapshot`` as the new book version and reloads the dictionaries."""
    return pricebook.load(client, snapshot)


def snapshot_json(snapshot: DataSnapshot) -> bytes:
    """``snapshot`` in genai-prices' published JSON form (``read_snapshot`` reads it back equal)."""
    return json.dumps(_raw(snapshot.providers)).encode()


def _raw(value: Any) -> Any:
    if isinstance(value, ModelPrice):
        return {k: _raw(v) for k, v in value.__dict__.items() if not k.startswith("_") and v is not None}
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        fields = (f for f in dataclasses.fields(value) if f.init and not f.name.startswith("_"))
        # ClauseOr.or_ / ClauseAnd.and_ are "or" / "and" in the JSON
        return {f.name.rstrip("_"): _raw(v) for f in fields if (v := getattr(value, f.name)) is not None}
    if isinstance(value, list | tuple):
        return [_raw(item) for item in value]
    if isinstance(value, dict):
        return {key: _raw(item) for key, item in value.items()}
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, date | time | datetime):
        return value.isoformat()
    return value


def _first_errors(exc: Exception, limit: int = 3) -> str:
    if not isinstance(exc, pydantic.ValidationError):
        return str(exc)
    errors = exc.errors()
    shown = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in errors[:limit])
    return shown + (f" (and {len(errors) - limit} more)" if len(errors) > limit else "")


class PriceRefresher:
    """Loads the snapshot at ``url`` every ``interval_s`` in a daemon thread (a day by default in settings).

    Any failure of an attempt (a rejected snapshot, the network, the store) is logged on one line, the
    traceback only at DEBUG, and the book in force stays; the next attempt comes one interval later, so
    the thread ends only at ``stop()``, which wakes it and waits for it.
    """

    def __init__(self, client: Client, url: str, interval_s: float) -> None:
        if interval_s <= 0:
            raise ValueError("interval_s must be positive")  # else the loop would spin
        self._client = client
        self._url = url
        self._interval_s = interval_s
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._run, name="usagemeter-price-refresh", daemon=True)
        self.loaded = 0
        self.failed = 0

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout_s: float = 10.0) -> None:
        self._stopped.set()
        if self._thread.is_alive():
            self._thread.join(timeout_s)

    @property
    def alive(self) -> bool:
        return self._thread.is_alive()

    def refresh_once(self) -> bool:
        """One attempt; True when a new book is in force. Never raises: an error is logged and counted."""
        try:
            stats = apply(self._client, read_url(self._url))
        except Exception as exc:
            self.failed += 1
            log.log(
                logging.WARNING if isinstance(exc, SnapshotRejected) else logging.ERROR,
                "price refresh failed, the current book stays in force; next attempt in %g s: %s: %s",
                self._interval_s,
                type(exc).__name__,
                " ".join(str(exc).split()),
                exc_info=log.isEnabledFor(logging.DEBUG),
            )
            return False
        self.loaded += 1
        log.info("price book v%d loaded from %s: %d prices", stats.book_version, self._url, stats.price_rows)
        return True

    def _run(self) -> None:
        while not self._stopped.wait(self._interval_s):
            self.refresh_once()


def start_refresher(client: Client, url: str | None, interval_s: float) -> PriceRefresher | None:
    """A started ``PriceRefresher`` when ``url`` is set (configured refresh), else None: nothing fetches."""
    if not url:
        return None
    refresher = PriceRefresher(client, url, interval_s)
    refresher.start()
    log.info("price snapshot refresh from %s every %g s", url, interval_s)
    return refresher
