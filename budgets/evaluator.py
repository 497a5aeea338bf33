"""Evaluates budgets against their spend and writes the alerts their changes call for to the ledger.

Per call: one spend query (``budgets.spend``) for the budgets chosen, then, for each budget whose
thresholds changed, the pure decision (``budgets.transitions``) and, only then, a contributors query and
the ledger write. Budgets and their ledger state are held in memory and read again by ``reload`` (at
start, on every sweep, and when a spend row names a version not held yet). The order that makes an alert
exactly-once: the ledger row is written (and read back) before the dispatcher delivers anything, and
only by the evaluator whose insert the ledger kept (two evaluators may write the same crossing at once).

``evaluate("touched")`` reads the budgets whose scopes were inserted into since the previous call began,
less ``TOUCH_MARGIN`` for inserts in flight then; an insert older than that is still caught by a sweep.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Final

from clickhouse_connect.driver.client import Client

from usagemeter.budgets.alerts import Alert, Contributor, alert_id, percent_of
from usagemeter.budgets.contributors import top_contributors
from usagemeter.budgets.ledger import AlertLedger
from usagemeter.budgets.model import Budget, BudgetSpec
from usagemeter.budgets.periods import Window, recent_start, window
from usagemeter.budgets.spend import NO_SPEND, Selection, Spend, read_spend
from usagemeter.budgets.store import BudgetStore
from usagemeter.budgets.transitions import Change, Levels, PeriodState, decide, threshold_levels
from usagemeter.schemas.clock import SYSTEM_CLOCK, Clock, utc_datetime

log = logging.getLogger("usagemeter.alerts")

TOUCH_MARGIN: Final = timedelta(seconds=3)
_LEDGER_HORIZON: Final = timedelta(days=400)
"""Ledger rows of periods that started this long ago are still read: a year-long rolling period fits."""


@dataclass(frozen=True, slots=True)
class Evaluated:
    budgets: int
    alerts: list[Alert]


class Evaluator:
    def __init__(self, client: Client, *, clock: Clock = SYSTEM_CLOCK) -> None:
        self._client = client
        self._clock = clock
        self._store = BudgetStore(client, clock=clock)
        self._ledger = AlertLedger(client)
        self._budgets: dict[str, Budget] = {}
        self._periods: dict[str, BudgetSpec] = {}
        """One budget's spec per distinct ``spec_key``: the bounds a query needs are computed once per key."""
        self._levels: dict[tuple[str, int], Levels] = {}
        self._states: dict[tuple[str, int, datetime], PeriodState] = {}
        self._since: datetime | None = None
        self._writer = uuid.uuid4().hex
        """Names this evaluator's ledger inserts: where two wrote the same alert, the one kept delivers it."""

    def reload(self) -> None:
        """Budgets and their ledger state read again from the store."""
        self._budgets = {b.budget_id: b for b in self._store.current()}
        self._periods = {}
        for budget in self._budgets.values():
            self._periods.setdefault(budget.spec.spec_key, budget.spec)
        self._levels = {(b.budget_id, b.version): threshold_levels(b.spec) for b in self._budgets.values()}
        states: dict[tuple[str, int, datetime], PeriodState] = {}
        for row in self._ledger.rows_since(self._now() - _LEDGER_HORIZON):
            states.setdefault((row.budget_id, row.version, row.period_start), PeriodState()).apply(
                row.kind, row.thresholds, row.crossings
            )
        self._states = states

    def evaluate(self, mode: Selection, ids: Collection[str] = ()) -> Evaluated:
        """Evaluates the budgets ``mode`` chooses; returns the alerts written, to be delivered."""
        started = self._now()
        if mode == "touched" and self._since is None:
            mode = "all"
        windows = self._windows(started)
        clients = {self._budgets[b].spec.scope.client_id for b in ids if b in self._budgets}
        spends = read_spend(self._client, windows, mode=mode, since=self._since, ids=ids, clients=clients)
        if any(self._budgets.get(b) is None or self._budgets[b].version != v for b, v in spends):
            self.reload()
        chosen = [b for b in self._budgets.values() if (b.budget_id, b.version) in spends]
        if mode == "all":
            chosen = list(self._budgets.values())
        elif mode == "ids":
            chosen = [b for b in self._budgets.values() if b.budget_id in ids]
        alerts: list[Alert] = []
        # A budget the reload above brought in with a period kind this query had no window for has no spend
        # read yet: the next evaluation, with its window, judges it.
        for budget in (b for b in chosen if b.spec.spec_key in windows):
            period, recent_start = windows[budget.spec.spec_key]
            spend = spends.get((budget.budget_id, budget.version), NO_SPEND)
            alerts += self._judge(budget, period, recent_start, spend, started)
        self._since = started - TOUCH_MARGIN
        return Evaluated(len(chosen), alerts)

    def budgets(self) -> list[Budget]:
        return list(self._budgets.values())

    def _windows(self, now: datetime) -> dict[str, tuple[Window, datetime]]:
        """Each distinct period kind's current window and the start of its trailing hour."""
        found: dict[str, tuple[Window, datetime]] = {}
        for key, spec in self._periods.items():
            period = window(spec, now)
            found[key] = (period, recent_start(period, now))
        return found

    def _judge(
        self, budget: Budget, period: Window, recent_start: datetime, spend: Spend, now: datetime
    ) -> list[Alert]:
        spec = budget.spec
        state = self._states.setdefault((budget.budget_id, budget.version, period.key), PeriodState())
        prior = self._prior(budget, period.key)
        amount = spend.of(spec.unit)
        changes = decide(
            spec,
            period,
            spend=amount,
            recent=(spend.recent_of(spec.unit), recent_start),
            now=now,
            state=state,
            prior=prior,
            levels=self._levels.get((budget.budget_id, budget.version)),
        )
        written: list[Alert] = []
        for change in changes:
            stored, kept = self._ledger.record(
                self._alert(budget, period, amount, change, now), period.key, self._writer
            )
            state.apply(stored.kind, stored.thresholds, stored.crossings)
            if kept and stored.kind != "carried":
                written.append(stored)
                log.info("budget alert %s written: %s", stored.alert_id, stored.summary())
        return written

    def _prior(self, budget: Budget, key: datetime) -> PeriodState | None:
        """The state of the newest earlier version with rows in this period, when this version has none."""
        own = self._states.get((budget.budget_id, budget.version, key))
        if own is not None and own.seen:
            return None
        for version in range(budget.version - 1, 0, -1):
            earlier = self._states.get((budget.budget_id, version, key))
            if earlier is not None and earlier.seen:
                return earlier
        return None

    def _alert(self, budget: Budget, period: Window, amount: Decimal, change: Change, now: datetime) -> Alert:
        spec = budget.spec
        top_models: tuple[Contributor, ...] = ()
        top_users: tuple[Contributor, ...] = ()
        if change.kind in ("crossed", "projected"):
            top_models, top_users = top_contributors(self._client, spec.scope, period.start_utc, period.end_utc)
        return Alert(
            alert_id=alert_id(budget.budget_id, budget.version, period.key, change),
            kind=change.kind,
            budget_id=budget.budget_id,
            version=budget.version,
            name=spec.name,
            scope=spec.scope,
            period_start=period.start,
            period_end=period.end,
            next_reset=period.next_reset,
            tz=spec.tz,
            unit=spec.unit,
            spend=amount,
            limit=spec.limit,
            percent=percent_of(amount, spec.limit),
            thresholds=change.thresholds,
            crossings=change.crossings,
            projected_at=change.projected_at,
            run_rate_per_hour=change.rate_per_hour,
            top_models=top_models,
            top_users=top_users,
            as_of=now,
            created_at=self._now(),
        )

    def _now(self) -> datetime:
        return utc_datetime(self._clock.now_us())
