"""The budget routes: budgets (create, list, show, change, delete), alerts, the pre-flight check and quotes.

In embedded mode ``usagemeter budgets`` and ``usagemeter alerts`` come through here. A change calls
``on_change`` (the alerter of ``usagemeter serve``: it evaluates every budget again at once), so a new
or raised budget takes effect without a restart. A change (create, update, delete) is admin only, the
default of ``api/auth.py``. The reads are ``Access.CLIENT``: a client's key sees its clients' budgets, with
each webhook URL cut to scheme and host (``Budget.without_secrets``), and their alerts; another client's
budget or alert is a 403. ``POST /v1/budgets/check`` and ``POST /v1/quote`` read only too; they are POSTs
because they take a body (the call's estimated usage).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Annotated

from fastapi import FastAPI, HTTPException, Query
from pydantic import ConfigDict, Field
from starlette.concurrency import run_in_threadpool

from usagemeter.api.auth import Access, Caller, Principal, access, authorize_client
from usagemeter.api.store_session import StoreSession
from usagemeter.budgets import manage
from usagemeter.budgets.check import BudgetChecker, CheckRequest, CheckResult
from usagemeter.budgets.model import Budget, BudgetPatch, BudgetSpec
from usagemeter.budgets.quote import Quote, Usage, quote


class QuoteRequest(Usage):
    """A call's usage and whose it is (a client's overrides and contract change its price)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    client_id: str = Field(default="", max_length=256)
    at: datetime | None = None


def add_budget_routes(app: FastAPI, store: StoreSession, checker: BudgetChecker, on_change: Callable[[], None]) -> None:
    def changed() -> None:
        checker.invalidate()
        on_change()

    @app.post("/v1/budgets", status_code=201)
    def create_budget(spec: BudgetSpec) -> manage.Saved:
        with store() as client:
            saved = manage.create(client, spec)
        changed()
        return saved

    @app.get("/v1/budgets", openapi_extra=access(Access.CLIENT))
    def list_budgets(
        principal: Caller,
        client_id: Annotated[str | None, Query(description="Only this client's budgets.")] = None,
    ) -> list[Budget]:
        if client_id is not None:
            authorize_client(principal, client_id)
        with store() as client:
            found = manage.listed(client, client_id=client_id)
        return [_as_seen(principal, b) for b in found if principal.may_read(b.spec.scope.client_id)]

    @app.get("/v1/budgets/{budget_id}", openapi_extra=access(Access.CLIENT))
    def show_budget(
        principal: Caller,
        budget_id: str,
        at: Annotated[datetime | None, Query(description="Show the period containing this instant.")] = None,
    ) -> manage.Shown:
        with store() as client:
            shown = manage.show(client, budget_id, at=at)
        authorize_client(principal, shown.status.budget.spec.scope.client_id)
        return manage.Shown(
            status=shown.status.model_copy(update={"budget": _as_seen(principal, shown.status.budget)}),
            history=[_as_seen(principal, b) for b in shown.history],
        )

    @app.patch("/v1/budgets/{budget_id}")
    def update_budget(budget_id: str, patch: BudgetPatch) -> manage.Saved:
        with store() as client:
            saved = manage.update(client, budget_id, patch)
        changed()
        return saved

    @app.delete("/v1/budgets/{budget_id}")
    def delete_budget(budget_id: str) -> Budget:
        with store() as client:
            deleted = manage.delete(client, budget_id)
        changed()
        return deleted

    @app.get("/v1/alerts", openapi_extra=access(Access.CLIENT))
    def list_alerts(
        principal: Caller,
        budget_id: Annotated[str, Query(description="Only this budget's alerts.")] = "",
        days: Annotated[float, Query(gt=0, le=3660, description="How far back.")] = 30,
        limit: Annotated[int, Query(ge=1, le=10_000)] = 100,
    ) -> list[manage.AlertRecord]:
        clients = None if principal.admin else principal.clients
        with store() as client:
            return manage.alerts(client, budget_id=budget_id, days=days, limit=limit, clients=clients)

    @app.get("/v1/alerts/{alert_id}", openapi_extra=access(Access.CLIENT))
    def show_alert(principal: Caller, alert_id: str) -> manage.AlertRecord:
        with store() as client:
            found = manage.alert(client, alert_id)
        if found is None:
            raise HTTPException(status_code=404, detail=f"no alert {alert_id!r}")
        authorize_client(principal, found.alert.scope.client_id)
        return found

    def checked(request: CheckRequest) -> CheckResult:
        with store():
            return checker.check(request)

    @app.post("/v1/budgets/check", openapi_extra=access(Access.CLIENT))
    async def check_budget(principal: Caller, request: CheckRequest) -> CheckResult:
        """A cached answer on the event loop, without the store's lock; one that queries on a worker thread."""
        authorize_client(principal, request.client_id)
        cached = checker.check_cached(request)
        return cached if cached is not None else await run_in_threadpool(checked, request)

    @app.post("/v1/quote", openapi_extra=access(Access.CLIENT))
    def quote_route(principal: Caller, request: QuoteRequest) -> Quote:
        if request.client_id:  # a client's overrides and contract: its key's; without one, the list price
            authorize_client(principal, request.client_id)
        usage = Usage.model_validate(request.model_dump(exclude={"client_id", "at"}))
        with store() as client:
            return quote(client, usage, client_id=request.client_id, at=request.at)


def _as_seen(principal: Principal, budget: Budget) -> Budget:
    return budget if principal.admin else budget.without_secrets()
