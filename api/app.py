"""The query API: ``GET /v1/usage`` serves ``get_usage()`` as JSON, ``GET /healthz`` says the process is up.

In embedded mode one process owns the chDB directory (``usagemeter serve``), so other processes, the CLI
included, read usage through this API. Where it listens is the caller's choice (uvicorn's host and
port); ``usagemeter serve`` binds 127.0.0.1 unless told otherwise. There is no authentication: do not
expose it beyond hosts that may see every client's usage.

Errors: a bad time zone, ``since`` or client id is 422 with the reason in ``detail``; a budget or alert
that does not exist 404; a store that cannot be reached is 503 (``api/store_session.py``).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import datetime
from typing import Annotated

from fastapi import FastAPI, Query

from usagemeter.api.budget_routes import add_budget_routes
from usagemeter.api.pricing_routes import add_pricing_routes
from usagemeter.api.report_routes import add_report_routes
from usagemeter.api.store_session import ClientProvider, store_session
from usagemeter.budgets.check import BudgetChecker
from usagemeter.budgets.settings import BudgetCheckSettings
from usagemeter.query.models import UsageReport
from usagemeter.query.periods import Period
from usagemeter.query.report import get_usage
from usagemeter.schemas.clock import SYSTEM_CLOCK, Clock, utc_datetime


def create_app(
    client_provider: ClientProvider,
    *,
    clock: Clock = SYSTEM_CLOCK,
    on_budgets_changed: Callable[[], None] | None = None,
    check_settings: BudgetCheckSettings | None = None,
) -> FastAPI:
    """The API over the store that ``client_provider`` gives; ``clock`` decides "now" for current periods;
    ``on_budgets_changed`` runs after a budget changed or spend was repriced (the alerter's wake-up);
    ``check_settings`` tune the pre-flight check (default: from the environment)."""
    app = FastAPI(title="usagemeter", summary="Usage and cost of LLM and other metered API calls.")
    store = store_session(client_provider, threading.Lock())
    changed = on_budgets_changed or (lambda: None)

    @app.get("/healthz")
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/v1/usage")
    def usage(
        *,
        client_id: Annotated[str, Query(min_length=1, description="The client whose usage to report.")],
        user_id: Annotated[str | None, Query(description="Only this user's usage.")] = None,
        period: Annotated[Period, Query(description="The current period: local day or month.")] = "month",
        tz: Annotated[str, Query(description="IANA time zone of the period, e.g. Europe/Berlin.")] = "UTC",
        since: Annotated[
            datetime | None, Query(description="Totals from this instant (15-minute aligned) instead of all time.")
        ] = None,
        include_users: Annotated[bool, Query(description="Fill by_user (reads the per-user table).")] = False,
    ) -> UsageReport:
        with store() as client:
            return get_usage(
                client,
                client_id,
                user_id=user_id,
                period=period,
                tz=tz,
                since=since,
                include_users=include_users,
                now=utc_datetime(clock.now_us()),
            )

    add_pricing_routes(app, store, changed)
    add_report_routes(app, store)
    add_budget_routes(app, store, BudgetChecker(client_provider(), check_settings, clock=clock), changed)
    return app
