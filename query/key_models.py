"""What the key routes of the API take and give (``/v1/keys``), shared by the server, the HTTP client and the CLI.

Here rather than in ``api/`` for the reason ``price_models.py`` is: the CLI and ``remote_keys.py`` use them
without loading FastAPI. A key's secret appears in one model only, ``CreatedKey``, answered once.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal, Self

from pydantic import AwareDatetime, BaseModel, Field, RootModel, model_validator

from usagemeter.schemas.validation import MAX_FIELD_BYTES

KeyStatus = Literal["active", "expired", "revoked"]


class KeyRequest(BaseModel):
    """A new key: admin, or scoped to a set of clients (exactly one of the two), optionally expiring."""

    name: str = Field(default="", max_length=256, description="What the key is for; shown by `keys list`.")
    admin: bool = False
    clients: list[str] = Field(default_factory=list, max_length=1000)
    expires_at: AwareDatetime | None = None

    @model_validator(mode="after")
    def _one_scope(self) -> Self:
        if self.admin == bool(self.clients):
            raise ValueError("a key is either admin or scoped to clients: give admin or clients, not both or neither")
        if any(not client or len(client.encode()) > MAX_FIELD_BYTES["client_id"] for client in self.clients):
            raise ValueError(f"client ids must be 1 to {MAX_FIELD_BYTES['client_id']} bytes")
        return self


class KeyInfo(BaseModel):
    """A key as ``keys list`` shows it: never the key itself nor its hash."""

    key_id: str
    name: str
    admin: bool
    clients: list[str]
    created_at: datetime
    expires_at: datetime | None
    revoked_at: datetime | None
    status: KeyStatus


class CreatedKey(KeyInfo):
    key: str = Field(description="The key: shown this once, stored only as a keyed hash.")


class RevokeRequest(BaseModel):
    """Revoke one key by id, or every active key of a name."""

    key_id: str = ""
    name: str = ""

    @model_validator(mode="after")
    def _one_selector(self) -> Self:
        if bool(self.key_id) == bool(self.name):
            raise ValueError("give key_id or name, not both or neither")
        return self


class KeyList(RootModel[list[KeyInfo]]):
    """Keys on the wire (``GET /v1/keys``, ``POST /v1/keys/revoke``): a JSON array."""
