"""``usagemeter budgets create|list|show|update|delete``: through the running API, or on the store directly.

Thresholds are ``80%`` (of the limit) or ``25`` (an amount in the budget's unit); channels are ``log``,
``kafka``, ``webhook:<url>`` or ``slack:<url>``; a label scope is ``--label key=value``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

import typer
from pydantic import ValidationError
from rich.console import Console
from rich.table import Table

from usagemeter.budgets import manage, remote
from usagemeter.budgets.model import (
    Budget,
    BudgetPatch,
    BudgetSpec,
    Channel,
    KafkaChannel,
    LogChannel,
    Scope,
    Threshold,
    WebhookChannel,
)
from usagemeter.cli import via_api
from usagemeter.cli.times import UTC_HELP, utc_time
from usagemeter.query.remote import DEFAULT_API_URL

app = typer.Typer(help="Budgets: spend limits per client, user, model or label, with threshold alerts.")

ApiUrl = Annotated[str, typer.Option("--api-url", envvar="USAGEMETER_API_URL", help="Query API of `usagemeter serve`.")]
Direct = Annotated[bool, typer.Option("--direct", help="Open the store instead of the API.")]
AsJson = Annotated[bool, typer.Option("--json", help="The result as JSON.")]
Thresholds = Annotated[
    list[str] | None,
    typer.Option("--threshold", help="80% or an amount; repeat for several [default: 50%, 80%, 100%]."),
]
Channels = Annotated[
    list[str] | None,
    typer.Option(
        "--channel", help="log, kafka, webhook:<url> or slack:<url>; repeat for several [default: log, kafka]."
    ),
]


@app.command()
def create(
    *,
    client: Annotated[str, typer.Option("--client", help="The client whose usage counts.")],
    limit: Annotated[str, typer.Option(help="The limit, in --unit.")],
    user: Annotated[str | None, typer.Option("--user", help="Only this user's usage.")] = None,
    provider: Annotated[str | None, typer.Option(help="Only this provider's usage.")] = None,
    model: Annotated[str | None, typer.Option(help="Only this model's usage (its id, as reports show it).")] = None,
    label: Annotated[str | None, typer.Option(help="Only usage carrying this label: key=value.")] = None,
    period: Annotated[str, typer.Option(help="day, week, month or rolling.")] = "month",
    rolling_days: Annotated[int | None, typer.Option(help="Length of a rolling period.")] = None,
    tz: Annotated[str, typer.Option(help="IANA zone the period is aligned in.")] = "UTC",
    week_start: Annotated[str, typer.Option(help="First day of a week period.")] = "monday",
    unit: Annotated[str, typer.Option(help="usd, tokens or requests.")] = "usd",
    threshold: Thresholds = None,
    mode: Annotated[str, typer.Option(help="soft (alerts only) or hard (the pre-flight check refuses).")] = "soft",
    channel: Channels = None,
    name: Annotated[str, typer.Option(help="A name, unique, that commands take in place of the id.")] = "",
    output_json: AsJson = False,
    api_url: ApiUrl = DEFAULT_API_URL,
    direct: Direct = False,
) -> None:
    """Create a budget; names never seen in any usage yet are accepted with a warning."""
    label_key, label_value = _label(label)
    fields: dict[str, Any] = {
        "name": name,
        "scope": Scope(
            client_id=client, user_id=user, provider=provider, model=model, label_key=label_key, label_value=label_value
        ),
        "period": period,
        "tz": tz,
        "week_start": week_start,
        "rolling_days": rolling_days,
        "unit": unit,
        "limit": limit,
        "mode": mode,
    }
    if threshold:
        fields["thresholds"] = [Threshold.parse(t) for t in threshold]
    if channel:
        fields["channels"] = [_channel(c) for c in channel]
    spec = _valid(BudgetSpec, fields)
    saved = via_api.run(lambda: remote.create(api_url, spec), lambda s: manage.create(s, spec), api_url, direct=direct)
    _print_saved(saved, output_json)


@app.command("list")
def list_budgets(
    client: Annotated[str | None, typer.Option("--client", help="Only this client's budgets.")] = None,
    output_json: AsJson = False,
    api_url: ApiUrl = DEFAULT_API_URL,
    direct: Direct = False,
) -> None:
    """The budgets in force (not deleted)."""
    budgets = via_api.run(
        lambda: remote.listed(api_url, client_id=client),
        lambda s: manage.listed(s, client_id=client),
        api_url,
        direct=direct,
        create=False,
    )
    if output_json:
        typer.echo(remote.Budgets(budgets).model_dump_json(indent=2))
        return
    table = Table("id", "name", "scope", "period", "limit", "mode", box=None)
    for b in budgets:
        table.add_row(b.budget_id, b.spec.name, b.spec.scope.describe(), _period(b), _limit(b), b.spec.mode)
    Console().print(table)


@app.command()
def show(
    budget_id: Annotated[str, typer.Argument(help="The budget's id or name.")],
    at: Annotated[datetime | None, typer.Option(parser=utc_time, help=f"The period containing: {UTC_HELP}.")] = None,
    output_json: AsJson = False,
    api_url: ApiUrl = DEFAULT_API_URL,
    direct: Direct = False,
) -> None:
    """Spend in the current period (or the one containing --at), its bounds and next reset, and every version."""
    shown = via_api.run(
        lambda: remote.show(api_url, budget_id, at=at),
        lambda s: manage.show(s, budget_id, at=at),
        api_url,
        direct=direct,
        create=False,
    )
    if output_json:
        typer.echo(shown.model_dump_json(indent=2))
        return
    status = shown.status
    budget = status.budget
    lines = [
        f"{budget.budget_id} v{budget.version} {budget.spec.name}".rstrip(),
        f"  scope:   {budget.spec.scope.describe()}",
        f"  period:  {status.period_start.isoformat()} .. {status.period_end.isoformat()} ({_period(budget)})",
        f"  resets:  {status.next_reset.isoformat() if status.next_reset else 'never (rolling)'}",
        f"  spend:   {status.spend} of {_limit(budget)} ({status.percent}%), mode {budget.spec.mode}",
        f"  crossed: {', '.join(status.crossed) or 'none'} of {', '.join(t.key for t in budget.spec.thresholds)}",
        f"  versions: {', '.join(f'v{v.version} {v.changed_at.isoformat()}' for v in shown.history)}",
    ]
    typer.echo("\n".join(lines))


@app.command()
def update(
    budget_id: Annotated[str, typer.Argument(help="The budget's id or name.")],
    *,
    limit: Annotated[str | None, typer.Option(help="A new limit.")] = None,
    threshold: Thresholds = None,
    mode: Annotated[str | None, typer.Option(help="soft or hard.")] = None,
    channel: Channels = None,
    name: Annotated[str | None, typer.Option(help="A new name.")] = None,
    tz: Annotated[str | None, typer.Option(help="A new zone.")] = None,
    output_json: AsJson = False,
    api_url: ApiUrl = DEFAULT_API_URL,
    direct: Direct = False,
) -> None:
    """Change a budget: a new version; thresholds already crossed stay crossed unless the new limit is above
    the spend (then a "resolved" notice re-arms them)."""
    fields: dict[str, Any] = {"limit": limit, "mode": mode, "name": name, "tz": tz}
    if threshold:
        fields["thresholds"] = [Threshold.parse(t) for t in threshold]
    if channel:
        fields["channels"] = [_channel(c) for c in channel]
    patch = _valid(BudgetPatch, {k: v for k, v in fields.items() if v is not None})
    saved = via_api.run(
        lambda: remote.update(api_url, budget_id, patch),
        lambda s: manage.update(s, budget_id, patch),
        api_url,
        direct=direct,
    )
    _print_saved(saved, output_json)


@app.command()
def delete(
    budget_id: Annotated[str, typer.Argument(help="The budget's id or name.")],
    api_url: ApiUrl = DEFAULT_API_URL,
    direct: Direct = False,
) -> None:
    """Delete a budget (its versions and alerts stay in the history)."""
    deleted = via_api.run(
        lambda: remote.delete(api_url, budget_id), lambda s: manage.delete(s, budget_id), api_url, direct=direct
    )
    typer.echo(f"deleted {deleted.budget_id} (v{deleted.version})")


def _valid(model: type[BudgetSpec] | type[BudgetPatch], fields: dict[str, Any]) -> Any:
    """The model, or exit 2 with each refused field named."""
    try:
        return model.model_validate(fields)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'budget'}: {e['msg']}" for e in exc.errors())
        raise typer.BadParameter(problems) from exc


def _label(text: str | None) -> tuple[str | None, str | None]:
    if text is None:
        return None, None
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise typer.BadParameter(f"--label {text!r}: give key=value")
    return key, value


def _channel(text: str) -> Channel:
    kind, _, url = text.partition(":")
    if kind == "log" and not url:
        return LogChannel()
    if kind == "kafka" and not url:
        return KafkaChannel()
    if kind in ("webhook", "slack") and url:
        try:
            return WebhookChannel(url=url, format="slack" if kind == "slack" else "json")
        except ValidationError as exc:
            raise typer.BadParameter(f"--channel {kind}: the URL must be http:// or https://") from exc
    raise typer.BadParameter(f"--channel {text!r}: use log, kafka, webhook:<url> or slack:<url>")


def _print_saved(saved: manage.Saved, output_json: bool) -> None:
    errors = Console(stderr=True)
    for warning in saved.warnings:
        errors.print(f"[yellow]warning:[/yellow] {warning}", highlight=False)
    if output_json:
        typer.echo(saved.model_dump_json(indent=2))
    else:
        b = saved.budget
        typer.echo(f"{b.budget_id} v{b.version}: {b.spec.scope.describe()}, {_limit(b)} per {_period(b)}")


def _period(budget: Budget) -> str:
    spec = budget.spec
    if spec.period == "rolling":
        return f"rolling {spec.rolling_days} days"
    week = f" from {spec.week_start}" if spec.period == "week" else ""
    return f"{spec.period}{week} in {spec.tz}"


def _limit(budget: Budget) -> str:
    return f"{budget.spec.limit} {budget.spec.unit}"
