"""``usagemeter reprice``: price a period's events again with the book and overrides in force now."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

import typer

from usagemeter.cli import via_api
from usagemeter.cli.times import UTC_HELP, utc_time
from usagemeter.pricing.reprice import Repriced
from usagemeter.query.price_models import RepriceRequest
from usagemeter.query.prices import reprice
from usagemeter.query.remote import DEFAULT_API_URL
from usagemeter.query.remote_prices import post_reprice


def reprice_command(
    *,
    since: Annotated[datetime, typer.Option(parser=utc_time, help=f"First event time to reprice: {UTC_HELP}.")],
    until: Annotated[
        datetime | None, typer.Option(parser=utc_time, help=f"End (exclusive): {UTC_HELP} [default: no end].")
    ] = None,
    client: Annotated[str, typer.Option("--client", help="Only this client's events.")] = "",
    model: Annotated[str, typer.Option("--model", help="Only this model (its id, or the name events give).")] = "",
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Say what would change; write nothing.")] = False,
    reason: Annotated[str, typer.Option(help="Kept with every adjustment row.")] = "reprice",
    output_json: Annotated[bool, typer.Option("--json", help="The result as JSON.")] = False,
    api_url: Annotated[
        str, typer.Option("--api-url", envvar="USAGEMETER_API_URL", help="Query API of `usagemeter serve`.")
    ] = DEFAULT_API_URL,
    direct: Annotated[bool, typer.Option("--direct", help="Open the store instead of the API.")] = False,
) -> None:
    """Reprice events (unknown models once priced, corrected prices); safe to run twice, adds nothing then."""
    request = RepriceRequest(
        since=since,
        until=until,
        client_id=client,
        model=model,
        dry_run=dry_run,
        reason=reason,
    )
    result = via_api.run(
        lambda: post_reprice(api_url, request),
        lambda store: reprice(store, request),
        api_url,
        direct=direct,
        create=not dry_run,
    )
    typer.echo(result.model_dump_json(indent=2) if output_json else _summary(result.root))


def _summary(result: Repriced) -> str:
    verb = "would change" if result.dry_run else "changed"
    lines = [
        f"{result.events_repriced:,} events {verb} ({result.unknown_now_priced:,} unknown models now priced); "
        f"cost {result.cost_delta:+f} USD; run {result.run_id}"
    ]
    lines += [f"  {key}: {delta:+f}" for key, delta in result.cost_delta_by_model.items()]
    return "\n".join(lines)
