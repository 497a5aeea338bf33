"""The query model on the real engine: local days sum to local months to the Decimal in zones of every
kind of offset (+5:45, +14, -12, a DST change), and grouping, filters, top N and paging equal sums
computed in Python from the events staged through the real view chain."""

from __future__ import annotations

import random
from collections import defaultdict
from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from clickhouse_connect.driver.client import Client

from tests.fixtures.clickhouse import migrated_store
from tests.fixtures.staging import event, stage
from usagemeter.query.analytics import run_query
from usagemeter.query.answer import OTHER
from usagemeter.query.spec import Bucket, Filter, UsageQuery

pytestmark = pytest.mark.clickhouse

ZONES = ["Asia/Kathmandu", "Pacific/Kiritimati", "Etc/GMT+12", "Europe/Berlin", "America/New_York"]
MODELS = ["gpt-4o", "gpt-4o-mini", "claude-x"]
SERVICES = ["chat-api", "batch", "search"]
STATUSES = ["ok", "ok", "ok", "error", "timeout"]
TIERS = ["", "batch", "priority"]
FIRST, AFTER = datetime(2026, 9, 28, tzinfo=UTC), datetime(2026, 11, 4, tzinfo=UTC)  # October, DST end included


def _events(count: int, seed: int = 13) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    span = int((AFTER - FIRST).total_seconds())
    made = []
    for _ in range(count):
        at = FIRST + timedelta(seconds=rng.randrange(span), microseconds=rng.randrange(1_000_000))
        fields: dict[str, Any] = {
            "user_id": rng.choice(["alice", "bob", "carol"]),
            "service": rng.choice(SERVICES),
            "status": rng.choice(STATUSES),
            "service_tier": rng.choice(TIERS),
            "input_tokens": rng.randrange(1, 5000),
            "output_tokens": rng.randrange(0, 900),
            "cost": str(Decimal(rng.randrange(1, 10**9)) / Decimal(10**11)),
            "labels": {"feature": rng.choice(["summarise", "translate"])} if rng.random() < 0.7 else {},
        }
        made.append(event("openai", rng.choice(MODELS), at, client_id=rng.choice(["acme", "globex"]), **fields))
    return made


@pytest.fixture(scope="module")
def store(store_dsn: str) -> Iterator[Client]:
    """One database for the module: every test only reads the events ``staged`` put there once."""
    with migrated_store(store_dsn) as client:
        yield client


@pytest.fixture(scope="module")
def staged(store: Client) -> list[dict[str, Any]]:
    events = _events(3000)
    for start in range(0, len(events), 1000):
        stage(store, events[start : start + 1000])
    return events


def _at(record: dict[str, Any]) -> datetime:
    return datetime(1970, 1, 1, tzinfo=UTC) + timedelta(microseconds=record["event_time"])


def _cost(records: list[dict[str, Any]], keep: Callable[[dict[str, Any]], bool]) -> Decimal:
    return sum((Decimal(r["cost"]) for r in records if keep(r)), Decimal(0))


def _within(low: datetime, high: datetime) -> Callable[[dict[str, Any]], bool]:
    return lambda record: low <= _at(record) < high


@pytest.mark.parametrize("tz", ZONES)
def test_days_of_a_month_sum_to_the_month_and_to_the_events(
    store: Client, staged: list[dict[str, Any]], tz: str
) -> None:
    zone = ZoneInfo(tz)
    start, end = datetime(2026, 10, 1), datetime(2026, 11, 1)  # naive: local time in tz
    query = UsageQuery(client_ids=["acme"], start=start, end=end, tz=tz, bucket="day")
    days = run_query(store, query)
    month = run_query(store, query.model_copy(update={"bucket": None}))

    assert len(days.rows) == 31
    assert [row.start for row in days.rows] == [
        datetime.combine(date(2026, 10, 1) + timedelta(days=n), datetime.min.time(), zone) for n in range(31)
    ]
    assert all(row.end == nxt.start for row, nxt in zip(days.rows, days.rows[1:], strict=False))
    assert sum((row.cost.total for row in days.rows), Decimal(0)) == month.total.cost.total
    assert month.rows[0].cost.total == month.total.cost.total
    acme = [r for r in staged if r["client_id"] == "acme"]
    in_month = _cost(acme, lambda r: start.replace(tzinfo=zone) <= _at(r) < end.replace(tzinfo=zone))
    assert month.total.cost.total == in_month
    for row in days.rows:
        assert row.start is not None and row.end is not None
        assert row.cost.total == _cost(acme, _within(row.start, row.end))
    if tz == "Europe/Berlin":  # the 25-hour day of the change back from summer time
        change = next(row for row in days.rows if row.start is not None and row.start.day == 25)
        assert change.start is not None and change.end is not None
        assert change.end.astimezone(UTC) - change.start.astimezone(UTC) == timedelta(hours=25)


@pytest.mark.parametrize("bucket", ["15m", "hour", "week", "month"])
def test_every_bucket_size_sums_to_the_range(store: Client, staged: list[dict[str, Any]], bucket: Bucket) -> None:
    query = UsageQuery(
        client_ids=["acme", "globex"],
        start=datetime(2026, 10, 5),
        end=datetime(2026, 10, 19),
        tz="Asia/Kathmandu",
        bucket=bucket,
    )
    answer = run_query(store, query)
    zone = ZoneInfo("Asia/Kathmandu")
    expected = _cost(
        staged, lambda r: datetime(2026, 10, 5, tzinfo=zone) <= _at(r) < datetime(2026, 10, 19, tzinfo=zone)
    )
    assert sum((row.cost.total for row in answer.rows), Decimal(0)) == expected == answer.total.cost.total
    for row in answer.rows:
        assert row.start is not None and row.end is not None and row.end > row.start


GROUPINGS = [
    pytest.param(["model"], [], lambda r: True, id="by model"),
    pytest.param(["service", "status"], [], lambda r: True, id="by service and status"),
    pytest.param(
        ["service_tier"],
        [Filter(dimension="status", op="eq", values=["ok"])],
        lambda r: r["status"] == "ok",
        id="tier, status eq",
    ),
    pytest.param(
        ["user"],
        [Filter(dimension="model", op="in", values=["gpt-4o", "claude-x"])],
        lambda r: r["model"] in {"gpt-4o", "claude-x"},
        id="user, model in",
    ),
    pytest.param(
        ["operation"],
        [Filter(dimension="service", op="not_in", values=["batch"])],
        lambda r: r["service"] != "batch",
        id="operation, service not in",
    ),
    pytest.param(["label:feature"], [], lambda r: "feature" in r["labels"], id="by label"),
    pytest.param(
        ["model"],
        [Filter(dimension="label:feature", op="eq", values=["translate"])],
        lambda r: r["labels"].get("feature") == "translate",
        id="model, label eq",
    ),
]

_FIELD = {
    "user": "user_id",
    "service": "service",
    "status": "status",
    "service_tier": "service_tier",
    "model": "model",
    "operation": "operation",
}


def _value(record: dict[str, Any], dimension: str) -> str:
    if dimension.startswith("label:"):
        return str(record["labels"][dimension.removeprefix("label:")])
    return str(record.get(_FIELD[dimension], "chat"))


@pytest.mark.parametrize(("group_by", "filters", "keep"), GROUPINGS)
def test_groups_and_filters_equal_python_sums(
    store: Client,
    staged: list[dict[str, Any]],
    group_by: list[str],
    filters: list[Filter],
    keep: Callable[[dict[str, Any]], bool],
) -> None:
    query = UsageQuery(
        client_ids=["globex"],
        start=datetime(2026, 10, 1),
        end=datetime(2026, 11, 1),
        group_by=group_by,
        filters=filters,
    )
    answer = run_query(store, query)
    expected: dict[tuple[str, ...], list[Decimal]] = defaultdict(lambda: [Decimal(0), Decimal(0)])
    for r in staged:
        if (
            r["client_id"] == "globex"
            and datetime(2026, 10, 1, tzinfo=UTC) <= _at(r) < datetime(2026, 11, 1, tzinfo=UTC)
            and keep(r)
        ):
            sums = expected[tuple(_value(r, d) for d in group_by)]
            sums[0] += Decimal(r["cost"])
            sums[1] += r["input_tokens"] + r["output_tokens"]
    got = {tuple(row.group[d] for d in group_by): [row.cost.total, Decimal(row.tokens.total)] for row in answer.rows}
    assert got == dict(expected)
    costs = [row.cost.total for row in answer.rows]
    assert costs == sorted(costs, reverse=True)


def test_top_n_folds_the_rest_into_other_and_pages(store: Client, staged: list[dict[str, Any]]) -> None:
    base = UsageQuery(
        client_ids=["acme"], start=datetime(2026, 10, 1), end=datetime(2026, 11, 1), group_by=["service", "model"]
    )
    everything = run_query(store, base)
    top = run_query(store, base.model_copy(update={"top": 2}))
    assert [row.group for row in top.rows[:2]] == [row.group for row in everything.rows[:2]]
    assert top.rows[2].group == {"service": OTHER, "model": OTHER}
    assert top.rows[2].cost.total == sum((row.cost.total for row in everything.rows[2:]), Decimal(0))
    assert top.total == everything.total
    first = run_query(store, base.model_copy(update={"limit": 4}))
    second = run_query(store, base.model_copy(update={"limit": 4, "offset": first.next_offset}))
    assert first.rows + second.rows == everything.rows[:8]
    assert first.total_rows == everything.total_rows == len(everything.rows)


@pytest.mark.parametrize(
    ("changes", "note"),
    [
        pytest.param({"client_ids": ["nobody"]}, "unknown client 'nobody'", id="client"),
        pytest.param({"filters": [Filter(dimension="model", values=["gpt-9"])]}, "unknown model 'gpt-9'", id="model"),
        pytest.param({"group_by": ["label:team"]}, "unknown label 'team'", id="label key"),
        pytest.param(
            {"filters": [Filter(dimension="label:feature", values=["poetry"])]},
            "unknown value of label 'feature' 'poetry'",
            id="label value",
        ),
        pytest.param(
            {"start": datetime(2025, 1, 1), "end": datetime(2025, 2, 1)},
            "no usage of these clients matches",
            id="quiet range",
        ),
    ],
)
def test_unknown_names_answer_empty_and_say_so(
    store: Client, staged: list[dict[str, Any]], changes: dict[str, Any], note: str
) -> None:
    query = UsageQuery(client_ids=["acme"], start=datetime(2026, 10, 1), end=datetime(2026, 11, 1)).model_copy(
        update=changes
    )
    answer = run_query(store, UsageQuery.model_validate(query.model_dump()))
    assert answer.rows == [] and answer.total.cost.total == 0
    assert any(note in line for line in answer.notes), answer.notes


def test_every_answer_says_how_fresh_it_is(store: Client, staged: list[dict[str, Any]]) -> None:
    answer = run_query(store, UsageQuery(client_ids=["acme"], start=datetime(2026, 10, 1), end=datetime(2026, 11, 1)))
    newest = max(_at(r) for r in staged)
    assert answer.freshness.as_of == newest  # staged without a worker's token: one pseudo-partition
    assert answer.freshness.late_events == sum(
        1
        for r in staged
        if r["client_id"] == "acme" and datetime(2026, 10, 1, tzinfo=UTC) <= _at(r) < datetime(2026, 11, 1, tzinfo=UTC)
    )
