"""Which API key a client of the query API sends: the one given, ``USAGEMETER_API_KEY``, or the local admin key.

``usagemeter serve`` writes a local admin key to ``USAGEMETER_API_KEY_FILE`` (default
``$XDG_CONFIG_HOME/usagemeter/admin.key``, else ``~/.config/usagemeter/admin.key``, mode 0600), so the CLI
and ``fetch_usage()`` on the same machine need no setup. That file is sent only to a loopback address
(``localhost``, ``127.0.0.0/8``, ``::1``): pointing a client at another host never hands it the local
admin key; give that host's key explicitly or in ``USAGEMETER_API_KEY``.
"""

from __future__ import annotations

import ipaddress
import os
import stat
from pathlib import Path
from urllib.parse import urlsplit

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings

from usagemeter.schemas.errors import ConfigError
from usagemeter.schemas.settings_files import settings_config


def config_dir() -> Path:
    """``$XDG_CONFIG_HOME/usagemeter``, else ``~/.config/usagemeter``: where the local key files live."""
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "usagemeter"


class ApiClientSettings(BaseSettings):
    """The key a client sends: ``USAGEMETER_API_KEY``, or the file ``USAGEMETER_API_KEY_FILE`` names."""

    model_config = settings_config("USAGEMETER_API_")

    key: SecretStr | None = Field(default=None, description="The API key to send; wins over the key file.")
    key_file: Path = Field(
        default_factory=lambda: config_dir() / "admin.key",
        description="The local admin key `usagemeter serve` writes (0600), sent to loopback addresses only.",
    )


def api_key_for(base_url: str, api_key: str | None = None) -> str | None:
    """The key to send to ``base_url``: ``api_key``, else ``USAGEMETER_API_KEY``, else the local admin key
    file when ``base_url`` is a loopback address and the file exists; None when there is none."""
    if api_key:
        return api_key
    settings = ApiClientSettings()
    if settings.key is not None:
        return settings.key.get_secret_value()
    if is_loopback(base_url) and settings.key_file.exists():
        return read_key_file(settings.key_file)
    return None


def is_loopback(base_url: str) -> bool:
    host = urlsplit(base_url).hostname or ""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def read_key_file(path: Path) -> str:
    """The key in ``path``; refused (as ssh refuses a private key) when others may read or write the file."""
    mode = path.stat().st_mode
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise ConfigError(f"{path} is open to other users (mode {mode & 0o777:o}): chmod 600 it")
    return path.read_text().strip()
