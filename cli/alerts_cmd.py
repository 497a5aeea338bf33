"""``usagemeter alerts list|show``: the alert history, with each delivery's status, attempts and last error."""

from __future__ import annotations

from typing import Annotated

import typer
from clickhouse_connect.driver.client import Client
from rich.console import Console
from rich.table import Table

from usagemeter.budgets import manage, remote
from usagemeter.cli import via_api
from usagemeter.cli.budgets_cmd import ApiUrl, AsJson, Direct
from usagemeter.query.remote import DEFAULT_API_URL
from usagemeter.schemas.errors import UsageApiError

app = typer.Typer(help="Budget alerts: what was sent, to which channels, and whether it arrived.")


@app.command("list")
def list_alerts(
    *,
    budget: Annotated[str, typer.Option("--budget", help="Only this budget's alerts.")] = "",
    days: Annotated[float, typer.Option(min=0.001, help="How far back, in days.")] = 30,
    limit: Annotated[int, typer.Option(min=1, max=10_000, help="At most this many, newest first.")] = 100,
    output_json: AsJson = False,
    api_url: ApiUrl = DEFAULT_API_URL,
    direct: Direct = False,
) -> None:
    """Alerts, newest first, each with its channels' delivery state."""
    records = via_api.run(
        lambda: remote.alerts(api_url, budget_id=budget, days=days, limit=limit),
        lambda s: manage.alerts(s, budget_id=budget, days=days, limit=limit),
        api_url,
        direct=direct,
        create=False,
    )
    if output_json:
        typer.echo(remote.AlertRecords(records).model_dump_json(indent=2))
        return
    table = Table("alert", "at", "budget", "kind", "thresholds", "spend", "deliveries", box=None)
    for record in records:
        a = record.alert
        table.add_row(
            a.alert_id, a.created_at.strftime("%Y-%m-%d %H:%M:%S"), a.budget_id, a.kind, ", ".join(a.thresholds),
            f"{a.spend}/{a.limit} {a.unit}", _deliveries(record),
        )  # fmt: skip
    Console().print(table)


@app.command()
def show(
    alert_id: Annotated[str, typer.Argument(help="The alert's id.")],
    api_url: ApiUrl = DEFAULT_API_URL,
    direct: Direct = False,
) -> None:
    """One alert as delivered (JSON), then every delivery attempt."""

    def from_store(store: Client) -> manage.AlertRecord:
        found = manage.alert(store, alert_id)
        if found is None:
            raise UsageApiError(f"no alert {alert_id!r}", status_code=404)
        return found

    record = via_api.run(lambda: remote.alert(api_url, alert_id), from_store, api_url, direct=direct, create=False)
    typer.echo(record.alert.model_dump_json(indent=2))
    for d in record.deliveries:
        typer.echo(f"{d.at.isoformat()}  {d.channel:<10} attempt {d.attempt}  {d.status}  {d.error}".rstrip())


def _deliveries(record: manage.AlertRecord) -> str:
    last: dict[str, tuple[str, int]] = {}
    for d in record.deliveries:
        last[d.channel] = (d.status, d.attempt)
    return ", ".join(f"{c} {s}" + (f" x{n}" if n > 1 else "") for c, (s, n) in last.items()) or "pending"
