"""The key routes of a running query API (``usagemeter serve``) over HTTP: create, list and revoke keys.

They need an admin key: the one given, ``USAGEMETER_API_KEY``, or the local admin key file for a loopback
address. Errors as ``fetch_usage``'s.

    from usagemeter.query.remote_keys import create_key

    created = create_key("http://127.0.0.1:8765", clients=["acme"], name="acme dashboard")
    print(created.key)  # shown this once
"""

from __future__ import annotations

from datetime import datetime

from usagemeter.query.key_models import CreatedKey, KeyInfo, KeyList, KeyRequest, RevokeRequest
from usagemeter.query.remote import request_api


def create_key(
    base_url: str,
    *,
    clients: list[str] | None = None,
    admin: bool = False,
    name: str = "",
    expires_at: datetime | None = None,
    api_key: str | None = None,
) -> CreatedKey:
    request = KeyRequest(name=name, admin=admin, clients=clients or [], expires_at=expires_at)
    return post_key(base_url, request, api_key=api_key)


def post_key(base_url: str, request: KeyRequest, *, api_key: str | None = None) -> CreatedKey:
    return request_api(CreatedKey, base_url, "POST", "/v1/keys", content=request.model_dump_json(), api_key=api_key)


def list_keys(base_url: str, *, api_key: str | None = None) -> list[KeyInfo]:
    return request_api(KeyList, base_url, "GET", "/v1/keys", api_key=api_key).root


def revoke_keys(base_url: str, request: RevokeRequest, *, api_key: str | None = None) -> list[KeyInfo]:
    body = request.model_dump_json()
    return request_api(KeyList, base_url, "POST", "/v1/keys/revoke", content=body, api_key=api_key).root
