"""``usagemeter usage``: a client's usage report, as a table or as JSON.

By default it asks the query API (``usagemeter serve``, which owns the embedded engine) and opens the
store itself only when nothing answers there; ``--direct`` skips the API.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from enum import StrEnum
from typing import Annotated

import typer
from clickhouse_connect.driver.client import Client
from rich.console import Console, Group
from rich.panel import Panel
from rich.table import Table

from usagemeter.cli import via_api
from usagemeter.cli.formats import FormatChoice
from usagemeter.cli.times import EXAMPLES, local_time
from usagemeter.query import UsageReport, get_usage
from usagemeter.query.models import UsageTotals
from usagemeter.query.periods import Period
from usagemeter.query.remote import DEFAULT_API_URL, fetch_usage


class PeriodChoice(StrEnum):
    day = "day"
    month = "month"


class ByChoice(StrEnum):
    model = "model"
    provider = "provider"
    user = "user"


def usage_command(
    *,
    client: Annotated[str, typer.Option("--client", help="Client id whose usage to report.")],
    user: Annotated[str | None, typer.Option("--user", help="Only this user's usage.")] = None,
    period: Annotated[PeriodChoice, typer.Option(help="Current period to show besides the totals.")] = (
        PeriodChoice.month
    ),
    tz: Annotated[str, typer.Option("--tz", help="IANA time zone of the period, e.g. Europe/Berlin.")] = "UTC",
    by: Annotated[ByChoice, typer.Option("--by", help="Breakdown to list.")] = ByChoice.model,
    output_format: Annotated[FormatChoice, typer.Option("--format", help="table, or the report as JSON.")] = (
        FormatChoice.table
    ),
    since: Annotated[
        datetime | None,
        typer.Option(
            parser=local_time,
            help=f"Totals from this time, 15-minute aligned: ISO 8601 or a date ({EXAMPLES}); without a zone, in --tz.",
        ),
    ] = None,
    api_url: Annotated[
        str, typer.Option("--api-url", envvar="USAGEMETER_API_URL", help="Query API of `usagemeter serve`.")
    ] = DEFAULT_API_URL,
    direct: Annotated[
        bool, typer.Option("--direct", help="Open the store (USAGEMETER_CLICKHOUSE_*) instead of the API.")
    ] = False,
) -> None:
    """Usage and cost of a client: totals, the current day or month, and a breakdown sorted by cost."""
    period_name: Period = "day" if period is PeriodChoice.day else "month"
    include_users = by is ByChoice.user

    def from_api() -> UsageReport:
        return fetch_usage(
            api_url, client, user_id=user, period=period_name, tz=tz, since=since, include_users=include_users
        )

    def from_store(store: Client) -> UsageReport:
        return get_usage(
            store, client, user_id=user, period=period_name, tz=tz, since=since, include_users=include_users
        )

    report = via_api.run(from_api, from_store, api_url, direct=direct, create=False)
    if output_format is FormatChoice.json:
        typer.echo(report.model_dump_json(indent=2))
    else:
        Console().print(render(report, by.value))


def render(report: UsageReport, by: str) -> Group:
    """A totals panel and the breakdown ``by`` ("model", "provider" or "user"), most expensive first."""
    return Group(_totals_panel(report), _breakdown_table(report, by))


def _totals_panel(report: UsageReport) -> Panel:
    now = report.current_period
    scope = "all time" if report.since is None else f"since {report.since.isoformat()}"
    label = f"{now.period_start:%Y-%m-%d}" if report.period == "day" else f"{now.period_start:%B %Y}"
    lines = [
        f"[bold]Total[/bold] ({scope}): {_money(report.total_cost)}  ·  {report.total_requests:,} requests"
        f"  ·  {report.total_tokens:,} tokens",
        f"[bold]This {report.period}[/bold] ({label}, {report.tz}): {_money(now.cost)}  ·  {now.requests:,} requests"
        f"  ·  {now.tokens:,} tokens",
        f"Events {report.events:,}  ·  errors {report.errors:,}  ·  web searches {report.web_searches:,}",
    ]
    components = [
        f"{name} {_money(amount)}"
        for name, amount in report.cost_breakdown.model_dump().items()
        if name != "total" and amount
    ]
    if components:
        lines.append("Cost by component: " + "  ·  ".join(components))
    if report.unpriced:
        lines.append(f"[yellow]{report.unpriced:,} events of models without a price: their cost is missing[/yellow]")
    who = report.client_id if report.user_id is None else f"{report.client_id} / user {report.user_id}"
    return Panel("\n".join(lines), title=f"Usage of {who}", title_align="left", highlight=False)


def _breakdown_table(report: UsageReport, by: str) -> Table:
    slices: dict[str, UsageTotals] = {"model": report.by_model, "provider": report.by_provider}.get(by, report.by_user)
    table = Table(title=f"By {by}", title_justify="left")
    table.add_column(by.capitalize())
    for heading in ("Requests", "Tokens", "Cost", "Share"):
        table.add_column(heading, justify="right")
    for name, piece in sorted(slices.items(), key=lambda item: (-item[1].cost, item[0])):
        share = f"{piece.cost / report.total_cost:.1%}" if report.total_cost else "-"
        table.add_row(name or "(none)", f"{piece.requests:,}", f"{piece.tokens:,}", _money(piece.cost), share)
    return table


def _money(amount: Decimal) -> str:
    """Rounded for reading (6 places); the JSON output keeps every digit."""
    return f"${amount:,.6f}"
