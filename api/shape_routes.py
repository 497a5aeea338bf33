"""The report shapes users of other usage trackers know (``query/shapes.py``), one route each:

    GET /v1/clients/{client_id}/stats?user_id=alice&start=...&end=...&tz=...   UsageStats
    GET /v1/clients/{client_id}/activity?recent=10&start=...&end=...&tz=...   ClientUsage
    GET /v1/clients/{client_id}/requests/{request_id}                         RequestDetails (404: none)
    GET /v1/clients/{client_id}/rates?at=...                                  Rates (last minute, last hour)

The client is in the path, so a key's scope is checked before anything runs; ranges default to this month
in ``tz`` and are bounded like the reports' (``report_routes.MAX_RANGE``).
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import FastAPI, HTTPException, Query

from usagemeter.api.auth import Access, Caller, Principal, access, authorize_client
from usagemeter.api.report_routes import MAX_RANGE
from usagemeter.api.store_session import StoreSession
from usagemeter.query.periods import period_bounds, zone
from usagemeter.query.shapes import (
    ClientUsage,
    Rates,
    RequestDetails,
    UsageStats,
    client_usage,
    get_request_details,
    rates,
    usage_stats,
)
from usagemeter.schemas.clock import SYSTEM_CLOCK, Clock, utc_datetime

Start = Annotated[
    datetime | None, Query(description="Inclusive; without an offset, local time in tz. Default: this month.")
]
End = Annotated[datetime | None, Query(description="Exclusive; 15-minute aligned like start.")]
Zone = Annotated[str, Query(description="IANA zone of the range.")]


def add_shape_routes(app: FastAPI, store: StoreSession, clock: Clock = SYSTEM_CLOCK) -> None:
    def bounds(
        principal: Principal, client_id: str, start: datetime | None, end: datetime | None, tz: str
    ) -> tuple[datetime, datetime]:
        authorize_client(principal, client_id)
        try:
            month = period_bounds("month", tz, utc_datetime(clock.now_us()))
        except ValueError as exc:
            raise HTTPException(status_code=422, detail=str(exc)) from exc
        first, last = start or month.start, end or month.end
        if _aware(last, tz) - _aware(first, tz) > MAX_RANGE:
            raise HTTPException(status_code=422, detail=f"a range may be at most {MAX_RANGE.days} days long")
        return first, last

    @app.get("/v1/clients/{client_id}/stats", openapi_extra=access(Access.CLIENT))
    def stats(
        *,
        principal: Caller,
        client_id: str,
        user_id: Annotated[str | None, Query(description="Only this user's usage.")] = None,
        start: Start = None,
        end: End = None,
        tz: Zone = "UTC",
    ) -> UsageStats:
        first, last = bounds(principal, client_id, start, end, tz)
        with store() as client:
            return usage_stats(client, client_id, start=first, end=last, user_id=user_id, tz=tz)

    @app.get("/v1/clients/{client_id}/activity", openapi_extra=access(Access.CLIENT))
    def activity(
        *,
        principal: Caller,
        client_id: str,
        recent: Annotated[int, Query(ge=0, le=1000, description="How many of the newest requests to list.")] = 10,
        start: Start = None,
        end: End = None,
        tz: Zone = "UTC",
    ) -> ClientUsage:
        first, last = bounds(principal, client_id, start, end, tz)
        with store() as client:
            return client_usage(client, client_id, start=first, end=last, tz=tz, recent=recent)

    @app.get("/v1/clients/{client_id}/requests/{request_id}", openapi_extra=access(Access.CLIENT))
    def request_details(principal: Caller, client_id: str, request_id: str) -> RequestDetails:
        authorize_client(principal, client_id)
        with store() as client:
            found = get_request_details(client, client_id, request_id)
        if found is None:
            raise HTTPException(status_code=404, detail=f"client {client_id!r} has no request {request_id!r}")
        return found

    @app.get("/v1/clients/{client_id}/rates", openapi_extra=access(Access.CLIENT))
    def request_rates(
        principal: Caller,
        client_id: str,
        at: Annotated[
            datetime | None, Query(description="The instant the minute and hour end at (default: now).")
        ] = None,
    ) -> Rates:
        authorize_client(principal, client_id)
        instant = _aware(at, "UTC") if at else utc_datetime(clock.now_us())
        with store() as client:
            return rates(client, client_id, instant)


def _aware(at: datetime, tz: str) -> datetime:
    return at if at.tzinfo else at.replace(tzinfo=zone(tz))
