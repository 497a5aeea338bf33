"""The HTTP API's settings, from ``USAGEMETER_API_*`` environment variables, checked at start.

``allowed_hosts`` is the Host-header check: a request naming another host is refused (400), which stops a
web page that rebinds its own name to 127.0.0.1 from reaching a local API. By default the API answers to
``localhost``, ``127.0.0.1``, ``::1`` and the address it binds (when that is one address, not 0.0.0.0);
set the names clients use (``USAGEMETER_API_ALLOWED_HOSTS=usage.example.com,10.0.0.5``) to serve others.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, NoDecode

from usagemeter.query.credentials import config_dir
from usagemeter.schemas.settings_files import settings_config

MIB = 1024 * 1024
_LOCAL_NAMES = ("localhost", "127.0.0.1", "::1", "[::1]")
_ANY_ADDRESS = ("0.0.0.0", "::", "")  # noqa: S104 -- names of "every address", compared against, not bound


class ApiSettings(BaseSettings):
    model_config = settings_config("USAGEMETER_API_")

    host: str = Field(default="127.0.0.1", description="The address `usagemeter serve` binds.")
    allowed_hosts: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="Host names the API answers to, comma-separated; '*' for any. Default: local names and host.",
    )
    max_body_bytes: int = Field(default=MIB, ge=1024, le=1024 * MIB, description="Largest request body (413 above).")
    max_snapshot_bytes: int = Field(
        default=64 * MIB, ge=1024, le=1024 * MIB, description="Largest price snapshot body (genai-prices' data.json)."
    )
    key_cache_s: float = Field(
        default=1.0, ge=0, le=60, description="A key's lookup is reused this long: a revoked key is refused within it."
    )
    docs: bool = Field(default=False, description="Serve /docs, /redoc and /openapi.json (public when on).")
    key_secret: SecretStr | None = Field(
        default=None,
        min_length=16,
        description="The HMAC secret keys are hashed with; every API process of a store needs the same.",
    )
    key_secret_file: Path = Field(
        default_factory=lambda: config_dir() / "api-key-secret",
        description="Where the secret is kept (made, 0600, on first use) when key_secret is not set.",
    )
    local_admin: bool = Field(
        default=True, description="`serve` makes sure the local admin key file holds an admin key of its store."
    )

    @field_validator("allowed_hosts", mode="before")
    @classmethod
    def _comma_separated(cls, value: object) -> object:
        return [part.strip() for part in value.split(",") if part.strip()] if isinstance(value, str) else value

    def hosts(self) -> list[str]:
        """The Host-header names accepted: the setting, or the local names plus the bound address."""
        if self.allowed_hosts:
            return self.allowed_hosts
        bound = () if self.host in _ANY_ADDRESS else (self.host,)
        return list(dict.fromkeys((*_LOCAL_NAMES, *bound)))
