"""The query API's report routes: any ``UsageQuery`` as JSON, CSV or JSON Lines, and a FOCUS 1.2 export.

    GET  /v1/reports?client_id=acme&start=2026-11-01&end=2026-12-01&tz=UTC&bucket=day&group_by=model
    POST /v1/reports/query          (a UsageQuery as JSON: filters with any characters in their values)
    GET  /v1/reports/focus?client_id=acme&start=...&end=...&bucket=day   (CSV)

Every route names the clients it reads (``client_id``, repeatable, or ``client_ids`` in the body), so a
caller's scope can be checked against them before anything runs. No request can scan unbounded data:
a range is at most ``MAX_RANGE`` long, a page at most 100,000 rows, the statement at most ``MAX_ROWS``
rows and ``QUERY_TIMEOUT_S`` seconds (ClickHouse's ``max_execution_time``). They share the other routes'
session (``api/store_session.py``: one query at a time on the one client).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from typing import Annotated, Final, Literal

from clickhouse_connect.driver.client import Client
from clickhouse_connect.driver.exceptions import DatabaseError
from fastapi import Depends, FastAPI, HTTPException, Query
from fastapi.responses import PlainTextResponse, Response
from pydantic import ValidationError

from usagemeter.api.auth import Access, Caller, Principal, access, authorize_client
from usagemeter.api.store_session import StoreSession
from usagemeter.query.analytics import MAX_ROWS, run_query
from usagemeter.query.answer import UsageAnswer
from usagemeter.query.exports import csv_lines, json_lines, pages
from usagemeter.query.focus import COLUMNS, FOCUS_GROUPS, focus_rows
from usagemeter.query.periods import period_bounds
from usagemeter.query.spec import Bucket, OrderBy, UsageQuery, explain, parse_filter
from usagemeter.schemas.clock import SYSTEM_CLOCK, utc_datetime

MAX_RANGE: Final = timedelta(days=400)
QUERY_TIMEOUT_S: Final = 10.0
Format = Literal["json", "csv", "jsonl"]
_TIMEOUT_CODE: Final = "Code: 159"  # TIMEOUT_EXCEEDED


def add_report_routes(app: FastAPI, store: StoreSession) -> None:
    @contextmanager
    def bounded() -> Iterator[Client]:
        """The API's one-at-a-time session, a statement stopped by its time limit answering 504."""
        with store() as client:
            try:
                yield client
            except DatabaseError as exc:
                if _TIMEOUT_CODE in str(exc):
                    raise HTTPException(
                        status_code=504, detail=f"the query ran past {QUERY_TIMEOUT_S:g} s: narrow it"
                    ) from exc
                raise

    def answer(query: UsageQuery, principal: Principal) -> UsageAnswer:
        for client_id in query.client_ids:
            authorize_client(principal, client_id)
        if query.end_utc - query.start_utc > MAX_RANGE:
            raise HTTPException(status_code=422, detail=f"a range may be at most {MAX_RANGE.days} days long")
        with bounded() as client:
            return run_query(client, query, timeout_s=QUERY_TIMEOUT_S, max_rows=MAX_ROWS)

    @app.get("/v1/reports", response_model=UsageAnswer, openapi_extra=access(Access.CLIENT))
    def report(
        principal: Caller,
        query: Annotated[UsageQuery, Depends(query_from_params)],
        format: Annotated[Format, Query(description="json (the answer), csv or jsonl (its rows).")] = "json",
    ) -> Response | UsageAnswer:
        result = answer(query, principal)
        if format == "json":
            return result
        lines = csv_lines(result, result.rows) if format == "csv" else json_lines(result, result.rows)
        media = "text/csv" if format == "csv" else "application/x-ndjson"
        return PlainTextResponse("".join(lines), media_type=media, headers=_freshness_headers(result))

    @app.post("/v1/reports/query", openapi_extra=access(Access.CLIENT))
    def report_query(principal: Caller, query: UsageQuery) -> UsageAnswer:
        """The same as ``GET /v1/reports`` for a query given as JSON (a read: nothing is changed)."""
        return answer(query, principal)

    @app.get("/v1/reports/focus", openapi_extra=access(Access.CLIENT))
    def focus(
        principal: Caller,
        *,
        client_id: Annotated[list[str], Query(min_length=1, description="Client(s) to export; repeat for several.")],
        start: datetime | None = None,
        end: datetime | None = None,
        tz: Annotated[str, Query(description="IANA zone of the billing periods (local months).")] = "UTC",
        bucket: Annotated[Literal["15m", "hour", "day", "month"], Query(description="Charge period.")] = "day",
    ) -> PlainTextResponse:
        """Every row of the range as FOCUS 1.2 CSV (all pages)."""
        query = query_from_params(
            client_id=client_id, start=start, end=end, tz=tz, bucket=bucket, group_by=list(FOCUS_GROUPS), limit=100_000
        )
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=COLUMNS, lineterminator="\n")
        writer.writeheader()
        first: UsageAnswer | None = None
        for page in pages(lambda q: answer(q, principal), query):
            first = first or page
            writer.writerows(focus_rows(page, page.rows))
        headers = _freshness_headers(first) if first else {}
        return PlainTextResponse(buffer.getvalue(), media_type="text/csv", headers=headers)


def query_from_params(
    *,
    client_id: Annotated[list[str], Query(min_length=1, description="Client(s) to read; repeat for several.")],
    start: Annotated[
        datetime | None, Query(description="Inclusive; without an offset, local time in tz. Default: this month.")
    ] = None,
    end: Annotated[datetime | None, Query(description="Exclusive; 15-minute aligned like start.")] = None,
    tz: Annotated[str, Query(description="IANA zone of the range and the buckets.")] = "UTC",
    bucket: Annotated[Bucket | None, Query(description="15m, hour, day, week or month; none: totals.")] = None,
    group_by: Annotated[list[str] | None, Query(description="Dimension(s), or label:<key>.")] = None,
    filter: Annotated[list[str] | None, Query(description="dimension=v[,v] or dimension!=v[,v]; repeatable.")] = None,
    order_by: OrderBy = "cost",
    top: Annotated[int | None, Query(ge=1, le=10_000)] = None,
    offset: Annotated[int, Query(ge=0)] = 0,
    limit: Annotated[int, Query(ge=1, le=100_000)] = 1000,
) -> UsageQuery:
    """The query a report route's query string describes; 422 with the reason when it is not one."""
    try:
        month = period_bounds("month", tz, utc_datetime(SYSTEM_CLOCK.now_us()))
        return UsageQuery(
            client_ids=client_id,
            start=start or month.start,
            end=end or month.end,
            tz=tz,
            bucket=bucket,
            group_by=group_by or [],
            filters=[parse_filter(text) for text in filter or []],
            order_by=order_by,
            top=top,
            offset=offset,
            limit=limit,
        )
    except (ValueError, ValidationError) as exc:
        raise HTTPException(status_code=422, detail=explain(exc)) from exc


def _freshness_headers(answer: UsageAnswer) -> dict[str, str]:
    """CSV and JSON Lines carry no envelope: the freshness travels in headers."""
    as_of = answer.freshness.as_of
    return {
        "X-Usagemeter-As-Of": as_of.isoformat() if as_of else "",
        "X-Usagemeter-Late-Events": str(answer.freshness.late_events),
        "X-Usagemeter-Total-Rows": str(answer.total_rows),
    }
