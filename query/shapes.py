"""The report shapes users of other LLM usage trackers know, as functions over the query model and the events.

``usage_stats`` (per-user totals with prompt and completion apart), ``client_usage`` (total and successful
requests, ``models_used``, ``recent_requests``), ``get_request_details`` and ``rates`` (requests and
tokens over the last minute and hour, for rate-limit monitoring). Totals come from the aggregates through
``run_query``; single requests, last-used times (a scan of the client's range, two columns) and
sub-15-minute rates need the events, read from ``usage_events`` by its ``(client_id, event_time)`` key
(and ``usage_events_current`` for repriced costs).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any, Final

from clickhouse_connect.driver.client import Client
from pydantic import AwareDatetime, BaseModel, ConfigDict

from usagemeter.query.analytics import run_query
from usagemeter.query.models import Money
from usagemeter.query.spec import Filter, UsageQuery


class _Shape(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class UsageStats(_Shape):
    total_requests: int
    total_tokens: int
    total_prompt_tokens: int
    total_completion_tokens: int
    total_cost: Money
    period_start: AwareDatetime
    period_end: AwareDatetime


class ModelUsage(_Shape):
    model_name: str
    model_provider: str
    total_input_tokens: int
    total_output_tokens: int
    total_cost: Money
    last_used: AwareDatetime | None


class RequestDetails(_Shape):
    request_id: str
    event_id: str
    timestamp: AwareDatetime
    client_id: str
    user_id: str
    model_name: str
    model_provider: str
    status: str
    error: str
    input_tokens: int
    output_tokens: int
    total_cost: Money
    latency_ms: int


class ClientUsage(_Shape):
    client_id: str
    total_requests: int
    successful_requests: int
    total_input_tokens: int
    total_output_tokens: int
    total_cost: Money
    models_used: list[ModelUsage]
    recent_requests: list[RequestDetails]


class Rates(_Shape):
    """Requests and tokens (input + output) of a client in the minute and the hour before ``at``."""

    at: AwareDatetime
    requests_last_minute: int
    tokens_last_minute: int
    requests_last_hour: int
    tokens_last_hour: int


def usage_stats(
    client: Client, client_id: str, *, start: datetime, end: datetime, user_id: str | None = None, tz: str = "UTC"
) -> UsageStats:
    """One client's (or one of its users') totals in ``[start, end)``."""
    filters = [] if user_id is None else [Filter(dimension="user", values=[user_id])]
    query = UsageQuery(client_ids=[client_id], start=start, end=end, tz=tz, filters=filters)
    total = run_query(client, query).total
    return UsageStats(
        total_requests=total.requests,
        total_tokens=total.tokens.total,
        total_prompt_tokens=total.tokens.input,
        total_completion_tokens=total.tokens.output,
        total_cost=total.cost.total,
        period_start=query.start_utc,
        period_end=query.end_utc,
    )


_DETAILS: Final = """
SELECT request_id, toString(event_id), event_time, client_id, user_id, model, provider, status, error,
       input_tokens, output_tokens, cost_total, latency_ms
FROM usage_events_current
WHERE client_id = {client_id:String}"""
_RECENT_SQL: Final = (
    _DETAILS
    + """ AND event_id IN (SELECT event_id FROM usage_events WHERE client_id = {client_id:String}
                      ORDER BY event_time DESC LIMIT {limit:UInt32})
ORDER BY event_time DESC"""
)
_ONE_SQL: Final = _DETAILS + " AND request_id = {request_id:String} ORDER BY event_time LIMIT 1"
_LAST_USED_SQL: Final = """
SELECT provider, model, max(event_time) FROM usage_events
WHERE client_id = {client_id:String}
  AND event_time >= {since:DateTime64(6, 'UTC')} AND event_time < {end:DateTime64(6, 'UTC')}
GROUP BY provider, model
"""
_RATES_SQL: Final = """
SELECT sumIf(requests, event_time >= {minute:DateTime64(6, 'UTC')}),
       sumIf(input_tokens + output_tokens, event_time >= {minute:DateTime64(6, 'UTC')}),
       sum(requests), sum(input_tokens + output_tokens)
FROM usage_events
WHERE client_id = {client_id:String}
  AND event_time >= {hour:DateTime64(6, 'UTC')} AND event_time < {at:DateTime64(6, 'UTC')}
"""


def client_usage(
    client: Client, client_id: str, *, start: datetime, end: datetime, tz: str = "UTC", recent: int = 10
) -> ClientUsage:
    """A client's usage in ``[start, end)``: totals, each model used, and its ``recent`` newest requests."""
    base = UsageQuery(client_ids=[client_id], start=start, end=end, tz=tz, group_by=["status"])
    by_status = run_query(client, base)
    by_model = run_query(client, base.model_copy(update={"group_by": ["provider", "model"]}))
    range_parameters = {"client_id": client_id, "since": base.start_utc, "end": base.end_utc}
    last_used = {
        (str(provider), str(model)): _utc(at)
        for provider, model, at in client.query(_LAST_USED_SQL, parameters=range_parameters).result_rows
    }
    total = by_status.total
    return ClientUsage(
        client_id=client_id,
        total_requests=total.requests,
        successful_requests=sum(row.requests for row in by_status.rows if row.group["status"] == "ok"),
        total_input_tokens=total.tokens.input,
        total_output_tokens=total.tokens.output,
        total_cost=total.cost.total,
        models_used=[
            ModelUsage(
                model_name=row.group["model"],
                model_provider=row.group["provider"],
                total_input_tokens=row.tokens.input,
                total_output_tokens=row.tokens.output,
                total_cost=row.cost.total,
                last_used=last_used.get((row.group["provider"], row.group["model"])),
            )
            for row in by_model.rows
        ],
        recent_requests=[
            _details(row)
            for row in client.query(_RECENT_SQL, parameters={"client_id": client_id, "limit": recent}).result_rows
        ],
    )


def get_request_details(client: Client, client_id: str, request_id: str) -> RequestDetails | None:
    """The first event of ``request_id`` among ``client_id``'s, as priced now; None when there is none."""
    rows = client.query(_ONE_SQL, parameters={"client_id": client_id, "request_id": request_id}).result_rows
    return _details(rows[0]) if rows else None


def rates(client: Client, client_id: str, at: datetime) -> Rates:
    """Requests and tokens of the minute and the hour before ``at`` (an aware instant), from the events."""
    params = {"client_id": client_id, "at": at, "minute": at - timedelta(minutes=1), "hour": at - timedelta(hours=1)}
    minute_requests, minute_tokens, hour_requests, hour_tokens = client.query(
        _RATES_SQL, parameters=params
    ).result_rows[0]
    return Rates(
        at=at,
        requests_last_minute=int(minute_requests),
        tokens_last_minute=int(minute_tokens),
        requests_last_hour=int(hour_requests),
        tokens_last_hour=int(hour_tokens),
    )


def _details(row: Sequence[Any]) -> RequestDetails:
    names = RequestDetails.model_fields
    values = dict(zip(names, row, strict=True))
    values["timestamp"] = _utc(values["timestamp"])
    values["total_cost"] = Decimal(values["total_cost"])
    return RequestDetails.model_validate(values)


def _utc(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
