"""The two local files of a one-machine setup, each made once with mode 0600: the key secret and the admin key.

* The **key secret** hashes every key (``api/keys.py``): ``USAGEMETER_API_KEY_SECRET``, or else the file
  ``USAGEMETER_API_KEY_SECRET_FILE`` (default ``~/.config/usagemeter/api-key-secret``), made on first use.
  Several API processes over one store must share it (set the variable the same everywhere).
* The **local admin key**: ``usagemeter serve`` (and ``usagemeter keys`` on a store of its own) makes sure
  ``USAGEMETER_API_KEY_FILE`` (default ``~/.config/usagemeter/admin.key``) holds an admin key of the store it
  opened: it writes a new key there when the file is missing, and registers the file's key in a store that
  does not know it (a new store). A key the store knows as revoked or expired is left so, with a warning:
  delete the file to get a new one. The CLI and ``fetch_usage()`` read that file (``query/credentials.py``).

Both files are written whole under a temporary name and linked into place, so two processes starting at
once end with one file that both use; a file others may read is refused, as ssh refuses a private key.
"""

from __future__ import annotations

import hmac
import logging
import os
import secrets
from collections.abc import Callable
from pathlib import Path

from clickhouse_connect.driver.client import Client

from usagemeter.api import keys
from usagemeter.api.settings import ApiSettings
from usagemeter.query.credentials import ApiClientSettings, read_key_file
from usagemeter.query.key_models import KeyRequest
from usagemeter.schemas.clock import SYSTEM_CLOCK, Clock, utc_datetime
from usagemeter.schemas.errors import ConfigError

log = logging.getLogger("usagemeter.api")


def key_secret(settings: ApiSettings) -> bytes:
    """The HMAC secret: the setting, or the secret file (made now when missing)."""
    if settings.key_secret is not None:
        return settings.key_secret.get_secret_value().encode()
    return _read_or_create(settings.key_secret_file, lambda: secrets.token_urlsafe(32)).encode()


def ensure_local_admin(client: Client, secret: bytes, clock: Clock = SYSTEM_CLOCK) -> Path:
    """Makes the local admin key file hold an admin key of this store (see the module docstring); returns its path.

    Never raises for the key's state: a revoked key or a changed secret is logged, and serving goes on.
    """
    path = ApiClientSettings().key_file
    key = _read_or_create(path, lambda: keys.new_key()[1])
    key_id = keys.key_id_of(key)
    if key_id is None:
        raise ConfigError(f"{path} (USAGEMETER_API_KEY_FILE) does not hold a usagemeter API key; delete it")
    stored = keys.find(client, key_id)
    if stored is None:
        keys.create(client, secret, KeyRequest(name="local admin", admin=True), clock, key=key)
        log.info("local admin key %s registered; the key is in %s", key_id, path)
    elif not hmac.compare_digest(stored.key_hash, keys.key_hash(secret, key)):
        log.warning("local admin key %s in %s does not match the store: the key secret changed", key_id, path)
    elif stored.status(utc_datetime(clock.now_us())) != "active" or not stored.admin:
        log.warning("local admin key %s in %s is not an active admin key; delete the file for a new one", key_id, path)
    return path


def _read_or_create(path: Path, make: Callable[[], str]) -> str:
    if not path.exists():
        _write_private(path, make())
    return read_key_file(path)


def _write_private(path: Path, content: str) -> None:
    """``content`` into ``path`` (mode 0600, its folder 0700 when made), unless another process was first."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{secrets.token_hex(4)}")
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(descriptor, "w") as file:
            file.write(content + "\n")
            file.flush()
            os.fsync(file.fileno())
        os.link(temporary, path)
    except FileExistsError:
        pass  # another process made it meanwhile: use theirs
    finally:
        temporary.unlink(missing_ok=True)
