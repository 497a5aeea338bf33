"""API keys in the store (table ``api_keys``, migration 0016): made, listed, revoked, and checked per request.

A key reads ``umk_<key id>_<secret>``: 12 hex digits of id, which ``keys list`` and the logs may show, and
32 random bytes. The store keeps the id and HMAC-SHA256 of the whole key under the server secret
(``api/local_admin.py`` says where that comes from), never the key. Why HMAC and not a slow hash: a slow
hash protects guessable passwords, and a 256-bit random key cannot be guessed either way; what HMAC adds is
that a copy of the table (a backup, a ClickHouse user with read access) cannot even test a candidate
without the secret, at microseconds per request, where a slow hash would spend tens of milliseconds of CPU
per request (a lever for anyone who can send requests) or need a cache that delays revocation.

A revocation writes the key's row again with ``revoked_at`` and a higher ``version``; reads use ``FINAL``,
so the newest row of a key decides. Every check reads the table, so a revocation applies to the next request.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final

from clickhouse_connect.driver.client import Client

from usagemeter.query.key_models import CreatedKey, KeyInfo, KeyRequest, KeyStatus
from usagemeter.schemas.clock import Clock, utc_datetime

PREFIX: Final = "umk_"
_ID_HEX: Final = 12
_COLUMNS: Final = (
    "key_id", "key_hash", "name", "admin", "clients", "created_at", "expires_at", "revoked_at", "version",
)  # fmt: skip
_SELECT: Final = f"SELECT {', '.join(_COLUMNS)} FROM api_keys FINAL"
_WRITE: Final = {"async_insert": 0}


@dataclass(frozen=True, slots=True)
class StoredKey:
    """A row of ``api_keys``: what a request's key is checked against."""

    key_id: str
    key_hash: str
    name: str
    admin: bool
    clients: tuple[str, ...]
    created_at: datetime
    expires_at: datetime | None
    revoked_at: datetime | None
    version: int

    def status(self, now: datetime) -> KeyStatus:
        if self.revoked_at is not None:
            return "revoked"
        return "expired" if self.expires_at is not None and self.expires_at <= now else "active"

    def info(self, now: datetime) -> KeyInfo:
        return KeyInfo(
            key_id=self.key_id,
            name=self.name,
            admin=self.admin,
            clients=list(self.clients),
            created_at=self.created_at,
            expires_at=self.expires_at,
            revoked_at=self.revoked_at,
            status=self.status(now),
        )


def key_hash(secret: bytes, key: str) -> str:
    return hmac.new(secret, key.encode(), hashlib.sha256).hexdigest()


def key_id_of(key: str) -> str | None:
    """The id part of a key of our format, or None for anything else."""
    key_id, sep, rest = key.removeprefix(PREFIX).partition("_")
    if not key.startswith(PREFIX) or not sep or not rest or len(key_id) != _ID_HEX:
        return None
    return key_id


def new_key() -> tuple[str, str]:
    """``(key id, key)`` from the system's CSPRNG."""
    key_id = secrets.token_hex(_ID_HEX // 2)
    return key_id, f"{PREFIX}{key_id}_{secrets.token_urlsafe(32)}"


def create(client: Client, secret: bytes, request: KeyRequest, clock: Clock, *, key: str | None = None) -> CreatedKey:
    """Stores a new key (or ``key``, the local admin key file's) and returns it, the only time it is shown."""
    key_id, key = (key_id_of(key), key) if key is not None else new_key()
    if key_id is None:
        raise ValueError("not a usagemeter API key")
    now_us = clock.now_us()
    if request.expires_at is not None and request.expires_at <= utc_datetime(now_us):
        raise ValueError(f"expires_at {request.expires_at.isoformat()} is not in the future")
    stored = StoredKey(
        key_id=key_id,
        key_hash=key_hash(secret, key),
        name=request.name,
        admin=request.admin,
        clients=tuple(sorted(set(request.clients))),
        created_at=utc_datetime(now_us),
        expires_at=request.expires_at,
        revoked_at=None,
        version=now_us,
    )
    _write(client, stored)
    return CreatedKey(**stored.info(stored.created_at).model_dump(), key=key)


def find(client: Client, key_id: str) -> StoredKey | None:
    rows = _rows(client, " WHERE key_id = {key_id:String}", {"key_id": key_id})
    return rows[0] if rows else None


def verify(client: Client, secret: bytes, key: str) -> StoredKey | None:
    """The stored key ``key`` is, whatever its status; None when no stored key has this hash."""
    key_id = key_id_of(key)
    stored = find(client, key_id) if key_id is not None else None
    if stored is None or not hmac.compare_digest(stored.key_hash, key_hash(secret, key)):
        return None
    return stored


def list_keys(client: Client, clock: Clock) -> list[KeyInfo]:
    now = utc_datetime(clock.now_us())
    return [stored.info(now) for stored in _rows(client, " ORDER BY created_at, key_id", {})]


def revoke(client: Client, clock: Clock, *, key_id: str = "", name: str = "") -> list[KeyInfo]:
    """Revokes the key ``key_id``, or every key named ``name``, that is not revoked yet; returns them."""
    where = " WHERE revoked_at IS NULL AND " + ("key_id = {v:String}" if key_id else "name = {v:String}")
    now_us = clock.now_us()
    revoked = []
    for stored in _rows(client, where, {"v": key_id or name}):
        row = StoredKey(
            **{**_fields(stored), "revoked_at": utc_datetime(now_us), "version": max(now_us, stored.version + 1)}
        )
        _write(client, row)
        revoked.append(row.info(utc_datetime(now_us)))
    return revoked


def _rows(client: Client, where: str, parameters: dict[str, Any]) -> list[StoredKey]:
    result = client.query(_SELECT + where, parameters=parameters)
    return [_stored(dict(zip(_COLUMNS, row, strict=True))) for row in result.result_rows]


def _stored(row: dict[str, Any]) -> StoredKey:
    """A row as read: times made aware (the client may return the columns' UTC times naive)."""
    times = {name: _utc(row[name]) for name in ("created_at", "expires_at", "revoked_at")}
    return StoredKey(**{**row, **times, "clients": tuple(row["clients"]), "admin": bool(row["admin"])})


def _utc(moment: datetime | None) -> datetime | None:
    return moment.replace(tzinfo=UTC) if moment is not None and moment.tzinfo is None else moment


def _fields(stored: StoredKey) -> dict[str, Any]:
    return {name: getattr(stored, name) for name in _COLUMNS}


def _write(client: Client, stored: StoredKey) -> None:
    row = [{**_fields(stored), "clients": list(stored.clients)}[name] for name in _COLUMNS]
    client.insert("api_keys", [row], column_names=list(_COLUMNS), settings=_WRITE)
