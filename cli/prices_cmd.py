"""``usagemeter prices update|show``: load a newer genai-prices snapshot; the unit prices in force."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Annotated

import typer
from clickhouse_connect.driver.client import Client
from rich.console import Console
from rich.table import Table

from usagemeter.cli import via_api
from usagemeter.cli.times import UTC_HELP, utc_time
from usagemeter.pricing import price_updates
from usagemeter.query.price_models import BookLoaded
from usagemeter.query.prices import UnitPrices, unit_prices
from usagemeter.query.remote import DEFAULT_API_URL
from usagemeter.query.remote_prices import fetch_prices, post_snapshot

app = typer.Typer(no_args_is_help=True)

ApiUrl = Annotated[str, typer.Option("--api-url", envvar="USAGEMETER_API_URL", help="Query API of `usagemeter serve`.")]
Direct = Annotated[bool, typer.Option("--direct", help="Open the store (USAGEMETER_CLICKHOUSE_*) instead of the API.")]


@app.command()
def update(
    file: Annotated[Path | None, typer.Option("--file", help="A genai-prices data.json snapshot.")] = None,
    url: Annotated[
        str | None, typer.Option("--url", help="Where to fetch a snapshot (genai-prices publishes one).")
    ] = None,
    api_url: ApiUrl = DEFAULT_API_URL,
    direct: Direct = False,
) -> None:
    """Load a newer genai-prices snapshot as a new price book version; a bad one is refused, the book in force stays."""
    if (file is None) == (url is None):
        raise typer.BadParameter("give exactly one of --file and --url")

    def content() -> bytes:
        return file.read_bytes() if file is not None else price_updates.fetch(url or "")

    def store_call(client: Client) -> BookLoaded:
        source = str(file) if file is not None else url or ""
        stats = price_updates.apply(client, price_updates.read_snapshot(content(), source=source))
        return BookLoaded(book_version=stats.book_version, price_rows=stats.price_rows, alias_rows=stats.alias_rows)

    def api_call() -> BookLoaded:
        body = content()
        price_updates.read_snapshot(body, source=str(file or url))  # refuse here, with the file's name
        return post_snapshot(api_url, body)

    loaded = via_api.run(api_call, store_call, api_url, direct=direct)
    typer.echo(f"price book v{loaded.book_version} in force: {loaded.price_rows:,} prices, {loaded.alias_rows:,} names")


@app.command()
def show(
    *,
    model: Annotated[str, typer.Argument(help="The model as events name it (routed and dated names too).")],
    provider: Annotated[str, typer.Option("--provider", help="The provider as events name it.")] = "",
    at: Annotated[
        datetime | None, typer.Option(parser=utc_time, help=f"The moment: {UTC_HELP} [default: now].")
    ] = None,
    output_json: Annotated[bool, typer.Option("--json", help="The answer as JSON.")] = False,
    api_url: ApiUrl = DEFAULT_API_URL,
    direct: Direct = False,
) -> None:
    """The unit prices events of MODEL are charged at (standard service tier, base tier)."""
    moment = at
    quote = via_api.run(
        lambda: fetch_prices(api_url, model, provider=provider, at=moment),
        lambda client: unit_prices(client, model, provider=provider, at=moment),
        api_url,
        direct=direct,
        create=False,
    )
    if output_json:
        typer.echo(quote.model_dump_json(indent=2))
        return
    console = Console()
    console.print(_heading(quote), highlight=False)
    console.print(_table(quote))
    if not quote.priced:
        raise typer.Exit(3)


def _heading(quote: UnitPrices) -> str:
    name = f"{quote.provider}/{quote.model}" if quote.model else "no price (unknown model)"
    flags = [flag for flag, on in (("override", quote.overridden), ("approximate", quote.approximate)) if on]
    heading = f"{quote.provider_raw or '-'} {quote.model_raw} -> {name}"
    heading += f" at {quote.at:%Y-%m-%d %H:%M:%S %Z}, book v{quote.book_version}"
    return heading + (f" ({', '.join(flags)})" if flags else "")


def _table(quote: UnitPrices) -> Table:
    table = Table()
    table.add_column("Price")
    table.add_column("USD", justify="right")
    for key, value in quote.prices.items():
        if value is not None:
            table.add_row(key, f"{value.normalize():f}")
    return table
