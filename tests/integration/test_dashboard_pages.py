"""The dashboard's pages over HTTP, without a browser: the session cookie's rules, escaping, the prices page
(overrides and contracts marked, at a date), and the answers for views the aggregates cannot serve.

The store holds aggregate rows written directly (as ``test_api_authorisation.py`` does), so every number
is known; the browser test (``test_dashboard_browser.py``) runs the pipeline for real.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from clickhouse_connect.driver.client import Client
from fastapi import FastAPI
from fastapi.testclient import TestClient

from tests.fixtures.api import BASE_URL, api_client, api_settings, make_key
from tests.fixtures.clickhouse import priced_store
from tests.fixtures.clock import ManualClock
from usagemeter.api import create_app
from usagemeter.api.auth import SESSION_COOKIE
from usagemeter.dashboard.view import View

pytestmark = pytest.mark.clickhouse

NOW = datetime(2026, 12, 2, 8, 7, tzinfo=UTC)
BUCKET = datetime(2026, 12, 2, 6, 0, tzinfo=UTC)
HOSTILE = "<script>alert(1)</script>"
COLUMNS = ["client_id", "bucket", "user_id", "provider", "model", "events", "requests", "input_tokens", "cost_total"]


@pytest.fixture(scope="module")
def store(store_dsn: str) -> Iterator[Client]:
    with priced_store(store_dsn) as client:
        _fill(client)
        yield client


def _fill(client: Client) -> None:
    """acme's and globex's usage of today and of a week ago, an override and contracts in force since June."""
    rows = [
        ["acme", BUCKET, "alice", "openai", "gpt-4o-mini", 3, 3, 300, Decimal("1.25")],
        ["acme", BUCKET, "bob", "openai", HOSTILE, 1, 1, 10, Decimal("0.5")],
        ["globex", BUCKET, "globex-user", "openai", "gpt-4o-mini", 2, 2, 200, Decimal(7)],
        ["acme", BUCKET - timedelta(days=7), "alice", "openai", "gpt-4o-mini", 1, 1, 100, Decimal("0.25")],
    ]
    # usage_15m_by_model is fed from this table by its view
    client.insert("usage_15m_by_user", rows, column_names=COLUMNS, settings={"async_insert": 0})
    in_force = (datetime(2026, 6, 1, tzinfo=UTC), datetime(2027, 1, 1, tzinfo=UTC))
    client.insert("price_override_source", [[1, "openai", "gpt-4o-mini", *in_force, Decimal("0.1"), "test"]],
                  column_names=["version", "provider_id", "model_id", "valid_from", "valid_to", "input_mtok", "entry"],
                  settings={"async_insert": 0})  # fmt: skip
    contracts = [[1, c, "openai", "*", *in_force, Decimal("0.8"), "test"] for c in ("acme", "globex")]
    client.insert("contract_source", contracts, settings={"async_insert": 0})


@pytest.fixture(scope="module")
def app(store: Client) -> FastAPI:
    return create_app(lambda: store, clock=ManualClock(now=NOW), settings=api_settings())


@pytest.fixture(scope="module")
def acme_key(store: Client) -> str:
    return make_key(store, clients=["acme"])


def value(page: str, test_id: str) -> Decimal:
    """The exact number a page shows under ``data-test=test_id``."""
    found = re.search(rf'data-test="{test_id}" data-value="([^"]+)"', page)
    assert found, f"no {test_id} on the page"
    return Decimal(found.group(1))


def signed_in(app: FastAPI, key: str) -> TestClient:
    """A browser-like client: the key sent once to the session route, then only the cookie."""
    browser = TestClient(app, base_url=BASE_URL)
    answer = browser.post("/dashboard/session", headers={"authorization": f"Bearer {key}",
                                                        "content-type": "application/json"}, content=b"{}")  # fmt: skip
    assert answer.status_code == 204, answer.text
    return browser


def test_the_session_cookie_is_httponly_strict_and_scoped_to_the_pages(app: FastAPI, acme_key: str) -> None:
    browser = TestClient(app, base_url=BASE_URL)
    answer = browser.post("/dashboard/session", headers={"authorization": f"Bearer {acme_key}",
                                                        "content-type": "application/json"}, content=b"{}")  # fmt: skip
    cookie = answer.headers["set-cookie"]
    assert cookie.startswith(f"{SESSION_COOKIE}={acme_key};")
    assert {"HttpOnly", "Path=/dashboard", "SameSite=strict", "Max-Age=28800"} <= {p.strip() for p in cookie.split(";")}


def test_the_cookie_reads_pages_and_nothing_else(app: FastAPI, acme_key: str) -> None:
    browser = signed_in(app, acme_key)
    assert browser.get("/dashboard").status_code == 200
    # the cookie is sent (the client keeps it for /dashboard only, so send it by hand elsewhere)
    with_cookie = {"cookie": f"{SESSION_COOKIE}={acme_key}"}
    assert browser.get("/v1/usage", params={"client_id": "acme"}, headers=with_cookie).status_code == 401
    refused = browser.post("/v1/budgets/check", json={"client_id": "acme"}, headers=with_cookie)
    assert refused.status_code == 401
    refused = browser.post("/dashboard/session", json={}, headers=with_cookie)  # a page cannot renew itself
    assert refused.status_code == 401


def test_without_a_key_the_page_answers_401_with_the_form(app: FastAPI) -> None:
    answer = TestClient(app, base_url=BASE_URL).get("/dashboard", headers={"cookie": f"{SESSION_COOKIE}=um_bad"})
    assert answer.status_code == 401 and answer.headers["www-authenticate"] == "Bearer"
    assert 'id="login"' in answer.text and "invalid API key" in answer.text
    assert "default-src 'self'" in answer.headers["content-security-policy"]
    assert TestClient(app, base_url=BASE_URL).get("/v1/usage", params={"client_id": "acme"}).json()["detail"]


def test_logout_clears_the_cookie(app: FastAPI, acme_key: str) -> None:
    browser = signed_in(app, acme_key)
    assert "Max-Age=0" in browser.get("/dashboard/logout").headers["set-cookie"]
    assert browser.get("/dashboard").status_code == 401


def test_names_are_escaped_and_numbers_are_the_clients_own(app: FastAPI, acme_key: str) -> None:
    page = signed_in(app, acme_key).get("/dashboard", params={"range": "1d"}).text
    assert HOSTILE not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page  # in the tables
    assert "\\u003cscript\\u003e" in page  # in the charts' JSON
    assert value(page, "total-cost") == Decimal("1.75")  # acme's 1.25 + 0.50, not globex's 7
    assert value(page, "previous-cost") == 0
    assert "globex" not in page


def test_the_previous_period_is_the_same_length_before(app: FastAPI, acme_key: str) -> None:
    page = signed_in(app, acme_key).get("/dashboard", params={"range": "7d"}).text
    assert value(page, "total-cost") == Decimal("1.75")
    assert value(page, "previous-cost") == Decimal("0.25")
    assert "+600.0 %" in page


def test_a_view_the_aggregates_cannot_answer_says_why(app: FastAPI, acme_key: str) -> None:
    page = signed_in(app, acme_key).get("/dashboard", params={"label": "team=search", "user": "alice"}).text
    assert "a label query can also group or filter by" in page
    bad = signed_in(app, acme_key).get("/dashboard", params={"tz": "Mars/Olympus"})
    assert bad.status_code == 422 and "unknown time zone" in bad.text


def test_the_prices_page_marks_overrides_and_shows_own_contracts_at_a_date(
    app: FastAPI, store: Client, acme_key: str
) -> None:
    browser = signed_in(app, acme_key)
    now = browser.get("/dashboard/prices", params={"search": "gpt-4o-mini"}).text
    row = re.search(r'<td>openai</td><td><span data-model="gpt-4o-mini">gpt-4o-mini</span>(.*?)</tr>', now)
    assert row and "override" in row.group(1)
    assert "acme" in now and "globex" not in now and "&times; 0.8" in now
    before = browser.get("/dashboard/prices", params={"search": "gpt-4o-mini", "at": "2026-03-01T00:00"}).text
    row = re.search(r'<td>openai</td><td><span data-model="gpt-4o-mini">gpt-4o-mini</span>(.*?)</tr>', before)
    assert row and "override" not in row.group(1)
    assert "no contracts in force" in before
    admin = signed_in(app, make_key(store, admin=True))
    assert "globex" in admin.get("/dashboard/prices").text  # an admin sees every client's contract


def test_a_view_url_keeps_only_what_differs_from_the_defaults() -> None:
    view = View(client="acme", model="gpt-4o", tz="Asia/Kathmandu")
    assert view.url() == "/dashboard?client=acme&tz=Asia%2FKathmandu&model=gpt-4o"
    assert View().url() == "/dashboard"
    start, end = view.bounds(NOW)
    assert (start, end) == (datetime(2026, 11, 25, 8, 15, tzinfo=UTC), datetime(2026, 12, 2, 8, 15, tzinfo=UTC))


def test_an_api_client_with_a_header_key_sees_the_same_page(app: FastAPI, acme_key: str) -> None:
    page = api_client(app, acme_key).get("/dashboard", params={"range": "1d"}).text
    assert value(page, "total-cost") == Decimal("1.75")


def test_an_empty_store_shows_empty_panels(clickhouse: Client) -> None:
    app = create_app(lambda: clickhouse, settings=api_settings())
    admin = api_client(app, make_key(clickhouse, admin=True))
    page = admin.get("/dashboard")
    assert page.status_code == 200 and "no client has usage yet" in page.text
    prices = admin.get("/dashboard/prices")
    assert prices.status_code == 200 and "no book loaded" in prices.text
