"""``usagemeter client stats|activity|request|rates``: the report shapes of other usage trackers, as JSON.

Per-user totals (``UsageStats``), a client's activity (models used, recent requests), one request's
details and the request and token rates of the last minute and hour: ``query/shapes.py``. Like
``report`` they ask the query API first and open the store when nothing answers (``--direct``: at once).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Annotated, TypeVar
from urllib.parse import quote

import typer
from clickhouse_connect.driver.client import Client
from pydantic import BaseModel

from usagemeter.cli import via_api
from usagemeter.cli.times import EXAMPLES, UTC_HELP, local_time, utc_time
from usagemeter.query.periods import period_bounds
from usagemeter.query.remote import DEFAULT_API_URL, request_api
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
from usagemeter.schemas.clock import SYSTEM_CLOCK, utc_datetime
from usagemeter.schemas.errors import UsageApiError

M = TypeVar("M", bound=BaseModel)
app = typer.Typer(no_args_is_help=True)

ClientId = Annotated[str, typer.Argument(help="The client.")]
Start = Annotated[
    datetime | None,
    typer.Option("--from", parser=local_time, help=f"Start, inclusive ({EXAMPLES}; in --tz) [default: this month]."),
]
End = Annotated[datetime | None, typer.Option("--to", parser=local_time, help="End, exclusive (as --from).")]
Zone = Annotated[str, typer.Option("--tz", help="IANA zone of the range.")]
ApiUrl = Annotated[str, typer.Option("--api-url", envvar="USAGEMETER_API_URL", help="Query API of `usagemeter serve`.")]
Direct = Annotated[bool, typer.Option("--direct", help="Open the store (USAGEMETER_CLICKHOUSE_*) instead of the API.")]


@app.command("stats")
def stats_command(
    client_id: ClientId,
    *,
    user: Annotated[str | None, typer.Option("--user", help="Only this user.")] = None,
    start: Start = None,
    end: End = None,
    tz: Zone = "UTC",
    api_url: ApiUrl = DEFAULT_API_URL,
    direct: Direct = False,
) -> None:
    """Requests, tokens (prompt and completion apart) and cost of a client or one of its users."""
    first, last = _range(start, end, tz)
    params = {**_window(first, last, tz), **({"user_id": user} if user else {})}
    _show(
        UsageStats,
        api_url,
        f"/v1/clients/{quote(client_id, safe='')}/stats",
        params,
        lambda store: usage_stats(store, client_id, start=first, end=last, user_id=user, tz=tz),
        direct=direct,
    )


@app.command("activity")
def activity_command(
    client_id: ClientId,
    *,
    recent: Annotated[int, typer.Option("--recent", min=0, max=1000, help="Newest requests to list.")] = 10,
    start: Start = None,
    end: End = None,
    tz: Zone = "UTC",
    api_url: ApiUrl = DEFAULT_API_URL,
    direct: Direct = False,
) -> None:
    """Total and successful requests, each model used (tokens, cost, last used) and the newest requests."""
    first, last = _range(start, end, tz)
    _show(
        ClientUsage,
        api_url,
        f"/v1/clients/{quote(client_id, safe='')}/activity",
        {**_window(first, last, tz), "recent": str(recent)},
        lambda store: client_usage(store, client_id, start=first, end=last, tz=tz, recent=recent),
        direct=direct,
    )


@app.command("request")
def request_command(
    client_id: ClientId,
    request_id: Annotated[str, typer.Argument(help="The request_id the event carried.")],
    *,
    api_url: ApiUrl = DEFAULT_API_URL,
    direct: Direct = False,
) -> None:
    """One request's model, status, error, tokens, cost (as priced now) and latency."""

    def from_store(store: Client) -> RequestDetails:
        found = get_request_details(store, client_id, request_id)
        if found is None:
            raise UsageApiError(f"client {client_id!r} has no request {request_id!r}")
        return found

    path = f"/v1/clients/{quote(client_id, safe='')}/requests/{quote(request_id, safe='')}"
    _show(RequestDetails, api_url, path, {}, from_store, direct=direct)


@app.command("rates")
def rates_command(
    client_id: ClientId,
    *,
    at: Annotated[datetime | None, typer.Option("--at", parser=utc_time, help=f"End instant: {UTC_HELP}.")] = None,
    api_url: ApiUrl = DEFAULT_API_URL,
    direct: Direct = False,
) -> None:
    """Requests and tokens in the minute and the hour before now (or --at): for rate-limit monitoring."""
    instant = at or utc_datetime(SYSTEM_CLOCK.now_us())
    _show(
        Rates,
        api_url,
        f"/v1/clients/{quote(client_id, safe='')}/rates",
        {"at": instant.isoformat()},
        lambda store: rates(store, client_id, instant),
        direct=direct,
    )


def _range(start: datetime | None, end: datetime | None, tz: str) -> tuple[datetime, datetime]:
    try:
        month = period_bounds("month", tz, utc_datetime(SYSTEM_CLOCK.now_us()))
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--tz") from exc
    return start or month.start, end or month.end


def _window(start: datetime, end: datetime, tz: str) -> dict[str, str]:
    return {"start": start.isoformat(), "end": end.isoformat(), "tz": tz}


def _show(
    model: type[M],
    api_url: str,
    path: str,
    params: dict[str, str],
    from_store: Callable[[Client], M],
    *,
    direct: bool,
) -> None:
    answer = via_api.run(
        lambda: request_api(model, api_url, "GET", path, params=params),
        from_store,
        api_url,
        direct=direct,
        create=False,
    )
    typer.echo(answer.model_dump_json(indent=2))
