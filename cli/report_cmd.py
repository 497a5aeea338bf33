"""``usagemeter report``: any query of the query model, as a table, JSON, CSV, JSON Lines or FOCUS 1.2.

Like ``usage`` it asks the query API first (``usagemeter serve`` owns the embedded engine) and opens the
store itself when nothing answers (``--direct`` skips the API). ``--output FILE`` writes every page of
the answer to a file with a progress bar; without it one page is printed.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable, Iterator
from datetime import datetime
from decimal import Decimal
from enum import StrEnum
from functools import partial
from pathlib import Path
from typing import Annotated

import typer
from clickhouse_connect.driver.client import Client
from rich.console import Console
from rich.progress import Progress
from rich.table import Table

from usagemeter.cli import via_api
from usagemeter.cli.times import EXAMPLES, local_time
from usagemeter.query.analytics import run_query
from usagemeter.query.answer import UsageAnswer, UsageRow
from usagemeter.query.exports import csv_lines, json_lines, pages
from usagemeter.query.focus import COLUMNS, FOCUS_GROUPS, focus_rows
from usagemeter.query.periods import period_bounds, zone
from usagemeter.query.remote import DEFAULT_API_URL
from usagemeter.query.remote_report import fetch_answer
from usagemeter.query.spec import UsageQuery, explain, parse_filter
from usagemeter.schemas.clock import SYSTEM_CLOCK, utc_datetime

EXPORT_PAGE_ROWS = 10_000
AnswerFor = Callable[[UsageQuery], UsageAnswer]


class ReportFormat(StrEnum):
    table = "table"
    json = "json"
    csv = "csv"
    jsonl = "jsonl"
    focus = "focus"


class BucketChoice(StrEnum):
    m15 = "15m"
    hour = "hour"
    day = "day"
    week = "week"
    month = "month"


class OrderChoice(StrEnum):
    cost = "cost"
    tokens = "tokens"
    requests = "requests"


_TIME_HELP = f"ISO 8601 or a date ({EXAMPLES}); without a zone, in --tz; 15-minute aligned"


def report_command(
    *,
    client: Annotated[list[str], typer.Option("--client", help="Client id(s) to report; repeat for several.")],
    start: Annotated[
        datetime | None, typer.Option("--from", parser=local_time, help=f"Start, inclusive: {_TIME_HELP}.")
    ] = None,
    end: Annotated[datetime | None, typer.Option("--to", parser=local_time, help="End, exclusive (as --from).")] = None,
    tz: Annotated[str, typer.Option("--tz", help="IANA zone of the range and buckets, e.g. Asia/Kathmandu.")] = "UTC",
    bucket: Annotated[BucketChoice | None, typer.Option("--bucket", help="Time series step; none: totals.")] = None,
    by: Annotated[
        list[str] | None,
        typer.Option(
            "--by",
            help="Group by client, user, provider, model, service, operation, status, "
            "service_tier or label:<key>; repeatable.",
        ),
    ] = None,
    filters: Annotated[
        list[str] | None, typer.Option("--filter", help="dimension=v[,v] or dimension!=v[,v]; repeatable.")
    ] = None,
    order_by: Annotated[OrderChoice, typer.Option("--order-by", help="Largest first by this.")] = OrderChoice.cost,
    top: Annotated[int | None, typer.Option("--top", min=1, help="Keep N groups, fold the rest into (other).")] = None,
    limit: Annotated[int, typer.Option("--limit", min=1, max=100_000, help="Rows printed (one page).")] = 100,
    output_format: Annotated[ReportFormat, typer.Option("--format", help="Output format.")] = ReportFormat.table,
    output: Annotated[Path | None, typer.Option("--output", help="Write every row to this file.")] = None,
    api_url: Annotated[
        str, typer.Option("--api-url", envvar="USAGEMETER_API_URL", help="Query API of `usagemeter serve`.")
    ] = DEFAULT_API_URL,
    direct: Annotated[
        bool, typer.Option("--direct", help="Open the store (USAGEMETER_CLICKHOUSE_*) instead of the API.")
    ] = False,
) -> None:
    """Usage of clients over a range (default: this month in --tz), by bucket and any dimensions."""
    month = period_bounds("month", tz, utc_datetime(SYSTEM_CLOCK.now_us()))
    is_focus = output_format is ReportFormat.focus
    try:
        query = UsageQuery(
            client_ids=client,
            start=start or month.start,
            end=end or month.end,
            tz=tz,
            bucket=(bucket.value if bucket else "day") if is_focus else (bucket.value if bucket else None),
            group_by=list(FOCUS_GROUPS) if is_focus else (by or []),
            filters=[parse_filter(text) for text in filters or []],
            order_by=order_by.value,
            top=top,
            limit=EXPORT_PAGE_ROWS if output or is_focus else limit,
        )
    except ValueError as exc:
        raise typer.BadParameter(explain(exc)) from exc

    def from_api() -> tuple[UsageAnswer, AnswerFor]:
        return fetch_answer(api_url, query), partial(fetch_answer, api_url)

    first, answer_for = via_api.run(
        from_api,
        lambda store: _local(store, query),
        api_url,
        direct=direct,
        create=False,
    )
    if output is not None:
        _export(first, answer_for, output_format, output)
    elif is_focus or output_format in (ReportFormat.csv, ReportFormat.jsonl):
        for line in _lines(first, output_format, _chain(first.rows, _all_rows(first, answer_for))):
            typer.echo(line, nl=False)
    elif output_format is ReportFormat.json:
        typer.echo(first.model_dump_json(indent=2))
    else:
        Console().print(render(first))


def _local(store: Client, query: UsageQuery) -> tuple[UsageAnswer, AnswerFor]:
    return run_query(store, query), partial(run_query, store)


def _all_rows(first: UsageAnswer, answer_for: AnswerFor) -> Iterator[UsageRow]:
    """The rows of the pages after ``first``."""
    if first.next_offset is None:
        return
    for page in pages(answer_for, first.query.model_copy(update={"offset": first.next_offset})):
        yield from page.rows


def _lines(first: UsageAnswer, output_format: ReportFormat, rows: Iterator[UsageRow]) -> Iterator[str]:
    if output_format is ReportFormat.csv:
        return csv_lines(first, rows)
    if output_format is ReportFormat.jsonl:
        return json_lines(first, rows)
    return _focus_lines(first, rows)


def _chain(head: list[UsageRow], tail: Iterator[UsageRow]) -> Iterator[UsageRow]:
    yield from head
    yield from tail


def _focus_lines(first: UsageAnswer, rows: Iterator[UsageRow]) -> Iterator[str]:
    header = ",".join(COLUMNS) + "\n"
    yield header
    for row in rows:
        for record in focus_rows(first, [row]):
            yield _csv_line([record[name] for name in COLUMNS])


def _csv_line(values: list[str]) -> str:
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerow(values)
    return buffer.getvalue()


def _export(first: UsageAnswer, answer_for: AnswerFor, output_format: ReportFormat, path: Path) -> None:
    """Every row into ``path`` with a progress bar over the answer's rows; JSON is one document of every row."""
    with Progress(transient=True) as progress, path.open("w", encoding="utf-8", newline="") as out:
        task = progress.add_task(f"writing {path.name}", total=first.total_rows)

        def counted() -> Iterator[UsageRow]:
            for row in _chain(first.rows, _all_rows(first, answer_for)):
                progress.advance(task)
                yield row

        if output_format in (ReportFormat.json, ReportFormat.table):
            rows = [json.loads(row.model_dump_json()) for row in counted()]
            envelope = json.loads(first.model_dump_json(exclude={"rows"}))
            json.dump({**envelope, "rows": rows, "next_offset": None}, out, indent=2)
        else:
            out.writelines(_lines(first, output_format, counted()))
    Console(stderr=True).print(f"{first.total_rows:,} rows written to {path}", highlight=False)


def render(answer: UsageAnswer) -> Table:
    """One page as a table that stays readable at 80 columns: the bucket, the groups, then the measures."""
    query = answer.query
    fresh = answer.freshness
    as_of = f"{fresh.as_of.astimezone(zone(query.tz)):%Y-%m-%d %H:%M:%S}" if fresh.as_of else "nothing yet"
    caption = f"complete up to {as_of} {query.tz} · {fresh.late_events:,} late events · {answer.total_rows:,} rows"
    if answer.next_offset is not None:
        caption += f" (first {len(answer.rows):,}; --limit or --output for more)"
    table = Table(title=f"Usage of {', '.join(query.client_ids)}", caption="\n".join([caption, *answer.notes]))
    if query.bucket:
        table.add_column("Start", no_wrap=True)
    for name in query.group_by:
        table.add_column(name.capitalize(), overflow="fold", max_width=24)
    for heading in ("Requests", "Tokens", "Cost"):
        table.add_column(heading, justify="right", no_wrap=True)
    for row in answer.rows:
        start = [_bucket_text(row.start, query.bucket)] if query.bucket and row.start else []
        groups = [row.group[name] or "(none)" for name in query.group_by]
        table.add_row(*start, *groups, f"{row.requests:,}", f"{row.tokens.total:,}", _money(row.cost.total))
    total = answer.total
    padding = [""] * (len(query.group_by) + bool(query.bucket))
    if padding:
        padding[0] = "total"
        table.add_section()
        table.add_row(*padding, f"{total.requests:,}", f"{total.tokens.total:,}", _money(total.cost.total))
    return table


_BUCKET_FORMAT = {"15m": "%m-%d %H:%M", "hour": "%m-%d %H:%M", "day": "%Y-%m-%d", "week": "%Y-%m-%d", "month": "%Y-%m"}


def _bucket_text(start: datetime, bucket: str) -> str:
    return start.strftime(_BUCKET_FORMAT[bucket])


def _money(amount: Decimal) -> str:
    """Rounded for reading (6 places); JSON, CSV and FOCUS keep every digit."""
    return f"${amount:,.6f}"
