"""``usagemeter overrides check|load``: validate the overrides file, or load it into the store now."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from usagemeter.consumers.settings import ClickHouseSettings, OverridesSettings
from usagemeter.consumers.store import connect
from usagemeter.pricing import overrides
from usagemeter.schemas.errors import OverridesError

app = typer.Typer(no_args_is_help=True)

FileOption = Annotated[Path | None, typer.Option("--file", help="The overrides file [env USAGEMETER_OVERRIDES_PATH].")]


def _path(file: Path | None) -> Path:
    path = file or OverridesSettings().path
    if path is None:
        raise typer.BadParameter("give --file or set USAGEMETER_OVERRIDES_PATH")
    return path


@app.command()
def check(file: FileOption = None) -> None:
    """Validate the file and list its entries; touches no store."""
    try:
        parsed = overrides.read(_path(file))
    except OverridesError as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(1) from exc
    typer.echo(f"{len(parsed.model)} model price overrides, {len(parsed.contract)} contract rules: valid")


@app.command()
def load(file: FileOption = None) -> None:
    """Load the file into the store now (a running worker also reloads it within its check interval).

    With the embedded engine the store belongs to the running worker: this command then cannot open it,
    and the worker's own reload is the way.
    """
    try:
        resolved = overrides.load(connect(ClickHouseSettings()), overrides.read(_path(file)))
    except OverridesError as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(1) from exc
    typer.echo(f"loaded: {len(resolved.prices)} price rows, {len(resolved.contracts)} contract rows")
