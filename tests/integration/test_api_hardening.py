"""What the API refuses before any route runs, and the defaults a route added later inherits: the JSON
content type of mutations, the body cap, the Host-header check, the docs off unless enabled."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from clickhouse_connect.driver.client import Client
from fastapi import FastAPI

from tests.fixtures.api import api_client, api_settings, make_key
from tests.fixtures.clickhouse import migrated_store
from usagemeter.api import create_app
from usagemeter.api.auth import Access, Caller, access, authorize_client, check_routes
from usagemeter.api.settings import ApiSettings

pytestmark = pytest.mark.clickhouse

REPRICE = {"since": "2026-03-01T00:00:00Z", "dry_run": True}


@pytest.fixture
def app(clickhouse: Client) -> FastAPI:
    return create_app(lambda: clickhouse, settings=api_settings(max_body_bytes=2048, max_snapshot_bytes=8192))


@pytest.fixture
def admin(clickhouse: Client) -> str:
    return make_key(clickhouse, admin=True)


@pytest.fixture(scope="module")
def untouched(store_dsn: str) -> Iterator[Client]:
    """A database for the module's table-driven tests of the request gate, which write nothing to it."""
    with migrated_store(store_dsn) as client:
        yield client


@pytest.fixture(scope="module")
def untouched_admin(untouched: Client) -> str:
    return make_key(untouched, admin=True)


@pytest.mark.parametrize(
    ("content_type", "status"),
    [
        pytest.param(None, 415, id="no content type"),
        pytest.param("text/plain", 415, id="text/plain, as a form on any web page can send"),
        pytest.param("application/x-www-form-urlencoded", 415, id="a form"),
        pytest.param("application/json; charset=utf-8", 200, id="JSON with a charset"),
    ],
)
def test_a_mutation_needs_json(app: FastAPI, admin: str, content_type: str | None, status: int) -> None:
    headers = {"content-type": content_type} if content_type else {}
    response = api_client(app, admin).post("/v1/reprice", content=b'{"since": "2026-03-01T00:00:00Z"}', headers=headers)
    assert response.status_code == status, response.text


def test_routes_added_later_are_protected_by_default(app: FastAPI, clickhouse: Client, admin: str) -> None:
    @app.get("/v1/later")
    def later() -> dict[str, str]:  # says nothing about access: admin only
        return {"rows": "every client's"}

    @app.post("/v1/later/check", openapi_extra=access(Access.CLIENT))
    def check(principal: Caller, body: dict[str, str]) -> dict[str, str]:  # a client-scoped read by POST
        authorize_client(principal, body["client_id"])
        return {"ok": body["client_id"]}

    acme = api_client(app, make_key(clickhouse, clients=["acme"]))
    assert acme.get("/v1/later").status_code == 403
    assert api_client(app).get("/v1/later").status_code == 401
    assert api_client(app, admin).get("/v1/later").status_code == 200
    assert acme.post("/v1/later/check", json={"client_id": "acme"}).json() == {"ok": "acme"}
    assert acme.post("/v1/later/check", json={"client_id": "globex"}).status_code == 403
    assert acme.post("/v1/later/check", content=b'{"client_id": "acme"}').status_code == 415


def test_a_public_route_cannot_take_a_mutation(clickhouse: Client) -> None:
    app = create_app(lambda: clickhouse, settings=api_settings())

    @app.post("/v1/open", openapi_extra=access(Access.PUBLIC))
    def open_door() -> None: ...

    with pytest.raises(RuntimeError, match="/v1/open is public but accepts"):
        check_routes(app)


def _chunks(size: int) -> Iterator[bytes]:
    yield b'{"since": "2026-03-01T00:00:00Z", "reason": "'
    yield b"x" * size
    yield b'"}'


def test_bodies_are_capped(app: FastAPI, admin: str) -> None:
    api = api_client(app, admin)
    json_type = {"content-type": "application/json"}
    big = {**REPRICE, "reason": "x" * 3000}

    declared = api.post("/v1/reprice", json=big)
    assert declared.status_code == 413
    assert "request body over 2,048 bytes" in declared.json()["detail"]
    assert api.post("/v1/reprice", content=_chunks(3000), headers=json_type).status_code == 413  # no length
    assert api.post("/v1/reprice", content=_chunks(100), headers=json_type).status_code == 200
    snapshot = api.post("/v1/prices/snapshot", content=b"[" + b" " * 4000 + b"]", headers=json_type)
    assert snapshot.status_code == 422  # over the body cap, under the snapshot's: read, and refused as data
    assert api.post("/v1/prices/snapshot", content=b" " * 9000, headers=json_type).status_code == 413
    assert api_client(app).post("/v1/reprice", json=big).status_code == 413  # before the key is looked at


@pytest.mark.parametrize(
    ("settings", "host", "status"),
    [
        pytest.param({}, "127.0.0.1:8765", 200, id="the loopback address"),
        pytest.param({}, "localhost", 200, id="localhost"),
        pytest.param({}, "[::1]:8765", 200, id="IPv6 loopback"),
        pytest.param({}, "attacker.example", 400, id="a rebound name"),
        pytest.param({"host": "10.1.2.3"}, "10.1.2.3:8765", 200, id="the bound address"),
        pytest.param({"host": "0.0.0.0"}, "10.1.2.3", 400, id="every address bound: names must be given"),
        pytest.param({"allowed_hosts": ["usage.example.com"]}, "usage.example.com", 200, id="an allowed name"),
        pytest.param({"allowed_hosts": ["usage.example.com"]}, "localhost", 400, id="the setting replaces the default"),
    ],
)
def test_the_host_header_is_checked(untouched: Client, settings: dict[str, object], host: str, status: int) -> None:
    app = create_app(lambda: untouched, settings=api_settings(**settings))
    assert api_client(app).get("/healthz", headers={"host": host}).status_code == status


def test_allowed_hosts_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("USAGEMETER_API_ALLOWED_HOSTS", "usage.example.com, 10.0.0.5")
    assert ApiSettings().hosts() == ["usage.example.com", "10.0.0.5"]


@pytest.mark.parametrize("path", ["/docs", "/redoc", "/openapi.json"])
def test_docs_are_off_unless_enabled(untouched: Client, untouched_admin: str, path: str) -> None:
    off = api_client(create_app(lambda: untouched, settings=api_settings()), untouched_admin)
    assert off.get(path).status_code == 404
    on = api_client(create_app(lambda: untouched, settings=api_settings(docs=True)))
    assert on.get(path).status_code == 200


def test_the_openapi_document_shows_each_routes_access(clickhouse: Client) -> None:
    document = api_client(create_app(lambda: clickhouse, settings=api_settings(docs=True))).get("/openapi.json").json()
    paths = document["paths"].items()
    levels = {path: op.get("x-usagemeter-access", "admin") for path, ops in paths for op in ops.values()}
    assert levels["/healthz"] == "public"
    assert levels["/v1/usage"] == "client"
    assert levels["/v1/keys"] == "admin"
