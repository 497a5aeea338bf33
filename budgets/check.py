"""The pre-flight check: may this call go ahead under the budgets that cover it?

``BudgetChecker.check`` finds every budget whose scope covers the call (its client; its user, provider
or model, or one of its labels), reads their period spend with the evaluator's query (``budgets.spend``,
the aggregates reports read), adds the call's estimated cost when one is given (``budgets.quote``: the
ingestion's own pricing), and refuses when a **hard** budget would reach its limit. Soft budgets are
reported, never refused.

Spend is at most ``freshness_s`` old: the worker's ingest lag (``ingest_lag_s``: batch wait plus insert)
plus this cache's TTL. Calls made meanwhile are not in it, so the limit can be overshot by up to
``worst_case_overshoot`` = the trailing hour's run rate x ``freshness_s`` (plus the estimate's error): a
gateway that needs a tighter bound must lower both, or reserve the difference in its limits.
"""

from __future__ import annotations

import threading
import time
from datetime import datetime
from decimal import Decimal
from typing import Final

from clickhouse_connect.driver.client import Client
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from usagemeter.budgets.model import Budget, Mode, Unit
from usagemeter.budgets.periods import recent_start, window
from usagemeter.budgets.quote import Quote, Usage, quote
from usagemeter.budgets.settings import BudgetCheckSettings
from usagemeter.budgets.spend import NO_SPEND, Spend, read_spend
from usagemeter.budgets.store import BudgetStore
from usagemeter.query.models import Money
from usagemeter.schemas.clock import SYSTEM_CLOCK, Clock, utc_datetime
from usagemeter.schemas.errors import BudgetExceeded

_BUDGETS_TTL_S: Final = 5.0
"""Budget definitions are re-read this often, or at once after ``invalidate``."""


class CheckRequest(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    client_id: str = Field(min_length=1, max_length=256)
    user_id: str | None = Field(default=None, max_length=256)
    provider: str | None = Field(default=None, max_length=256)
    model: str | None = Field(default=None, max_length=256)
    labels: dict[str, str] = Field(default_factory=dict, max_length=64)
    estimate: Usage | None = Field(default=None, description="the call's expected usage, priced and added")


class Verdict(BaseModel):
    """One covering budget's answer."""

    model_config = ConfigDict(frozen=True)

    budget_id: str
    name: str
    mode: Mode
    unit: Unit
    spend: Money
    estimate: Money
    limit: Money
    remaining: Money
    allowed: bool
    period_start: AwareDatetime
    period_end: AwareDatetime
    next_reset: AwareDatetime | None
    worst_case_overshoot: Money
    """Run rate of the trailing hour x ``freshness_s``, in the budget's unit."""


class CheckResult(BaseModel):
    model_config = ConfigDict(frozen=True)

    allowed: bool
    refused_by: str | None = None
    checked_at: AwareDatetime
    freshness_s: float
    quote: Quote | None = None
    budgets: list[Verdict]

    def raise_for_refusal(self) -> None:
        """``BudgetExceeded`` for the hard budget that refused the call, if any."""
        refusal = next((v for v in self.budgets if v.budget_id == self.refused_by), None)
        if refusal is None:
            return
        raise BudgetExceeded.of_budget(
            refusal.name or refusal.budget_id,
            spend=refusal.spend,
            estimate=refusal.estimate,
            limit=refusal.limit,
            unit=refusal.unit,
            period_end=refusal.period_end,
            budget_id=refusal.budget_id,
        )


class BudgetChecker:
    """Thread-safe; spend of a set of budgets is reused for ``check_cache_ttl_s``."""

    def __init__(
        self, client: Client, settings: BudgetCheckSettings | None = None, *, clock: Clock = SYSTEM_CLOCK
    ) -> None:
        self._client = client
        self._settings = settings or BudgetCheckSettings()
        self._clock = clock
        self._store = BudgetStore(client, clock=clock)
        self._lock = threading.Lock()
        self._budgets: tuple[float, list[Budget]] | None = None
        self._spend: dict[frozenset[str], tuple[float, dict[tuple[str, int], Spend]]] = {}

    @property
    def freshness_s(self) -> float:
        return self._settings.ingest_lag_s + self._settings.check_cache_ttl_s

    def invalidate(self) -> None:
        with self._lock:
            self._budgets = None
            self._spend.clear()

    def check(self, request: CheckRequest) -> CheckResult:
        now = utc_datetime(self._clock.now_us())
        with self._lock:
            covering = [b for b in self._current() if covers(b, request)]
            spends = self._spends(covering, now)
            priced = quote(self._client, request.estimate, client_id=request.client_id) if request.estimate else None
        return self._result(request, covering, spends, priced, now)

    def check_cached(self, request: CheckRequest) -> CheckResult | None:
        """``check``'s answer when it needs no query (budgets and their spend cached, no estimate to price),
        else None; never waits for the lock another check holds. Lets the API answer a cached check
        without a hop to a worker thread and without the store's lock (``api/budget_routes.py``)."""
        if request.estimate is not None or not self._lock.acquire(blocking=False):
            return None
        try:
            now = utc_datetime(self._clock.now_us())
            budgets = self._budgets
            if budgets is None or time.monotonic() - budgets[0] > _BUDGETS_TTL_S:
                return None
            covering = [b for b in budgets[1] if covers(b, request)]
            spends = self._cached_spends(covering)
            if spends is None:
                return None
        finally:
            self._lock.release()
        return self._result(request, covering, spends, None, now)

    def _result(
        self,
        request: CheckRequest,
        covering: list[Budget],
        spends: dict[tuple[str, int], Spend],
        priced: Quote | None,
        now: datetime,
    ) -> CheckResult:
        verdicts = [
            self._verdict(b, spends.get((b.budget_id, b.version), NO_SPEND), request.estimate, priced, now)
            for b in covering
        ]
        refused = next((v.budget_id for v in verdicts if not v.allowed and v.mode == "hard"), None)
        return CheckResult(
            allowed=refused is None,
            refused_by=refused,
            checked_at=now,
            freshness_s=self.freshness_s,
            quote=priced,
            budgets=verdicts,
        )

    def check_budget(
        self,
        client_id: str,
        *,
        user_id: str | None = None,
        provider: str | None = None,
        model: str | None = None,
        labels: dict[str, str] | None = None,
        estimate: Usage | None = None,
    ) -> CheckResult:
        """``check`` in the seeds' shape: raises ``BudgetExceeded`` when a hard budget refuses the call."""
        request = CheckRequest(
            client_id=client_id, user_id=user_id, provider=provider, model=model, labels=labels or {}, estimate=estimate
        )
        result = self.check(request)
        result.raise_for_refusal()
        return result

    def _current(self) -> list[Budget]:
        if self._budgets is None or time.monotonic() - self._budgets[0] > _BUDGETS_TTL_S:
            self._budgets = (time.monotonic(), self._store.current())
        return self._budgets[1]

    def _spends(self, covering: list[Budget], now: datetime) -> dict[tuple[str, int], Spend]:
        cached = self._cached_spends(covering)
        if cached is not None:
            return cached
        key = _spend_key(covering)
        windows = {}
        for budget in covering:
            period = window(budget.spec, now)
            windows[budget.spec.spec_key] = (period, recent_start(period, now))
        clients = {b.spec.scope.client_id for b in covering}
        spends = read_spend(self._client, windows, mode="ids", ids=[b.budget_id for b in covering], clients=clients)
        if len(self._spend) > 10_000:
            self._spend.clear()
        self._spend[key] = (time.monotonic(), spends)
        return spends

    def _cached_spends(self, covering: list[Budget]) -> dict[tuple[str, int], Spend] | None:
        """The spend of ``covering`` read less than the cache's TTL ago, or None."""
        if not covering:
            return {}
        cached = self._spend.get(_spend_key(covering))
        if cached is not None and time.monotonic() - cached[0] <= self._settings.check_cache_ttl_s:
            return cached[1]
        return None

    def _verdict(
        self, budget: Budget, spend: Spend, usage: Usage | None, priced: Quote | None, now: datetime
    ) -> Verdict:
        spec = budget.spec
        period = window(spec, now)
        amount = spend.of(spec.unit)
        estimate = _estimate(spec.unit, usage, priced)
        recent_seconds = max(1.0, (now - recent_start(period, now)).total_seconds())
        rate = spend.recent_of(spec.unit) / Decimal(recent_seconds)
        return Verdict(
            budget_id=budget.budget_id,
            name=spec.name,
            mode=spec.mode,
            unit=spec.unit,
            spend=amount,
            estimate=estimate,
            limit=spec.limit,
            remaining=max(Decimal(0), spec.limit - amount),
            allowed=amount < spec.limit and amount + estimate <= spec.limit,
            period_start=period.start,
            period_end=period.end,
            next_reset=period.next_reset,
            worst_case_overshoot=(rate * Decimal(self.freshness_s)).quantize(Decimal("0.000001")),
        )


def _spend_key(covering: list[Budget]) -> frozenset[str]:
    return frozenset(f"{b.budget_id}:{b.version}" for b in covering)


def covers(budget: Budget, request: CheckRequest) -> bool:
    """Whether the budget's scope includes a call with these attributes (names compared as stored: lower case)."""
    scope = budget.spec.scope
    if scope.client_id != request.client_id:
        return False
    model = request.model or (request.estimate.model if request.estimate else None)
    provider = request.provider or (request.estimate.provider if request.estimate else None)
    return (
        (scope.user_id is None or scope.user_id == request.user_id)
        and (scope.model is None or _same(scope.model, model))
        and (scope.provider is None or _same(scope.provider, provider))
        and (scope.label_key is None or request.labels.get(scope.label_key) == scope.label_value)
    )


def _same(wanted: str, given: str | None) -> bool:
    return given is not None and wanted.lower() == given.lower()


def _estimate(unit: Unit, usage: Usage | None, priced: Quote | None) -> Decimal:
    """The call's share of the budget's unit: its quoted cost, its tokens (input + output), or its requests."""
    if usage is None:
        return Decimal(0)
    if unit == "usd":
        return priced.cost.total if priced is not None else Decimal(0)
    return Decimal(usage.input_tokens + usage.output_tokens if unit == "tokens" else usage.requests)
