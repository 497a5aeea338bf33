"""``usagemeter views rebuild``: re-derive the aggregates from the events, with ingestion running.

After a new view, a new dimension or a corrected one (materialized views only see new inserts). Through
the API of ``usagemeter serve`` when one answers (it owns the embedded store), else on the store itself.
How it avoids counting an event twice: ``query/rebuild.py``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

import typer

from usagemeter.cli import via_api
from usagemeter.cli.times import UTC_HELP, utc_time
from usagemeter.query.rebuild import TABLES, RebuildRequest, RebuildResult, rebuild
from usagemeter.query.remote import DEFAULT_API_URL
from usagemeter.query.remote_views import post_rebuild

app = typer.Typer(no_args_is_help=True)


@app.command("rebuild")
def rebuild_command(
    *,
    since: Annotated[
        datetime | None,
        typer.Option(parser=utc_time, help=f"First bucket to re-derive: {UTC_HELP} [default: all history]."),
    ] = None,
    table: Annotated[
        list[str] | None, typer.Option("--table", help=f"Only this aggregate (repeatable): {', '.join(TABLES)}.")
    ] = None,
    force: Annotated[bool, typer.Option("--force", help="Remove the lock of a rebuild that crashed.")] = False,
    output_json: Annotated[bool, typer.Option("--json", help="The result as JSON.")] = False,
    api_url: Annotated[
        str, typer.Option("--api-url", envvar="USAGEMETER_API_URL", help="Query API of `usagemeter serve`.")
    ] = DEFAULT_API_URL,
    direct: Annotated[bool, typer.Option("--direct", help="Open the store instead of the API.")] = False,
) -> None:
    """Correct the aggregates from `since` on to the events' own sums; safe while workers ingest, and twice."""
    try:
        request = RebuildRequest(since=since, tables=table or [], force=force)
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from exc
    result = via_api.run(
        lambda: post_rebuild(api_url, request),
        lambda store: rebuild(store, request),
        api_url,
        direct=direct,
        create=False,
    )
    typer.echo(result.model_dump_json(indent=2) if output_json else _summary(result))


def _summary(result: RebuildResult) -> str:
    start = f"from {result.since:%Y-%m-%d %H:%M} UTC" if result.since else "over all history"
    lines = [f"Aggregates rebuilt {start}:"]
    for table in result.tables:
        change = f"{table.corrected_rows:,} rows corrected" if table.corrected_rows else "already exact"
        lines.append(
            f"  {table.table}: {change} (events up to {table.cut:%H:%M:%S.%f}"[:-3] + f", {table.seconds:.1f} s)"
        )
    return "\n".join(lines)
