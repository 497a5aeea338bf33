"""The pure decision of one evaluation (``budgets.transitions.decide``), case by case."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from usagemeter.budgets.model import BudgetSpec, Scope, Threshold
from usagemeter.budgets.periods import window
from usagemeter.budgets.transitions import PeriodState, decide

NOW = datetime(2026, 5, 10, 12, tzinfo=UTC)
SPEC = BudgetSpec(scope=Scope(client_id="acme"), limit=Decimal(100), period="day")


def state(*fired: str, resolved: tuple[str, ...] = ()) -> PeriodState:
    made = PeriodState()
    if fired:
        made.apply("crossed", fired, tuple(0 for _ in fired))
    if resolved:
        made.apply("resolved", resolved, tuple(0 for _ in resolved))
    return made


def changes(spend: str, current: PeriodState, prior: PeriodState | None = None, spec: BudgetSpec = SPEC,
            recent: str = "0") -> list[tuple[str, tuple[str, ...], tuple[int, ...]]]:  # fmt: skip
    since = NOW - timedelta(hours=1)
    found = decide(spec, window(spec, NOW), spend=Decimal(spend), recent=(Decimal(recent), since), now=NOW,
                   state=current, prior=prior)  # fmt: skip
    return [(c.kind, c.thresholds, c.crossings) for c in found]


@pytest.mark.parametrize(
    ("spend", "current", "prior", "expected"),
    [
        pytest.param("49.99", state(), None, [], id="below every threshold"),
        pytest.param("50", state(), None, [("crossed", ("pct:50",), (0,))], id="a threshold reached exactly"),
        pytest.param(
            "100",
            state(),
            None,
            [("crossed", ("pct:50", "pct:80", "pct:100"), (0, 0, 0))],
            id="one evaluation, several thresholds, one change",
        ),
        pytest.param("90", state("pct:50", "pct:80"), None, [], id="already crossed: nothing"),
        pytest.param(
            "60",
            state("pct:50", "pct:80"),
            None,
            [("resolved", ("pct:80",), (0,))],
            id="spend fell below a crossed threshold",
        ),
        pytest.param(
            "85",
            state(resolved=("pct:80",)),
            None,
            [("crossed", ("pct:50", "pct:80"), (0, 1))],
            id="a re-armed threshold crossed again is the next crossing",
        ),
        pytest.param(
            "90",
            state(),
            state("pct:50", "pct:80"),
            [("carried", ("pct:50", "pct:80"), (0, 0))],
            id="a new version takes over what is still crossed",
        ),
        pytest.param(
            "60",
            state(),
            state("pct:50", "pct:80"),
            [("carried", ("pct:50",), (0,)), ("resolved", ("pct:80",), (0,))],
            id="a new version above the spend resolves",
        ),
    ],
)
def test_decide(spend: str, current: PeriodState, prior: PeriodState | None, expected: list[object]) -> None:
    assert changes(spend, current, prior) == expected


def test_absolute_thresholds_sort_among_percentages() -> None:
    spec = SPEC.model_copy(update={"thresholds": (Threshold(percent=Decimal(90)), Threshold(amount=Decimal(25)))})
    assert changes("95", state(), spec=spec) == [("crossed", ("abs:25", "pct:90"), (0, 0))]


def test_projection_needs_an_hour_and_a_rate_that_reaches_the_limit_in_the_period() -> None:
    assert changes("10", state(), recent="1") == [], "1 an hour: 22 by midnight"
    projected = decide(SPEC, window(SPEC, NOW), spend=Decimal(40), recent=(Decimal(10), NOW - timedelta(hours=1)),
                       now=NOW, state=state("pct:50"), prior=None)  # fmt: skip
    assert [c.kind for c in projected] == ["resolved", "projected"]
    assert projected[1].projected_at == NOW + timedelta(hours=6) and projected[1].rate_per_hour == Decimal(10)
    early = NOW.replace(hour=0, minute=30)
    first = decide(SPEC, window(SPEC, early), spend=Decimal(60), recent=(Decimal(60), early - timedelta(minutes=30)),
                   now=early, state=state(), prior=None)  # fmt: skip
    assert [c.kind for c in first] == ["crossed"], "half an hour into the day: no projection yet"
