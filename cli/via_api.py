"""API first, the store second: how commands that need the store run while ``usagemeter serve`` may own it."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

import typer
from clickhouse_connect.driver.client import Client
from clickhouse_connect.driver.exceptions import ClickHouseError
from rich.console import Console

from usagemeter.consumers.settings import ClickHouseSettings
from usagemeter.consumers.store import connect
from usagemeter.schemas.errors import (
    StoreInUse,
    StoreUnreachable,
    UsageApiError,
    UsageApiUnreachableError,
    UsageMeterError,
)

T = TypeVar("T")


def run(
    api_call: Callable[[], T], store_call: Callable[[Client], T], api_url: str, *, direct: bool, create: bool = True
) -> T:
    """``api_call()``, or ``store_call`` on a store of our own when ``direct`` or when no API answers;
    ``create=False`` for reading commands, which must not create an empty store where none is.

    Errors become a message on stderr and exit code 2 (refused input) or 1 (the store failed).
    """
    errors = Console(stderr=True)

    def from_store() -> T:
        return store_call(connect(ClickHouseSettings(), create=create))

    try:
        if direct:
            return from_store()
        try:
            return api_call()
        except UsageApiUnreachableError:
            message = f"No usage API answers at {api_url}; opening the store directly."
            errors.print(message, highlight=False, soft_wrap=True)
            return from_store()
    except (StoreInUse, StoreUnreachable):
        raise  # one line each, from usagemeter.cli.errors
    except (ValueError, UsageApiError, UsageMeterError) as exc:
        errors.print(f"[red]error:[/red] {exc}", highlight=False, soft_wrap=True)
        raise typer.Exit(2) from exc
    except ClickHouseError as exc:
        errors.print(
            f"[red]error:[/red] the store failed: {exc}\n"
            "If `usagemeter serve` owns the embedded store, point --api-url at its API; "
            "if the tables are missing, run `usagemeter migrate`.",
            highlight=False,
            soft_wrap=True,
        )
        raise typer.Exit(1) from exc
