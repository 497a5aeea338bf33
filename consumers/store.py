"""Connections to ClickHouse: the embedded engine (chDB) or a server, through the same client code."""

from __future__ import annotations

from typing import Any

import clickhouse_connect
from clickhouse_connect.driver.client import Client

from usagemeter.consumers.settings import ClickHouseSettings


def connect(settings: ClickHouseSettings) -> Client:
    """A client bound to the settings' database, which is created when missing."""
    common: dict[str, Any] = {"username": settings.username, "password": settings.password.get_secret_value()}
    if settings.embedded:
        common = {}
    bootstrap = clickhouse_connect.get_client(dsn=settings.dsn, **common)
    bootstrap.command("CREATE DATABASE IF NOT EXISTS {db:Identifier}", parameters={"db": settings.database})
    return clickhouse_connect.get_client(dsn=settings.dsn, database=settings.database, **common)
