"""A budget's standing in the period that contains an instant (now, or any past instant): spend, limit, bounds.

What ``usagemeter budgets show`` and ``GET /v1/budgets/{id}`` answer. Spend comes from the evaluator's
query for that period's bounds, so a past period is as queryable as the current one: nothing was reset.
"""

from __future__ import annotations

from datetime import datetime

from clickhouse_connect.driver.client import Client
from pydantic import AwareDatetime, BaseModel, ConfigDict

from usagemeter.budgets.alerts import percent_of
from usagemeter.budgets.model import Budget
from usagemeter.budgets.periods import window
from usagemeter.budgets.spend import NO_SPEND, read_spend
from usagemeter.query.models import Money


class BudgetStatus(BaseModel):
    model_config = ConfigDict(frozen=True)

    budget: Budget
    period_start: AwareDatetime
    period_end: AwareDatetime
    next_reset: AwareDatetime | None
    spend: Money
    limit: Money
    percent: Money
    crossed: list[str]
    """The thresholds whose level the spend has reached."""


def budget_status(client: Client, budget: Budget, at: datetime) -> BudgetStatus:
    """``budget``'s period containing the aware instant ``at``, with its spend."""
    period = window(budget.spec, at)
    windows = {budget.spec.spec_key: (period, period.end_utc)}
    spends = read_spend(client, windows, mode="ids", ids=[budget.budget_id], clients=[budget.spec.scope.client_id])
    amount = spends.get((budget.budget_id, budget.version), NO_SPEND).of(budget.spec.unit)
    spec = budget.spec
    return BudgetStatus(
        budget=budget,
        period_start=period.start,
        period_end=period.end,
        next_reset=period.next_reset,
        spend=amount,
        limit=spec.limit,
        percent=percent_of(amount, spec.limit),
        crossed=[t.key for t in spec.ordered_thresholds() if amount >= t.level(spec.limit)],
    )
