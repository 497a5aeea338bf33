"""The seeds' report shapes (per-user stats, per-client usage, request details, rates) against the staged events,
as functions and over HTTP."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from clickhouse_connect.driver.client import Client

from tests.fixtures.api import api_client, api_settings, make_key
from tests.fixtures.staging import event, stage
from usagemeter.api.app import create_app
from usagemeter.query.shapes import (
    ClientUsage,
    Rates,
    RequestDetails,
    UsageStats,
    client_usage,
    get_request_details,
    rates,
    usage_stats,
)

pytestmark = pytest.mark.clickhouse

AT = datetime(2026, 11, 10, 12, 0, tzinfo=UTC)


@pytest.fixture
def staged(clickhouse: Client) -> None:
    stage(
        clickhouse,
        [
            event("openai", "gpt-4o", AT - timedelta(seconds=30), user_id="alice", request_id="r-1",
                  input_tokens=100, output_tokens=10, cost="0.5", latency_ms=800),
            event("openai", "gpt-4o", AT - timedelta(minutes=30), user_id="bob", request_id="r-2",
                  input_tokens=200, output_tokens=20, cost="1.25", status="error", error="upstream 500"),
            event("anthropic", "claude-x", AT - timedelta(hours=3), user_id="alice", request_id="r-3",
                  input_tokens=300, output_tokens=30, cost="2"),
        ],
    )  # fmt: skip


def test_user_stats_and_client_usage(clickhouse: Client, staged: None) -> None:
    start, end = datetime(2026, 11, 10), datetime(2026, 11, 11)
    alice = usage_stats(clickhouse, "acme", user_id="alice", start=start, end=end)
    assert (alice.total_requests, alice.total_prompt_tokens, alice.total_completion_tokens) == (2, 400, 40)
    assert alice.total_cost == Decimal("2.5") and alice.total_tokens == 440
    usage = client_usage(clickhouse, "acme", recent=2, start=start, end=end)
    assert (usage.total_requests, usage.successful_requests, usage.total_cost) == (3, 2, Decimal("3.75"))
    by_model = {m.model_name: m for m in usage.models_used}
    assert by_model["gpt-4o"].total_cost == Decimal("1.75")
    assert by_model["gpt-4o"].last_used == AT - timedelta(seconds=30)
    assert [r.request_id for r in usage.recent_requests] == ["r-1", "r-2"]


def test_request_details_and_rates(clickhouse: Client, staged: None) -> None:
    details = get_request_details(clickhouse, "acme", "r-2")
    assert details is not None and (details.status, details.error, details.total_cost) == (
        "error",
        "upstream 500",
        Decimal("1.25"),
    )
    assert get_request_details(clickhouse, "globex", "r-2") is None  # another client's request is not found
    now = rates(clickhouse, "acme", AT)
    assert (now.requests_last_minute, now.tokens_last_minute) == (1, 110)
    assert (now.requests_last_hour, now.tokens_last_hour) == (2, 330)


def test_each_shape_over_http_equals_the_function_and_stays_in_the_keys_client(
    clickhouse: Client, staged: None
) -> None:
    acme = api_client(create_app(lambda: clickhouse, settings=api_settings()), make_key(clickhouse, clients=["acme"]))
    window = {"start": "2026-11-10T00:00:00", "end": "2026-11-11T00:00:00", "tz": "UTC"}
    start, end = datetime(2026, 11, 10), datetime(2026, 11, 11)
    stats = acme.get("/v1/clients/acme/stats", params={**window, "user_id": "alice"})
    assert UsageStats.model_validate_json(stats.content) == usage_stats(
        clickhouse, "acme", user_id="alice", start=start, end=end
    )
    activity = acme.get("/v1/clients/acme/activity", params={**window, "recent": "2"})
    assert ClientUsage.model_validate_json(activity.content) == client_usage(
        clickhouse, "acme", recent=2, start=start, end=end
    )
    found = acme.get("/v1/clients/acme/requests/r-2")
    assert RequestDetails.model_validate_json(found.content) == get_request_details(clickhouse, "acme", "r-2")
    assert acme.get("/v1/clients/acme/requests/r-404").status_code == 404
    now = acme.get("/v1/clients/acme/rates", params={"at": AT.isoformat()})
    assert Rates.model_validate_json(now.content) == rates(clickhouse, "acme", AT)
    assert acme.get("/v1/clients/globex/stats").status_code == 403
    too_long = acme.get("/v1/clients/acme/activity", params={"start": "2020-01-01", "end": "2026-01-01"})
    assert too_long.status_code == 422 and "at most" in too_long.json()["detail"]
