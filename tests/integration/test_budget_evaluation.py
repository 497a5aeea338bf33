"""Budget evaluation on the real engine: every threshold alerts once per crossing, periods in any zone.

Events go through the real view chain (``stage``), so spend is what the aggregates hold; the clock is
set by hand, so periods roll over without waiting. Costs come from a price book with one model at a round
price (``with_model``): 1,000,000 input tokens of NEW_MODEL cost exactly 1 USD.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from clickhouse_connect.driver.client import Client

from tests.fixtures.clock import ManualClock
from tests.fixtures.snapshots import NEW_MODEL, with_model
from tests.fixtures.staging import event, stage
from usagemeter.budgets.alerts import Alert
from usagemeter.budgets.evaluator import Evaluator
from usagemeter.budgets.model import BudgetPatch, BudgetSpec, Scope, Threshold
from usagemeter.budgets.periods import recent_start, window
from usagemeter.budgets.spend import read_spend
from usagemeter.budgets.status import budget_status
from usagemeter.budgets.store import BudgetStore
from usagemeter.pricing import price_updates, reprice

pytestmark = pytest.mark.clickhouse

ONE_USD = 1_000_000  # input tokens of NEW_MODEL per dollar


@pytest.fixture
def store(clickhouse: Client) -> Client:
    price_updates.apply(clickhouse, price_updates.read_snapshot(with_model({"input_mtok": "1", "output_mtok": "2"})))
    return clickhouse


def spend(client: Client, at: datetime, dollars: str, **fields: Any) -> None:
    """Usage costing ``dollars`` at ``at``."""
    tokens = int(Decimal(dollars) * ONE_USD)
    stage(client, [event("openai", NEW_MODEL, at, input_tokens=tokens, **fields)])


def keys(alerts: list[Alert]) -> list[tuple[str, tuple[str, ...]]]:
    return [(a.kind, a.thresholds) for a in alerts]


def budget(store: BudgetStore, limit: str = "10", **fields: Any) -> str:
    scope = fields.pop("scope", Scope(client_id="acme"))
    return store.create(BudgetSpec(scope=scope, limit=Decimal(limit), **fields)).budget_id


def test_each_threshold_alerts_once_and_one_event_lists_all_it_crossed(store: Client) -> None:
    clock = ManualClock(now=datetime(2026, 5, 10, 12, tzinfo=UTC))
    budget(BudgetStore(store, clock=clock))
    evaluator = Evaluator(store, clock=clock)
    evaluator.reload()
    assert evaluator.evaluate("all").alerts == []

    spend(store, clock.now - timedelta(hours=1), "6")
    assert keys(evaluator.evaluate("all").alerts) == [("crossed", ("pct:50",))]
    assert evaluator.evaluate("all").alerts == [], "no second alert while spend stays above"

    spend(store, clock.now - timedelta(minutes=30), "4.5")  # 10.5: 80 % and 100 % at once
    alerts = evaluator.evaluate("all").alerts
    assert keys(alerts) == [("crossed", ("pct:80", "pct:100"))]
    assert alerts[0].spend == Decimal("10.5") and alerts[0].percent == Decimal("105.00")
    assert alerts[0].top_models[0].name == f"openai/{NEW_MODEL}"

    restarted = Evaluator(store, clock=clock)
    restarted.reload()
    assert restarted.evaluate("all").alerts == [], "the ledger, not memory, says what was sent"


def test_thresholds_re_arm_in_the_next_period(store: Client) -> None:
    clock = ManualClock(now=datetime(2026, 5, 31, 23, 50, tzinfo=UTC))
    budget(BudgetStore(store, clock=clock), limit="1", period="day")
    evaluator = Evaluator(store, clock=clock)
    evaluator.reload()
    spend(store, clock.now - timedelta(minutes=5), "1")
    first = evaluator.evaluate("all").alerts
    assert keys(first) == [("crossed", ("pct:50", "pct:80", "pct:100"))]

    clock.now += timedelta(minutes=20)  # 2026-06-01 00:10 UTC
    assert evaluator.evaluate("all").alerts == []
    spend(store, clock.now - timedelta(minutes=5), "0.6")
    second = evaluator.evaluate("all").alerts
    assert keys(second) == [("crossed", ("pct:50",))]
    assert second[0].period_start == datetime(2026, 6, 1, tzinfo=UTC) != first[0].period_start
    assert second[0].alert_id != first[0].alert_id


@pytest.mark.parametrize(
    "tz",
    [
        pytest.param("Asia/Tokyo", id="UTC+9"),
        pytest.param("Pacific/Kiritimati", id="UTC+14"),
        pytest.param("Etc/GMT+12", id="UTC-12"),
        pytest.param("Asia/Kathmandu", id="UTC+5:45"),
    ],
)
def test_a_day_budget_counts_the_local_day(store: Client, tz: str) -> None:
    from zoneinfo import ZoneInfo  # noqa: PLC0415

    local_midnight = datetime(2026, 5, 10, tzinfo=ZoneInfo(tz))
    clock = ManualClock(now=(local_midnight + timedelta(hours=12)).astimezone(UTC))
    budgets = BudgetStore(store, clock=clock)
    budget_id = budget(budgets, limit="10", period="day", tz=tz)
    spend(store, local_midnight - timedelta(minutes=1), "7")  # the day before, locally
    spend(store, local_midnight, "2")
    spend(store, local_midnight + timedelta(hours=23, minutes=59), "1")
    spend(store, local_midnight + timedelta(days=1), "9")  # the next day

    status = budget_status(store, budgets.get(budget_id), clock.now)
    assert (status.spend, status.period_start, status.period_end) == (
        Decimal(3),
        local_midnight,
        local_midnight + timedelta(days=1),
    )
    assert status.next_reset == status.period_end
    yesterday = budget_status(store, budgets.get(budget_id), clock.now - timedelta(days=1))
    assert yesterday.spend == Decimal(7), "a past period stays queryable"


@pytest.mark.parametrize(
    ("day", "hours"),
    [
        pytest.param(datetime(2026, 3, 8), 23, id="23-hour day"),
        pytest.param(datetime(2026, 11, 1), 25, id="25-hour day"),
    ],
)
def test_a_day_across_a_dst_change(store: Client, day: datetime, hours: int) -> None:
    from zoneinfo import ZoneInfo  # noqa: PLC0415

    zone = ZoneInfo("America/New_York")
    start = day.replace(tzinfo=zone)
    clock = ManualClock(now=(start + timedelta(hours=12)).astimezone(UTC))
    budgets = BudgetStore(store, clock=clock)
    budget_id = budget(budgets, period="day", tz="America/New_York")
    utc_start = start.astimezone(UTC)
    for hour in range(-1, hours + 1):  # one dollar per real hour, from an hour before to an hour after
        spend(store, utc_start + timedelta(hours=hour, minutes=30), "1")
    status = budget_status(store, budgets.get(budget_id), clock.now)
    assert status.spend == Decimal(hours)
    assert (status.period_end - status.period_start) == timedelta(days=1)
    assert (status.period_end.astimezone(UTC) - status.period_start.astimezone(UTC)) == timedelta(hours=hours)


def test_a_week_starting_sunday_and_a_rolling_seven_days(store: Client) -> None:
    clock = ManualClock(now=datetime(2026, 5, 13, 12, tzinfo=UTC))  # a Wednesday
    budgets = BudgetStore(store, clock=clock)
    week = budget(budgets, period="week", week_start="sunday")
    rolling = budget(budgets, period="rolling", rolling_days=7)
    spend(store, datetime(2026, 5, 9, 23, 59, tzinfo=UTC), "1")  # Saturday: the week before; inside 7 days
    spend(store, datetime(2026, 5, 10, 0, 0, tzinfo=UTC), "2")  # Sunday
    spend(store, datetime(2026, 5, 6, 11, 0, tzinfo=UTC), "4")  # 7 days and an hour ago
    week_status = budget_status(store, budgets.get(week), clock.now)
    assert (week_status.spend, week_status.period_start) == (Decimal(2), datetime(2026, 5, 10, tzinfo=UTC))
    rolling_status = budget_status(store, budgets.get(rolling), clock.now)
    assert rolling_status.spend == Decimal(3) and rolling_status.next_reset is None


def test_absolute_thresholds_and_overlapping_budgets(store: Client) -> None:
    clock = ManualClock(now=datetime(2026, 5, 10, 12, tzinfo=UTC))
    budgets = BudgetStore(store, clock=clock)
    whole = budget(budgets, limit="100", thresholds=(Threshold(amount=Decimal(2)), Threshold(percent=Decimal(100))))
    alice = budget(budgets, limit="1", scope=Scope(client_id="acme", user_id="alice"))
    model = budget(budgets, limit="3", scope=Scope(client_id="acme", model=NEW_MODEL))
    team = budget(budgets, limit="2", scope=Scope(client_id="acme", label_key="team", label_value="search"))
    other = budget(budgets, limit="1", scope=Scope(client_id="globex"))
    evaluator = Evaluator(store, clock=clock)
    evaluator.reload()
    spend(store, clock.now - timedelta(hours=2), "1", user_id="alice", labels={"team": "search"})
    spend(store, clock.now - timedelta(hours=1), "1.5", user_id="bob", labels={"team": "ads"})
    alerts = evaluator.evaluate("all").alerts
    by_budget = {a.budget_id: a.thresholds for a in alerts}
    assert by_budget == {
        whole: ("abs:2",),
        alice: ("pct:50", "pct:80", "pct:100"),
        model: ("pct:50", "pct:80"),
        team: ("pct:50",),
    }
    assert other not in by_budget
    assert {a.budget_id: a.spend for a in alerts} == {
        whole: Decimal("2.5"), alice: Decimal(1), model: Decimal("2.5"), team: Decimal(1),
    }  # fmt: skip


def test_touched_evaluates_only_the_budgets_an_insert_reached(store: Client) -> None:
    clock = ManualClock(now=datetime.now(UTC))
    budgets = BudgetStore(store, clock=clock)
    acme = budget(budgets, limit="1")
    globex = budget(budgets, limit="1", scope=Scope(client_id="globex"))
    evaluator = Evaluator(store, clock=clock)
    evaluator.reload()
    assert evaluator.evaluate("touched").budgets == 2, "the first evaluation reads every budget"
    spend(store, clock.now - timedelta(minutes=1), "2", client_id="globex")
    evaluated = evaluator.evaluate("touched")
    assert (evaluated.budgets, [a.budget_id for a in evaluated.alerts]) == (1, [globex])
    assert acme != globex


def test_touched_reads_a_narrowed_budget_only_when_its_user_provider_or_model_was_touched(store: Client) -> None:
    """A client's and its label budgets follow the client; user, provider and model budgets their own key."""
    now = datetime.now(UTC)
    budgets = BudgetStore(store)
    reached = {
        budget(budgets, limit="100"),
        budget(budgets, limit="100", scope=Scope(client_id="acme", user_id="alice")),
        budget(budgets, limit="100", scope=Scope(client_id="acme", provider="openai")),
        budget(budgets, limit="100", scope=Scope(client_id="acme", model=NEW_MODEL)),
        budget(budgets, limit="100", scope=Scope(client_id="acme", label_key="team", label_value="ml")),
    }
    budget(budgets, limit="100", scope=Scope(client_id="acme", user_id="bob"))
    budget(budgets, limit="100", scope=Scope(client_id="acme", provider="anthropic"))
    budget(budgets, limit="100", scope=Scope(client_id="acme", model="gpt-4o"))
    budget(budgets, limit="100", scope=Scope(client_id="globex", user_id="alice"))
    earlier = now - timedelta(minutes=2)
    stage(store, [
        event("anthropic", "claude-3-5-haiku-latest", earlier, user_id="bob"),
        event("openai", "gpt-4o", earlier, user_id="bob"),
        event("openai", NEW_MODEL, earlier, client_id="globex", user_id="alice"),
    ])  # fmt: skip
    time.sleep(0.05)
    since = datetime.now(UTC)
    time.sleep(0.05)
    spend(store, now - timedelta(minutes=1), "2", user_id="alice", labels={"team": "ml"})
    windows = {}
    for b in budgets.current():
        period = window(b.spec, now)
        windows[b.spec.spec_key] = (period, recent_start(period, now))
    assert {budget_id for budget_id, _ in read_spend(store, windows, mode="touched", since=since)} == reached
    assert len(read_spend(store, windows, mode="all")) == 9, "every budget has usage in its period"


def test_a_raised_limit_resolves_and_re_arms_and_a_channel_change_does_not_alert(store: Client) -> None:
    clock = ManualClock(now=datetime(2026, 5, 10, 12, tzinfo=UTC))
    budgets = BudgetStore(store, clock=clock)
    budget_id = budget(budgets, limit="10")
    evaluator = Evaluator(store, clock=clock)
    evaluator.reload()
    spend(store, clock.now - timedelta(hours=1), "9")
    assert keys(evaluator.evaluate("all").alerts) == [("crossed", ("pct:50", "pct:80"))]

    budgets.update(budget_id, BudgetPatch(name="renamed"))
    evaluator.reload()
    assert evaluator.evaluate("all").alerts == [], "a new version carries the crossed thresholds over"

    budgets.update(budget_id, BudgetPatch(limit=Decimal(15)))
    evaluator.reload()
    assert keys(evaluator.evaluate("all").alerts) == [("resolved", ("pct:80",))]  # 9: 50 % is 7.5, 80 % is 12
    spend(store, clock.now - timedelta(minutes=90), "4")  # 13 of 15 (older than an hour: nothing projected)
    assert keys(evaluator.evaluate("all").alerts) == [("crossed", ("pct:80",))]


def test_a_reprice_that_lowers_spend_resolves_and_one_that_raises_it_alerts(store: Client) -> None:
    clock = ManualClock(now=datetime.now(UTC))
    budget(BudgetStore(store, clock=clock), limit="10")
    evaluator = Evaluator(store, clock=clock)
    evaluator.reload()
    spend(store, clock.now - timedelta(hours=1), "9")
    assert keys(evaluator.evaluate("all").alerts) == [("crossed", ("pct:50", "pct:80"))]

    cheaper = with_model({"input_mtok": "0.5", "output_mtok": "2"})
    price_updates.apply(store, price_updates.read_snapshot(cheaper))
    reprice.reprice(store, reprice.Selection(since=clock.now - timedelta(days=1)))
    assert keys(evaluator.evaluate("all").alerts) == [("resolved", ("pct:50", "pct:80"))]  # 4.5

    dearer = with_model({"input_mtok": "1.2", "output_mtok": "2"})
    price_updates.apply(store, price_updates.read_snapshot(dearer))
    reprice.reprice(store, reprice.Selection(since=clock.now - timedelta(days=1)))
    alerts = evaluator.evaluate("all").alerts
    assert keys(alerts) == [("crossed", ("pct:50", "pct:80", "pct:100"))]  # 10.8
    assert alerts[0].crossings == (1, 1, 0), "the second crossing of 50 % and 80 % has its own id"


def test_a_projected_overrun_alerts_once_per_period(store: Client) -> None:
    clock = ManualClock(now=datetime(2026, 5, 10, 12, tzinfo=UTC))
    budget(BudgetStore(store, clock=clock), limit="100", period="day", thresholds=(Threshold(percent=Decimal(100)),))
    evaluator = Evaluator(store, clock=clock)
    evaluator.reload()
    for minutes in range(5, 60, 10):  # 6 dollars in the last hour: 6/h, 12 h left, 10 spent: 82 by midnight
        spend(store, clock.now - timedelta(minutes=minutes), "1")
    spend(store, clock.now - timedelta(hours=3), "4")
    assert evaluator.evaluate("all").alerts == []
    for minutes in range(1, 60, 2):  # 30 more in the last hour: 36/h reaches 100 in about 1.5 h
        spend(store, clock.now - timedelta(minutes=minutes), "1")
    alerts = evaluator.evaluate("all").alerts
    assert keys(alerts) == [("projected", ("projected",))]
    assert alerts[0].projected_at is not None and clock.now < alerts[0].projected_at < datetime(2026, 5, 11, tzinfo=UTC)
    spend(store, clock.now - timedelta(minutes=1), "1")
    assert evaluator.evaluate("all").alerts == []


def test_alert_counts_are_per_crossing(store: Client, clickhouse_factory: Callable[[], Any]) -> None:
    """The ledger itself: one row per (budget, version, period, threshold, crossing)."""
    clock = ManualClock(now=datetime(2026, 5, 10, 12, tzinfo=UTC))
    budget(BudgetStore(store, clock=clock), limit="4")
    evaluator = Evaluator(store, clock=clock)
    evaluator.reload()
    for _ in range(5):
        spend(store, clock.now - timedelta(hours=1), "1")
        evaluator.evaluate("all")
    rows = store.query("SELECT arrayJoin(thresholds) FROM budget_alerts WHERE kind = 'crossed'").result_rows
    assert Counter(r[0] for r in rows) == {"pct:50": 1, "pct:80": 1, "pct:100": 1}
