"""``usagemeter keys create|list|revoke``: the API's keys, through ``usagemeter serve`` or on the store itself.

Like ``prices`` and ``reprice``, they ask the running API first (with the local admin key, or
``USAGEMETER_API_KEY``) and open the store themselves when nothing answers or with ``--direct``; on a store
of their own they first make sure the local admin key file holds one of its admin keys, as ``serve`` does.
A new key is printed once, alone on stdout (``KEY=$(usagemeter keys create --client acme)``), and never logged.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Annotated, Any, TypeVar

import typer
from clickhouse_connect.driver.client import Client
from pydantic import BaseModel, ValidationError
from rich.console import Console
from rich.table import Column, Table

from usagemeter.api import keys
from usagemeter.api.local_admin import ensure_local_admin, key_secret
from usagemeter.api.settings import ApiSettings
from usagemeter.cli import via_api
from usagemeter.cli.formats import FormatChoice
from usagemeter.query.key_models import CreatedKey, KeyInfo, KeyList, KeyRequest, RevokeRequest
from usagemeter.query.remote import DEFAULT_API_URL
from usagemeter.query.remote_keys import list_keys, post_key, revoke_keys
from usagemeter.schemas.clock import SYSTEM_CLOCK, utc_datetime

app = typer.Typer(no_args_is_help=True)
T = TypeVar("T")
M = TypeVar("M", bound=BaseModel)

ApiUrl = Annotated[str, typer.Option("--api-url", envvar="USAGEMETER_API_URL", help="Query API of `usagemeter serve`.")]
Direct = Annotated[bool, typer.Option("--direct", help="Open the store (USAGEMETER_CLICKHOUSE_*) instead of the API.")]


def _on_store(call: Callable[[Client, bytes], T]) -> Callable[[Client], T]:
    """``call(client, secret)`` on a store opened by this command, its local admin key made sure of first."""

    def run(client: Client) -> T:
        secret = key_secret(ApiSettings())
        ensure_local_admin(client, secret)
        return call(client, secret)

    return run


@app.command()
def create(
    *,
    clients: Annotated[list[str], typer.Option("--client", help="A client the key may read (repeat for more).")] = [],  # noqa: B006 -- typer's way
    admin: Annotated[bool, typer.Option("--admin", help="An admin key: every client, and the mutations.")] = False,
    name: Annotated[str, typer.Option(help="What the key is for (shown by `keys list`; `revoke --name`).")] = "",
    expires_in_days: Annotated[
        float | None, typer.Option(min=0.001, help="The key stops working this many days from now [default: never].")
    ] = None,
    output_json: Annotated[bool, typer.Option("--json", help="The new key and its details as JSON.")] = False,
    api_url: ApiUrl = DEFAULT_API_URL,
    direct: Direct = False,
) -> None:
    """Make a key scoped to --client ... or --admin; it is printed once, here, and stored only hashed."""
    expires_at = None
    if expires_in_days is not None:
        expires_at = utc_datetime(SYSTEM_CLOCK.now_us()) + timedelta(days=expires_in_days)
    request = _valid(KeyRequest, name=name, admin=admin, clients=clients, expires_at=expires_at)
    created: CreatedKey = via_api.run(
        lambda: post_key(api_url, request),
        _on_store(lambda client, secret: keys.create(client, secret, request, SYSTEM_CLOCK)),
        api_url,
        direct=direct,
    )
    if output_json:
        typer.echo(created.model_dump_json(indent=2))
        return
    typer.echo(created.key)
    typer.echo(f"key {created.key_id} ({_scope(created)}, {_expiry(created)}): shown this once, keep it", err=True)


@app.command("list")
def list_command(
    output_format: Annotated[FormatChoice, typer.Option("--format", help="table, or JSON.")] = FormatChoice.table,
    api_url: ApiUrl = DEFAULT_API_URL,
    direct: Direct = False,
) -> None:
    """Every key with its scope, expiry (UTC) and status; never the key itself (--format json: every field)."""
    found = via_api.run(
        lambda: list_keys(api_url),
        _on_store(lambda client, _: keys.list_keys(client, SYSTEM_CLOCK)),
        api_url,
        direct=direct,
        create=False,
    )
    if output_format is FormatChoice.json:
        typer.echo(KeyList(found).model_dump_json(indent=2))
        return
    table = Table(Column("Key id", no_wrap=True), "Name", "Scope", "Expires", "Status")
    for key in found:
        expires = f"{key.expires_at:%Y-%m-%d}" if key.expires_at else "never"
        table.add_row(key.key_id, key.name, _scope(key), expires, key.status)
    Console().print(table)


@app.command()
def revoke(
    key_id: Annotated[str, typer.Argument(help="The key id `keys list` shows.")] = "",
    name: Annotated[str, typer.Option(help="Revoke every active key of this name instead.")] = "",
    api_url: ApiUrl = DEFAULT_API_URL,
    direct: Direct = False,
) -> None:
    """Revoke a key: the next request with it is refused (401)."""
    request = _valid(RevokeRequest, key_id=key_id, name=name)
    revoked = via_api.run(
        lambda: revoke_keys(api_url, request),
        _on_store(lambda client, _: keys.revoke(client, SYSTEM_CLOCK, key_id=key_id, name=name)),
        api_url,
        direct=direct,
        create=False,
    )
    typer.echo(f"revoked {len(revoked)} key{'s' * (len(revoked) != 1)}: {', '.join(k.key_id for k in revoked) or '-'}")
    if not revoked:
        raise typer.Exit(3)


def _valid(model: type[M], **fields: Any) -> M:
    """``model`` from the options, or the reason they do not make one as a usage error (exit code 2)."""
    try:
        return model.model_validate(fields)
    except ValidationError as exc:
        raise typer.BadParameter("; ".join(e["msg"].removeprefix("Value error, ") for e in exc.errors())) from exc


def _scope(key: KeyInfo) -> str:
    return "admin" if key.admin else "clients " + ", ".join(key.clients)


def _expiry(key: KeyInfo) -> str:
    return f"expires {key.expires_at:%Y-%m-%d %H:%M} UTC" if key.expires_at else "never expires"
