"""Connections to ClickHouse: the embedded engine (chDB) or a server, through the same client code.

Errors name what to fix, for the CLI to print as one line: ``StoreMissing`` (a reading command found no
store where it looked; it never creates one), ``StoreInUse`` (another process owns the embedded directory;
chDB allows one), ``StoreUnreachable`` (no ClickHouse server answers at the DSN); see ``schemas/errors.py``.
"""

from __future__ import annotations

import contextlib
import fcntl
import re
import threading
import time
import weakref
from pathlib import Path
from typing import Any

import clickhouse_connect
from clickhouse_connect.driver.client import Client
from clickhouse_connect.driver.exceptions import OperationalError

from usagemeter.consumers.settings import ClickHouseSettings
from usagemeter.schemas.errors import StoreInUse, StoreMissing, StoreUnreachable

_WHERE = "USAGEMETER_CLICKHOUSE_DSN / _DATABASE"
_opened: set[Path] = set()  # embedded directories this process opened: chDB shares one engine per process
_connected_to: weakref.WeakKeyDictionary[Client, ClickHouseSettings] = weakref.WeakKeyDictionary()


def embedded_dir(settings: ClickHouseSettings) -> Path:
    path = settings.dsn.removeprefix("chdb://")
    return Path("/" + path.lstrip("/")) if path.startswith("/") else Path(path).absolute()


def connect(settings: ClickHouseSettings, *, create: bool = True) -> Client:
    """A client bound to the settings' database. ``create``: make the database (and, embedded, the
    directory) when missing; without it a missing store is a ``StoreMissing`` naming where we looked."""
    common: dict[str, Any] = {"username": settings.username, "password": settings.password.get_secret_value()}
    if settings.embedded:
        common = {}
        directory = embedded_dir(settings)
        # chDB removes its ``status`` lock file when the engine closes: ``metadata`` says a store was made here.
        if not create and not (directory / "status").exists() and not (directory / "metadata").is_dir():
            raise StoreMissing(
                f"no usagemeter store in {directory} ({_WHERE}); point USAGEMETER_CLICKHOUSE_DSN at the store "
                "`usagemeter serve` uses (chdb:///<dir>), or create one with `usagemeter migrate`"
            )
        _check_not_in_use(directory)
    try:
        bootstrap = clickhouse_connect.get_client(dsn=settings.dsn, **common)
    except OperationalError as exc:
        raise StoreUnreachable(f"no ClickHouse server answers at {redacted(settings.dsn)} ({_WHERE})") from exc
    if settings.embedded:
        _opened.add(embedded_dir(settings))
    try:
        if create:
            bootstrap.command("CREATE DATABASE IF NOT EXISTS {db:Identifier}", parameters={"db": settings.database})
        else:
            _check_exists(bootstrap, settings)
    finally:
        bootstrap.close()  # an open handle would keep an embedded engine from reopening (cli/service.py)
    if settings.cluster:
        # Inserts into the Distributed tables are acknowledged once on the shards, so an offset is committed
        # only after its rows are stored (consumers/cluster.py); not set for one server, where it does nothing.
        common["settings"] = {"distributed_foreground_insert": 1}
    client = clickhouse_connect.get_client(dsn=settings.dsn, database=settings.database, **common)
    _connected_to[client] = settings
    return client


def more_sessions(client: Client, count: int) -> list[Client]:
    """``count`` more sessions on the store ``client`` was connected to, for work side by side; none for a
    client ``connect`` did not make (its maker knows how to make more)."""
    settings = _connected_to.get(client)
    return [] if settings is None else [connect(settings, create=False) for _ in range(count)]


def _check_exists(client: Client, settings: ClickHouseSettings) -> None:
    tables = client.query(
        "SELECT count() FROM system.tables WHERE database = {db:String} AND name = 'schema_migrations'",
        parameters={"db": settings.database},
    ).result_rows[0][0]
    if not tables:
        raise StoreMissing(
            f"no usagemeter database {settings.database!r} at {redacted(settings.dsn)} ({_WHERE}); point them at the "
            "store `usagemeter serve` uses, or create it with `usagemeter migrate`"
        )


def _check_not_in_use(directory: Path) -> None:
    """chDB refuses a directory another process holds (its ``status`` file is flock'ed) with a C++ message on
    stderr and a vague exception; try the same lock first to say who holds it."""
    status = directory / "status"
    if directory in _opened or not status.exists():
        return
    with status.open("rb") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            pid = re.search(rb"PID: (\d+)", handle.read())
            holder = f"process {pid.group(1).decode()}" if pid else "another process"
            raise StoreInUse(
                f"the store {directory} is in use by {holder} (another usagemeter `serve`, `worker` or command); "
                "stop it, or ask its API (--api-url / USAGEMETER_API_URL)"
            ) from None
        fcntl.flock(handle, fcntl.LOCK_UN)


def wait_until_answering(settings: ClickHouseSettings, timeout_s: float, stop: threading.Event) -> None:
    """Start-up check of a server DSN, bounded by ``timeout_s``: a ``StoreUnreachable`` naming it, not a
    traceback of retries (the embedded engine is opened, not reached, so it passes at once)."""
    if settings.embedded:
        return
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            with contextlib.closing(
                clickhouse_connect.get_client(
                    dsn=settings.dsn,
                    username=settings.username,
                    password=settings.password.get_secret_value(),
                    connect_timeout=min(2.0, timeout_s),
                )
            ):
                return
        except OperationalError:
            if stop.wait(0.5) or time.monotonic() >= deadline:
                if stop.is_set():
                    return
                break
    raise StoreUnreachable(
        f"no ClickHouse server answers at {redacted(settings.dsn)} (USAGEMETER_CLICKHOUSE_DSN) after {timeout_s:.0f} s"
    )


def redacted(dsn: str) -> str:
    """The DSN without a password it may carry."""
    return re.sub(r"//([^:/@]+):[^@/]*@", r"//\1:***@", dsn)
