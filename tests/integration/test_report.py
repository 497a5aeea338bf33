"""get_usage() and the query API on the real engine, over rows written straight into the aggregates.

Rows go into usage_15m_by_user one insert per row, so every row is its own part (merges stopped): the
by-model table gets them through its view, as in production, and a key can have several un-merged rows.
Rows of one key differ in their values on purpose: an identical block would be dropped by the tables'
insert deduplication window.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal, localcontext
from typing import Any

import pytest
from clickhouse_connect.driver.client import Client
from fastapi.testclient import TestClient

from tests.fixtures.api import BASE_URL, api_client, api_settings, make_key
from tests.fixtures.clickhouse import migrated_store
from tests.fixtures.clock import ManualClock
from usagemeter.api import create_app
from usagemeter.query import UsageApiError, UsageReport, fetch_usage, get_usage

pytestmark = pytest.mark.clickhouse

COLUMNS = (
    "client_id", "bucket", "user_id", "provider", "model", "events", "requests", "errors", "unpriced",
    "input_tokens", "output_tokens", "cache_read_tokens", "cache_write_tokens", "reasoning_tokens",
    "input_audio_tokens", "output_audio_tokens", "web_searches", "tool_calls",
    "cost_input", "cost_cache_read", "cost_cache_write", "cost_output", "cost_reasoning", "cost_audio",
    "cost_web_search", "cost_request", "cost_total",
)  # fmt: skip
COSTS = ("cost_input", "cost_cache_read", "cost_cache_write", "cost_output", "cost_reasoning", "cost_audio",
         "cost_web_search", "cost_request")  # fmt: skip

# Asia/Kolkata is +05:30: the local day 2026-03-10 is [2026-03-09 18:30, 2026-03-10 18:30) UTC.
NOW = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)
BIG = Decimal("1234567890123.123456789012345678")  # 31 digits: a 28-digit Decimal context would round sums
TINY = Decimal("0.000000000000000001")
BIG_PLUS_3_TINY = Decimal("1234567890123.123456789012345681")


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def row(bucket: str, user: str, provider: str, model: str, **values: Any) -> dict[str, Any]:
    base: dict[str, Any] = dict.fromkeys(COLUMNS, 0)
    base |= {name: Decimal(0) for name in (*COSTS, "cost_total")}
    base |= {"client_id": "acme", "bucket": utc(bucket), "user_id": user, "provider": provider, "model": model}
    base |= values
    base["events"] = base["events"] or base["requests"]
    with localcontext(prec=80):  # the default 28 digits would round BIG
        base["cost_total"] = sum((base[name] for name in COSTS), Decimal(0))
    return base


ROWS = [
    # 23:45 local on 2026-03-09: before the local day
    row("2026-03-09 18:15", "u1", "openai", "gpt-4o", requests=1, input_tokens=10, output_tokens=5,
        cost_cache_read=TINY),
    # 00:00 local: the day's first bucket
    row("2026-03-09 18:30", "u1", "openai", "gpt-4o", requests=2, input_tokens=1000, output_tokens=200,
        cache_read_tokens=300, cost_input=BIG),
    # 23:45 local: the day's last bucket
    row("2026-03-10 18:15", "u2", "anthropic", "claude-sonnet-4", requests=3, errors=1, input_tokens=40,
        output_tokens=60, reasoning_tokens=20, cost_output=Decimal("0.25"), cost_reasoning=Decimal("0.25")),
    # 00:00 local on 2026-03-11: after the local day
    row("2026-03-10 18:30", "u2", "anthropic", "claude-haiku-4", requests=4, unpriced=1, input_tokens=7,
        output_tokens=3, cost_request=Decimal(2)),
    # the same key as the day's first bucket, in another part
    row("2026-03-09 18:30", "u1", "openai", "gpt-4o", requests=5, input_tokens=1, output_tokens=1,
        cache_write_tokens=1, web_searches=1, cost_web_search=2 * TINY),
    # another client, same day: never in acme's report
    row("2026-03-10 06:00", "u1", "openai", "gpt-4o", client_id="globex", requests=100, input_tokens=100,
        cost_input=Decimal(100)),
]  # fmt: skip


def insert(client: Client, table: str, rows: list[dict[str, Any]]) -> None:
    for one in rows:  # one insert, one part
        client.insert(
            table,
            [[one[name]] for name in COLUMNS],
            column_names=list(COLUMNS),
            column_oriented=True,
            settings={"async_insert": 0},
        )


@pytest.fixture(scope="module")
def usage_store(store_dsn: str) -> Iterator[Client]:
    """ROWS, unmerged, in one database for the module: its tests read reports (and make keys, which no
    report reads), so they share what would otherwise be a migration and six inserts each."""
    with migrated_store(store_dsn) as client:
        for table in ("usage_15m_by_user", "usage_15m_by_model"):
            client.command("SYSTEM STOP MERGES {table:Identifier}", parameters={"table": table})
        insert(client, "usage_15m_by_user", ROWS)
        yield client


def test_rows_of_one_key_are_unmerged(usage_store: Client) -> None:
    physical = usage_store.query(
        "SELECT count() FROM usage_15m_by_model WHERE client_id = 'acme' AND bucket = {b:DateTime('UTC')}",
        parameters={"b": utc("2026-03-09 18:30")},
    ).result_rows[0][0]
    assert physical == 2


def test_client_report_sums_exactly_and_splits_the_local_day(usage_store: Client) -> None:
    report = get_usage(usage_store, "acme", period="day", tz="Asia/Kolkata", now=NOW)

    assert report.total_requests == 15
    assert report.total_tokens == 15 + 1200 + 100 + 10 + 2
    assert report.total_cost == Decimal("1234567890125.623456789012345681")
    assert (report.events, report.errors, report.unpriced, report.web_searches) == (15, 1, 1, 1)

    day = report.current_period
    assert day.period_start.isoformat() == "2026-03-10T00:00:00+05:30"
    assert day.period_end.isoformat() == "2026-03-11T00:00:00+05:30"
    assert (day.requests, day.tokens) == (2 + 3 + 5, 1200 + 100 + 2)
    assert day.cost == Decimal("1234567890123.623456789012345680")

    assert list(report.by_model) == ["gpt-4o", "claude-haiku-4", "claude-sonnet-4"]  # most expensive first
    assert report.by_model["gpt-4o"].cost == BIG_PLUS_3_TINY
    assert report.by_model["claude-sonnet-4"].model_dump() == {"requests": 3, "tokens": 100, "cost": Decimal("0.5")}
    assert report.by_provider["anthropic"].model_dump() == {"requests": 7, "tokens": 110, "cost": Decimal("2.5")}
    assert report.by_provider["openai"].requests == 8
    assert report.by_user == {}

    costs = report.cost_breakdown
    assert (costs.input, costs.cache_read, costs.web_search) == (BIG, TINY, 2 * TINY)
    assert (costs.output, costs.reasoning, costs.request, costs.total) == (
        Decimal("0.25"), Decimal("0.25"), Decimal(2), report.total_cost,
    )  # fmt: skip
    assert report.tokens.model_dump() == {
        "input": 1058, "output": 269, "cache_read": 300, "cache_write": 1, "reasoning": 20,
        "input_audio": 0, "output_audio": 0, "total": 1327,
    }  # fmt: skip


def test_month_in_kolkata_holds_every_row(usage_store: Client) -> None:
    report = get_usage(usage_store, "acme", period="month", tz="Asia/Kolkata", now=NOW)

    assert report.current_period.period_start.isoformat() == "2026-03-01T00:00:00+05:30"
    assert report.current_period.requests == report.total_requests == 15
    assert report.current_period.cost == report.total_cost


def test_utc_day_moves_the_boundary(usage_store: Client) -> None:
    report = get_usage(usage_store, "acme", period="day", tz="UTC", now=NOW)

    # UTC 2026-03-10 holds the 18:15 and 18:30 buckets of that date only.
    assert report.current_period.requests == 3 + 4
    assert report.current_period.cost == Decimal("2.5")


def test_one_user_reads_the_per_user_table(usage_store: Client) -> None:
    report = get_usage(usage_store, "acme", user_id="u2", period="day", tz="Asia/Kolkata", now=NOW)

    assert report.user_id == "u2"
    assert (report.total_requests, report.total_cost) == (7, Decimal("2.5"))
    assert (report.current_period.requests, report.current_period.cost) == (3, Decimal("0.5"))
    assert set(report.by_provider) == {"anthropic"}


def test_by_user_when_asked(usage_store: Client) -> None:
    report = get_usage(usage_store, "acme", include_users=True, now=NOW)

    assert list(report.by_user) == ["u1", "u2"]
    assert report.by_user["u1"].model_dump() == {"requests": 8, "tokens": 1217, "cost": BIG_PLUS_3_TINY}
    assert report.total_cost == Decimal("1234567890125.623456789012345681")


def test_since_cuts_the_totals_not_the_period(usage_store: Client) -> None:
    since = datetime(2026, 3, 10)  # naive: local midnight in the report's zone, 2026-03-09 18:30 UTC
    report = get_usage(usage_store, "acme", period="day", tz="Asia/Kolkata", since=since, now=NOW)

    assert report.since == utc("2026-03-09 18:30")
    assert report.total_requests == 14
    assert report.total_cost == Decimal("1234567890125.623456789012345680")


def test_since_off_a_bucket_boundary_is_refused(usage_store: Client) -> None:
    with pytest.raises(ValueError, match="15-minute boundary"):
        get_usage(usage_store, "acme", since=utc("2026-03-10 00:07"), now=NOW)


def test_unknown_client_gives_an_empty_report(usage_store: Client) -> None:
    report = get_usage(usage_store, "nobody", now=NOW)

    assert (report.total_requests, report.total_cost, report.by_model) == (0, Decimal(0), {})
    assert report.model_dump(mode="json")["total_cost"] == "0"


def test_rows_written_straight_into_the_by_model_table(clickhouse: Client) -> None:
    parts = [
        row("2026-03-10 10:00", "", "openai", "gpt-4o", requests=1, cost_output=Decimal("0.1")),
        row("2026-03-10 10:00", "", "openai", "gpt-4o", requests=2, cost_output=Decimal("0.2")),
    ]
    insert(clickhouse, "usage_15m_by_model", parts)

    report = get_usage(clickhouse, "acme", period="day", now=NOW)

    assert report.total_requests == report.current_period.requests == 3
    assert report.total_cost == Decimal("0.3")


def _api(store: Client) -> TestClient:
    """The API over ``store`` at ``NOW``, as an admin."""
    app = create_app(lambda: store, clock=ManualClock(now=NOW), settings=api_settings())
    return api_client(app, make_key(store, admin=True))


def test_http_api_serves_the_report_with_exact_costs(usage_store: Client) -> None:
    api = _api(usage_store)

    assert api.get("/healthz").json() == {"status": "ok"}
    response = api.get("/v1/usage", params={"client_id": "acme", "period": "day", "tz": "Asia/Kolkata"})
    assert response.status_code == 200
    body = response.json()
    assert body["total_cost"] == "1234567890125.623456789012345681"
    assert body["current_period"]["cost"] == "1234567890123.62345678901234568"
    assert body["current_period"]["period_start"] == "2026-03-10T00:00:00+05:30"
    assert body["by_model"]["claude-sonnet-4"] == {"requests": 3, "tokens": 100, "cost": "0.5"}
    assert UsageReport.model_validate_json(response.content) == get_usage(
        usage_store, "acme", period="day", tz="Asia/Kolkata", now=NOW
    )


def test_http_api_refuses_bad_input_with_the_reason(usage_store: Client) -> None:
    api = _api(usage_store)

    bad_zone = api.get("/v1/usage", params={"client_id": "acme", "tz": "Mars/Olympus"})
    assert bad_zone.status_code == 422
    assert "unknown time zone 'Mars/Olympus'" in bad_zone.json()["detail"]
    assert api.get("/v1/usage", params={"client_id": "acme", "period": "week"}).status_code == 422
    assert api.get("/v1/usage").status_code == 422


def test_fetch_usage_round_trips_the_report(usage_store: Client) -> None:
    api = TestClient(create_app(lambda: usage_store, clock=ManualClock(now=NOW), settings=api_settings()), BASE_URL)
    acme = make_key(usage_store, clients=["acme"])

    report = fetch_usage(BASE_URL, "acme", user_id="u1", include_users=True, http_client=api, api_key=acme)

    assert report.total_cost == BIG_PLUS_3_TINY
    assert list(report.by_user) == ["u1"]
    with pytest.raises(UsageApiError, match="unknown time zone") as failure:
        fetch_usage(BASE_URL, "acme", tz="Nowhere/Else", http_client=api, api_key=acme)
    assert failure.value.status_code == 422
    with pytest.raises(UsageApiError, match="may not read client 'globex'") as foreign:
        fetch_usage(BASE_URL, "globex", http_client=api, api_key=acme)
    assert foreign.value.status_code == 403
