"""The main page's numbers: every panel a ``UsageQuery`` answered by ``run_query`` over the aggregates,
the budgets through ``budgets.status``, and the store-wide panels (unknown models, dead letters) for admins.

A panel whose question the aggregates cannot answer with the view's filters (a label filter with a user
filter: no table holds both) carries the reason instead of rows, and the other panels still show.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Final

from clickhouse_connect.driver.client import Client

from usagemeter.budgets import manage
from usagemeter.budgets.status import BudgetStatus, budget_status
from usagemeter.dashboard.view import Scope, View
from usagemeter.query.analytics import run_query
from usagemeter.query.answer import Freshness, Measures, UsageAnswer
from usagemeter.query.price_book import known_clients
from usagemeter.query.spec import Filter, OrderBy, UsageQuery
from usagemeter.query.unknown import UnknownModel, unknown_models

DeadLetterCounts = Callable[[], Mapping[str, int]]
"""Dead letters by reason (they live in Kafka, not in the store); ``serve`` passes a cached reader."""

TOP: Final = 8
"""Series of a stacked chart and rows of a top list; the rest is folded into ``(other)``."""
ALERT_DAYS: Final = 30
TIMEOUT_S: Final = 10.0
_NOT_OK: Final = Filter(dimension="status", op="not_in", values=["ok"])


@dataclass(frozen=True, slots=True)
class DeadLetters:
    """Dead letters by reason, or why the page has none to show."""

    counts: Mapping[str, int] | None
    note: str = ""


NO_DEAD_LETTERS: Final = DeadLetters(None, "no dead-letter topic is configured for this API")


@dataclass(frozen=True, slots=True)
class Panel:
    """A panel's answer, or why the view's filters leave it without one."""

    answer: UsageAnswer | None
    note: str = ""


@dataclass(frozen=True, slots=True)
class BudgetLine:
    status: BudgetStatus
    projected: Decimal | None
    """Spend at the period's end at its average rate so far; None for a period without an end."""

    @property
    def overrun(self) -> Decimal:
        if self.projected is None or self.projected <= self.status.limit:
            return Decimal(0)
        return self.projected - self.status.limit


@dataclass(frozen=True, slots=True)
class Overview:
    view: View
    clients: list[str]
    """The clients the page is about (the view's one, or every one the key may read)."""
    choices: list[str]
    """The clients the key may pick."""
    start: datetime
    end: datetime
    by_model: Panel
    by_provider: Panel
    current: Panel
    previous: Panel
    top_users: Panel
    top_models: Panel
    errors: Panel
    budgets: list[BudgetLine] = field(default_factory=list)
    alerts: list[manage.AlertRecord] = field(default_factory=list)
    unknown: list[UnknownModel] | None = None
    """Unknown models of the whole store: shown to admins only (the table has no client column)."""
    dead_letters: DeadLetters = NO_DEAD_LETTERS

    @property
    def freshness(self) -> Freshness | None:
        return self.current.answer.freshness if self.current.answer else None

    @property
    def total(self) -> Measures:
        return self.current.answer.total if self.current.answer else Measures()


def overview(
    client: Client, view: View, scope: Scope, now: datetime, letters: DeadLetters = NO_DEAD_LETTERS
) -> Overview:
    """Every panel of ``view`` for a reader of ``scope``; a ``PermissionError`` for a client outside it.
    ``letters`` come from ``dead_letters_for`` (read apart: they are not in the store)."""
    choices = known_clients(client) if scope.admin else sorted(scope.clients)
    if view.client and not scope.may_read(view.client):
        raise PermissionError(f"this key may not read client {view.client!r}")
    clients = [view.client] if view.client else choices
    start, end = view.bounds(now)
    if not clients:
        nothing = Panel(None, "no client has usage yet")
        n = nothing
        return Overview(view, [], choices, start, end, n, n, n, n, n, n, n)

    def ask(
        group_by: list[str],
        *,
        bucket: bool = False,
        shift: timedelta = timedelta(0),
        extra: list[Filter] | None = None,
        top: int | None = TOP,
        order_by: OrderBy = "cost",
    ) -> Panel:
        try:
            query = UsageQuery(
                client_ids=clients,
                start=start - shift,
                end=end - shift,
                tz=view.tz,
                bucket=view.bucket if bucket else None,
                group_by=group_by,
                filters=[*view.filters(), *(extra or [])],
                top=top if group_by else None,
                order_by=order_by,
                limit=100_000,
            )
            return Panel(run_query(client, query, timeout_s=TIMEOUT_S, now=now))
        except ValueError as exc:
            return Panel(None, str(exc))

    budgets = _budgets(client, clients, now)
    ids = {line.status.budget.budget_id for line in budgets}
    alerts = [a for a in manage.alerts(client, days=ALERT_DAYS, limit=1000) if a.alert.budget_id in ids][:20]
    return Overview(
        view=view,
        clients=clients,
        choices=choices,
        start=start,
        end=end,
        by_model=ask(["model"], bucket=True),
        by_provider=ask(["provider"], bucket=True),
        current=ask([]),
        previous=ask([], shift=end - start),
        top_users=ask(["user"], top=10),
        top_models=ask(["model"], top=10),
        errors=ask(["status", "service", "model"], extra=[_NOT_OK], top=12, order_by="requests"),
        budgets=budgets,
        alerts=alerts,
        unknown=unknown_models(client) if scope.admin else None,
        dead_letters=letters,
    )


def _budgets(client: Client, clients: list[str], now: datetime) -> list[BudgetLine]:
    lines = []
    for client_id in clients:
        for budget in manage.listed(client, client_id=client_id):
            status = budget_status(client, budget, now)
            lines.append(BudgetLine(status, _projected(status, now)))
    return lines


def _projected(status: BudgetStatus, now: datetime) -> Decimal | None:
    """Linear: the spend so far over the elapsed part of the period, times the whole period."""
    elapsed = (now - status.period_start).total_seconds()
    length = (status.period_end - status.period_start).total_seconds()
    if status.next_reset is None or elapsed <= 0 or length <= 0:
        return None
    return (status.spend * Decimal(length) / Decimal(elapsed)).quantize(Decimal("0.01"))


def dead_letters_for(scope: Scope, source: DeadLetterCounts | None) -> DeadLetters:
    """Dead letters carry no trusted client (many are unreadable), so only admins see them. Call it before
    taking the store's session: reading Kafka must not hold the API's one store session."""
    if not scope.admin:
        return DeadLetters(None, "dead letters are shown to admin keys only: a dead letter may not name its client")
    if source is None:
        return NO_DEAD_LETTERS
    try:
        return DeadLetters(source())
    except Exception as exc:  # Kafka down must not take the page down: the reason is shown instead
        return DeadLetters(None, f"the dead-letter topic cannot be read: {exc}")
