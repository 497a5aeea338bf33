"""The query API: ``GET /v1/usage`` serves ``get_usage()`` as JSON, ``GET /healthz`` says the process is up,
``/dashboard`` shows it all in a browser (``api/dashboard_routes.py``).

In embedded mode one process owns the chDB directory (``usagemeter serve``), so other processes, the CLI
included, read usage through this API. Every route but ``/healthz`` takes an API key (``api/auth.py``): a
client's key reads its own clients' usage only, mutations need an admin key. Before any route, requests pass
the Host-header check and the body cap (``api/hardening.py``); the interactive docs are off unless
``USAGEMETER_API_DOCS=true`` (``api/settings.py``).

Errors: a bad time zone, ``since`` or client id is 422 with the reason in ``detail``; a budget or alert
that does not exist 404; a store that cannot be reached is 503 (``api/store_session.py``).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import datetime
from typing import Annotated

from fastapi import FastAPI, Query
from prometheus_client import CollectorRegistry

from usagemeter.api import auth
from usagemeter.api.auth import Access, Caller, access, authorize_client
from usagemeter.api.budget_routes import add_budget_routes
from usagemeter.api.dashboard_routes import add_dashboard_routes
from usagemeter.api.hardening import harden
from usagemeter.api.key_routes import add_key_routes
from usagemeter.api.local_admin import key_secret
from usagemeter.api.metrics import add_metrics_route
from usagemeter.api.pricing_routes import add_pricing_routes
from usagemeter.api.report_routes import add_report_routes
from usagemeter.api.settings import ApiSettings
from usagemeter.api.shape_routes import add_shape_routes
from usagemeter.api.store_session import ClientProvider, store_session
from usagemeter.api.view_routes import add_view_routes
from usagemeter.budgets.check import BudgetChecker
from usagemeter.budgets.settings import BudgetCheckSettings
from usagemeter.dashboard.overview import DeadLetterCounts
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
    settings: ApiSettings | None = None,
    metrics_registry: CollectorRegistry | None = None,
    dead_letters: DeadLetterCounts | None = None,
) -> FastAPI:
    """The API over the store that ``client_provider`` gives; ``clock`` decides "now" for current periods and
    key expiry; ``on_budgets_changed`` runs after a budget changed or spend was repriced (the alerter's
    wake-up); ``check_settings`` tune the pre-flight check; ``check_settings`` and ``settings`` (the API's
    own) default to the environment; ``dead_letters`` counts the dead-letter topic by reason for the
    dashboard (None: the page says none is configured);
    ``metrics_registry`` is the process's (``GET /metrics`` serves it, with the API's own series added), a
    registry of the API's series only when not given."""
    settings = settings if settings is not None else ApiSettings()
    docs = settings.docs
    app = FastAPI(
        title="usagemeter",
        summary="Usage and cost of LLM and other metered API calls.",
        docs_url="/docs" if docs else None,
        redoc_url="/redoc" if docs else None,
        openapi_url="/openapi.json" if docs else None,
    )
    store = store_session(client_provider, threading.Lock())
    secret = key_secret(settings)
    # before any route: they all inherit the guard
    auth.install(app, auth.Authenticator(store, secret, clock, settings.key_cache_s))
    changed = on_budgets_changed or (lambda: None)

    @app.get("/healthz", openapi_extra=access(Access.PUBLIC))
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/v1/usage", openapi_extra=access(Access.CLIENT))
    def usage(
        *,
        principal: Caller,
        client_id: Annotated[str, Query(min_length=1, description="The client whose usage to report.")],
        user_id: Annotated[str | None, Query(description="Only this user's usage.")] = None,
        period: Annotated[Period, Query(description="The current period: local day or month.")] = "month",
        tz: Annotated[str, Query(description="IANA time zone of the period, e.g. Europe/Berlin.")] = "UTC",
        since: Annotated[
            datetime | None, Query(description="Totals from this instant (15-minute aligned) instead of all time.")
        ] = None,
        include_users: Annotated[bool, Query(description="Fill by_user (reads the per-user table).")] = False,
    ) -> UsageReport:
        authorize_client(principal, client_id)
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
    add_view_routes(app, store, changed)
    add_shape_routes(app, store, clock)
    add_budget_routes(app, store, BudgetChecker(client_provider(), check_settings, clock=clock), changed)
    add_key_routes(app, store, secret, clock)
    add_metrics_route(app, metrics_registry if metrics_registry is not None else CollectorRegistry())
    add_dashboard_routes(app, store, clock, dead_letters)
    auth.check_routes(app)
    harden(app, settings, larger_bodies={"/v1/prices/snapshot": settings.max_snapshot_bytes})
    return app
