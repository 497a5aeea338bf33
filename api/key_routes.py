"""The key routes: ``POST /v1/keys`` (a new key, shown once), ``GET /v1/keys``, ``POST /v1/keys/revoke``.

Admin only, as every route that does not say otherwise (``api/auth.py``). ``usagemeter keys`` comes through
here while ``usagemeter serve`` owns the embedded store.
"""

from __future__ import annotations

from fastapi import FastAPI

from usagemeter.api import keys
from usagemeter.api.store_session import StoreSession
from usagemeter.query.key_models import CreatedKey, KeyInfo, KeyRequest, RevokeRequest
from usagemeter.schemas.clock import Clock


def add_key_routes(app: FastAPI, store: StoreSession, secret: bytes, clock: Clock) -> None:
    @app.post("/v1/keys", status_code=201)
    def create_key(request: KeyRequest) -> CreatedKey:
        with store() as client:
            return keys.create(client, secret, request, clock)

    @app.get("/v1/keys")
    def list_keys() -> list[KeyInfo]:
        with store() as client:
            return keys.list_keys(client, clock)

    @app.post("/v1/keys/revoke")
    def revoke_keys(request: RevokeRequest) -> list[KeyInfo]:
        with store() as client:
            revoked = keys.revoke(client, clock, key_id=request.key_id, name=request.name)
        app.state.authenticator.forget()
        return revoked
