"""The authorisation matrix: every route of the API by every kind of caller, the status each gets, and no
body that shows a caller rows of a client it may not read.

The dashboard's pages are in it too: a key reaches them in the Authorization header here (the session cookie
is tested in ``test_dashboard_pages.py``), and a client's contract, like its usage, must not show to another.

Callers: no key, a malformed key, an expired key, a revoked key, a key of another client (globex), a key of
the client the usage request is about (acme), an admin key. Usage, unknown models and budgets of both clients are in the
store under names that appear nowhere else (``acme-only-model``, ``globex-only-budget``, ...), so a foreign
row in any body is found by its name. A route added to the app without a row here fails
``test_every_route_is_in_the_matrix``: decide who may call it, then add it.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from clickhouse_connect.driver.client import Client
from fastapi.routing import APIRoute

from tests.fixtures.api import api_client, api_settings, make_key
from tests.fixtures.clock import ManualClock
from tests.fixtures.snapshots import with_model
from usagemeter.api import create_app, keys
from usagemeter.budgets import manage
from usagemeter.budgets.model import BudgetSpec, Scope
from usagemeter.consumers import migrations
from usagemeter.consumers.settings import ClickHouseSettings
from usagemeter.consumers.store import connect

pytestmark = pytest.mark.clickhouse

NOW = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)
CALLERS = ("no key", "malformed key", "expired key", "revoked key", "wrong client", "right client", "admin")
READS = {"wrong client": {"globex"}, "right client": {"acme"}, "admin": {"acme", "globex"}}
"""The clients whose rows each caller may see; the others none."""


@dataclass(frozen=True)
class Endpoint:
    method: str
    path: str
    access: str
    """public, any-key, client (acme's data: acme's key and admin) or admin"""
    ok: int = 200
    """what a caller who may call it gets (404: the route ran and found nothing, as asked)"""
    params: dict[str, str] | None = None
    body: Any = None


ENDPOINTS = (
    Endpoint("GET", "/healthz", "public"),
    Endpoint("GET", "/metrics", "public"),
    Endpoint("GET", "/v1/usage", "client", params={"client_id": "acme", "include_users": "true"}),
    Endpoint("GET", "/v1/prices", "any-key", params={"model": "gpt-4o", "provider": "openai"}),
    Endpoint("POST", "/v1/prices/snapshot", "admin", body=with_model({"input_mtok": "1"})),
    Endpoint("POST", "/v1/reprice", "admin", body={"since": "2026-03-01T00:00:00Z", "dry_run": True}),
    Endpoint("GET", "/v1/unknown-models", "admin"),
    Endpoint("POST", "/v1/keys", "admin", ok=201, body={"clients": ["acme"], "name": "made by the matrix"}),
    Endpoint("GET", "/v1/keys", "admin"),
    Endpoint("POST", "/v1/keys/revoke", "admin", body={"name": "no such key"}),
    Endpoint("POST", "/v1/budgets", "admin", ok=201, body={"scope": {"client_id": "acme"}, "limit": "10"}),
    Endpoint("GET", "/v1/budgets", "any-key"),  # the key's clients' budgets only (checked by name)
    Endpoint("GET", "/v1/budgets/{budget_id}", "client"),
    Endpoint("PATCH", "/v1/budgets/{budget_id}", "admin", body={"limit": "20"}),
    Endpoint("GET", "/v1/alerts", "any-key"),  # the key's clients' alerts only
    Endpoint("GET", "/v1/alerts/{alert_id}", "any-key", ok=404),  # no such alert: nobody's
    Endpoint("POST", "/v1/budgets/check", "client", body={"client_id": "acme"}),
    Endpoint("POST", "/v1/quote", "client", body={"client_id": "acme", "model": "gpt-4o", "input_tokens": 10}),
    Endpoint("GET", "/v1/reports", "client", params={"client_id": "acme", "group_by": "user"}),
    Endpoint(
        "POST",
        "/v1/reports/query",
        "client",
        body={
            "client_ids": ["acme"],
            "start": "2026-03-01T00:00:00Z",
            "end": "2026-04-01T00:00:00Z",
            "group_by": ["user", "model"],
        },
    ),
    Endpoint(
        "GET",
        "/v1/reports/focus",
        "client",
        params={"client_id": "acme", "start": "2026-03-01T00:00:00Z", "end": "2026-04-01T00:00:00Z"},
    ),
    Endpoint("POST", "/v1/views/rebuild", "admin", body={"tables": ["usage_15m_by_dims"]}),
    Endpoint("GET", "/v1/clients/{client_id}/stats", "client", params={"user_id": "acme-only-user"}),
    Endpoint("GET", "/v1/clients/{client_id}/activity", "client"),
    Endpoint("GET", "/v1/clients/{client_id}/requests/{request_id}", "client", ok=404),
    Endpoint("GET", "/v1/clients/{client_id}/rates", "client"),
    Endpoint("GET", "/dashboard", "client", params={"client": "acme", "range": "30d"}),
    Endpoint("GET", "/dashboard/prices", "any-key"),  # contracts of the key's clients only (checked by name)
    Endpoint("GET", "/dashboard/login", "public"),
    Endpoint("GET", "/dashboard/logout", "public"),
    Endpoint("GET", "/dashboard/static/{name}", "public"),
    Endpoint("POST", "/dashboard/session", "any-key", ok=204, body={}),
    Endpoint("DELETE", "/v1/budgets/{budget_id}", "admin"),  # last: the budget is gone afterwards
)


def expected(endpoint: Endpoint, caller: str) -> int:
    if endpoint.access == "public":
        return endpoint.ok
    if caller in {"no key", "malformed key", "expired key", "revoked key"}:
        return 401
    allowed = {
        "any-key": {"wrong client", "right client", "admin"},
        "client": {"right client", "admin"},
        "admin": {"admin"},
    }[endpoint.access]
    return endpoint.ok if caller in allowed else 403


CASES = [
    pytest.param(endpoint, caller, id=f"{endpoint.method} {endpoint.path} by {caller}")
    for endpoint in ENDPOINTS
    for caller in CALLERS
]

AGGREGATE_COLUMNS = ["client_id", "bucket", "user_id", "provider", "model", "events", "requests", "input_tokens",
                     "cost_total"]  # fmt: skip
UNKNOWN_COLUMNS = ["provider_raw", "model_raw", "events", "first_seen", "last_seen"]


@pytest.fixture(scope="module")
def store(store_dsn: str) -> Iterator[Client]:
    """One store for the whole matrix: both clients' usage and unknown models."""
    settings = ClickHouseSettings(dsn=store_dsn, database=f"t_{uuid.uuid4().hex[:12]}")
    client = connect(settings)
    migrations.apply(client)
    bucket = datetime(2026, 3, 10, 6, 0, tzinfo=UTC)
    rows = [[client_id, bucket, f"{client_id}-only-user", "openai", f"{client_id}-only-model", 1, 1, 10, Decimal(1)]
            for client_id in ("acme", "globex")]  # fmt: skip
    client.insert("usage_15m_by_user", rows, column_names=AGGREGATE_COLUMNS, settings={"async_insert": 0})
    unknown = [["", f"{client_id}-only-model", 1, bucket, bucket] for client_id in ("acme", "globex")]
    client.insert("unknown_models", unknown, column_names=UNKNOWN_COLUMNS, settings={"async_insert": 0})
    years = (datetime(2026, 1, 1, tzinfo=UTC), datetime(2027, 1, 1, tzinfo=UTC))
    contracts = [[1, client_id, "openai", f"{client_id}-only-model", *years, Decimal("0.9"), "matrix"]
                 for client_id in ("acme", "globex")]  # fmt: skip
    client.insert("contract_source", contracts, settings={"async_insert": 0})
    for client_id in ("acme", "globex"):
        spec = BudgetSpec(name=f"{client_id}-only-budget", scope=Scope(client_id=client_id), limit=Decimal(5))
        manage.create(client, spec)
    yield client
    client.command("DROP DATABASE IF EXISTS {db:Identifier} SYNC", parameters={"db": settings.database})


@pytest.fixture(scope="module")
def caller_keys(store: Client) -> dict[str, str | None]:
    past = ManualClock(now=NOW - timedelta(days=2))
    revoked = make_key(store, clients=["acme"], name="revoked")
    keys.revoke(store, ManualClock(now=NOW - timedelta(days=1)), name="revoked")
    return {
        "no key": None,
        "malformed key": "not-a-key",
        "expired key": make_key(store, clock=past, clients=["acme"], expires_at=NOW - timedelta(days=1)),
        "revoked key": revoked,
        "wrong client": make_key(store, clients=["globex"]),
        "right client": make_key(store, clients=["acme"]),
        "admin": make_key(store, admin=True),
    }


@pytest.fixture(scope="module")
def budget_id(store: Client) -> str:
    """acme's budget, which the budget routes are asked about."""
    return next(b.budget_id for b in manage.listed(store, client_id="acme"))


@pytest.mark.parametrize(("endpoint", "caller"), CASES)
def test_matrix(
    store: Client, caller_keys: dict[str, str | None], budget_id: str, endpoint: Endpoint, caller: str
) -> None:
    app = create_app(lambda: store, clock=ManualClock(now=NOW), settings=api_settings())
    api = api_client(app, caller_keys[caller])
    body = endpoint.body
    response = api.request(
        endpoint.method,
        endpoint.path.format(
            budget_id=budget_id, alert_id="a_no_such_alert", client_id="acme", request_id="nothing", name="dashboard.js"
        ),
        params=endpoint.params,
        content=body if isinstance(body, bytes) else None,
        json=body if not isinstance(body, bytes) else None,
        headers={"content-type": "application/json"} if endpoint.method != "GET" else None,
    )

    assert response.status_code == expected(endpoint, caller), response.text
    for foreign in {"acme", "globex"} - READS.get(caller, set()):
        assert f"{foreign}-only" not in response.text
    if response.status_code == 401:
        assert response.headers["www-authenticate"] == "Bearer"


def test_every_route_is_in_the_matrix(store: Client) -> None:
    app = create_app(lambda: store, settings=api_settings())
    routes = {(method, r.path) for r in app.routes if isinstance(r, APIRoute) for method in r.methods or ()}
    assert routes == {(endpoint.method, endpoint.path) for endpoint in ENDPOINTS}


def test_a_client_key_reads_its_own_usage_only(store: Client, caller_keys: dict[str, str | None]) -> None:
    api = api_client(create_app(lambda: store, settings=api_settings()), caller_keys["right client"])
    report = api.get("/v1/usage", params={"client_id": "acme", "include_users": "true"}).json()
    assert list(report["by_model"]) == ["acme-only-model"]
    assert list(report["by_user"]) == ["acme-only-user"]
