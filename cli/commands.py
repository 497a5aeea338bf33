"""The ``usagemeter`` command: one typer app, sub-commands registered from one module each."""

from __future__ import annotations

from typing import Annotated

import typer

from usagemeter.cli.alerts_cmd import app as alerts_app
from usagemeter.cli.budgets_cmd import app as budgets_app
from usagemeter.cli.client_cmd import app as client_app
from usagemeter.cli.demo_cmd import demo
from usagemeter.cli.dlq_cmd import app as dlq_app
from usagemeter.cli.errors import debug_requested
from usagemeter.cli.kafka_cmd import app as kafka_app
from usagemeter.cli.keys_cmd import app as keys_app
from usagemeter.cli.overrides_cmd import app as overrides_app
from usagemeter.cli.prices_cmd import app as prices_app
from usagemeter.cli.report_cmd import report_command
from usagemeter.cli.reprice_cmd import reprice_command
from usagemeter.cli.signals import restore_defaults
from usagemeter.cli.topics_cmd import app as topics_app
from usagemeter.cli.usage_cmd import usage_command
from usagemeter.cli.views_cmd import app as views_app
from usagemeter.cli.worker_cmd import alerter, api, migrate, serve, worker

app = typer.Typer(
    name="usagemeter",
    help="Usage metering for LLM and other metered API calls: Kafka in, ClickHouse out.",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
)
_LONG_RUNNING = frozenset({"worker", "serve", "alerter", "api"})


_debug = [debug_requested()]


def debug_mode() -> bool:
    """``--debug`` or USAGEMETER_DEBUG=1: errors end with their traceback instead of one line."""
    return _debug[0]


@app.callback()
def _start(
    ctx: typer.Context,
    debug: Annotated[
        bool, typer.Option("--debug", help="Show the traceback of an error [env USAGEMETER_DEBUG=1].")
    ] = False,
) -> None:
    """Only the long-running commands keep SIGTERM/SIGINT as a stop request; the rest get the defaults back."""
    _debug[0] = _debug[0] or debug
    if ctx.invoked_subcommand not in _LONG_RUNNING:
        restore_defaults()


app.command()(demo)
app.command()(migrate)
app.command()(worker)
app.command()(serve)
app.command()(alerter)
app.command()(api)
app.command("usage")(usage_command)
app.command("report")(report_command)
app.add_typer(client_app, name="client", help="A client's stats, activity, request details, rates (JSON).")
app.add_typer(kafka_app, name="kafka", help="Run a local single-node Kafka broker (no Docker needed).")
app.add_typer(topics_app, name="topics", help="Kafka topics: create the events topic and its DLQ.")
app.add_typer(dlq_app, name="dlq", help="Dead letters: list, count by reason, replay after a fix.")
app.add_typer(overrides_app, name="overrides", help="Custom prices and client contracts: check or load the file.")
app.add_typer(prices_app, name="prices", help="Price data: load a newer genai-prices snapshot, show prices in force.")
app.command("reprice")(reprice_command)
app.add_typer(budgets_app, name="budgets", help="Budgets: spend limits per client, user, model or label, with alerts.")
app.add_typer(alerts_app, name="alerts", help="Budget alerts: history and delivery state of each.")
app.add_typer(keys_app, name="keys", help="API keys: create (shown once), list, revoke.")
app.add_typer(views_app, name="views", help="Aggregates: rebuild them from the events (after a new or fixed view).")
