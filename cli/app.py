"""The ``usagemeter`` command: one typer app, sub-commands registered from one module each."""

from __future__ import annotations

import typer

app = typer.Typer(
    name="usagemeter",
    help="Usage metering for LLM and other metered API calls: Kafka in, ClickHouse out.",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
)


def main() -> None:
    app()
