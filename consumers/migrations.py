"""Applies the versioned SQL files under ``schemas/clickhouse`` once each, in order, and records them.

Every statement is idempotent (``IF NOT EXISTS``) and ``schema_migrations`` records what was applied
with a checksum, so ``usagemeter migrate`` can run at every start and refuses to go on when an
applied file was edited afterwards (write a new migration instead).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from importlib import resources

from clickhouse_connect.driver.client import Client

from usagemeter.consumers.cluster import ClusterRenderer, bookkeeping_table
from usagemeter.schemas.errors import MigrationEdited


@dataclass(frozen=True, slots=True)
class Migration:
    version: int
    name: str
    sql: str

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.sql.encode()).hexdigest()

    def statements(self) -> list[str]:
        """The file's statements, without comments: see ``split_statements``."""
        return split_statements(self.sql)


def split_statements(sql: str) -> list[str]:
    """Statements separated by ``;`` outside quotes and comments; ``--`` and ``/* */`` comments dropped.

    A scanner rather than ``split(";\\n")``, so a ``;`` at a line end inside a string literal or a comment
    does not cut a statement in two.
    """
    statements, current = [], []
    i, n = 0, len(sql)
    while i < n:
        char = sql[i]
        if char in "'\"`":
            end = _quote_end(sql, i)
            current.append(sql[i:end])
            i = end
        elif sql.startswith("--", i):
            end = sql.find("\n", i)
            i = n if end < 0 else end
        elif sql.startswith("/*", i):
            end = sql.find("*/", i + 2)
            i = n if end < 0 else end + 2
        elif char == ";":
            statements.append("".join(current))
            current = []
            i += 1
        else:
            current.append(char)
            i += 1
    statements.append("".join(current))
    return [statement.strip() for statement in statements if statement.strip()]


def _quote_end(sql: str, start: int) -> int:
    """The index after the literal or identifier opened at ``start`` (backslash escapes and doubled quotes)."""
    quote, i = sql[start], start + 1
    while i < len(sql):
        if sql[i] == "\\":
            i += 2
        elif sql[i] == quote:
            if not sql.startswith(quote, i + 1):
                return i + 1
            i += 2
        else:
            i += 1
    return len(sql)


def available() -> list[Migration]:
    folder = resources.files("usagemeter.schemas").joinpath("clickhouse")
    found = []
    for entry in folder.iterdir():
        if entry.name.endswith(".sql"):
            version = int(entry.name.split("_", 1)[0])
            found.append(Migration(version, entry.name, entry.read_text()))
    return sorted(found, key=lambda m: m.version)


def apply(client: Client, cluster: str | None = None) -> list[str]:
    """Applies what is missing; returns the names of the files applied now. With ``cluster`` (the setting
    USAGEMETER_CLICKHOUSE_CLUSTER), every statement is rendered for that cluster (``consumers/cluster.py``)."""
    client.command(bookkeeping_table(cluster))
    missing = {migration.version for migration in _missing(client)}
    render = ClusterRenderer(cluster).render if cluster else lambda statement: [statement]
    applied = []
    for migration in available():
        # every file is rendered, applied or not: the cluster rules need the tables earlier files made
        statements = [rendered for statement in migration.statements() for rendered in render(statement)]
        if migration.version not in missing:
            continue
        for statement in statements:
            client.command(statement)
        client.insert(
            "schema_migrations",
            [[migration.version, migration.name, migration.checksum]],
            column_names=["version", "name", "checksum"],
            settings={"async_insert": 0},  # an async insert would wait out its busy timeout for this one row
        )
        applied.append(migration.name)
    return applied


def cluster_statements(cluster: str) -> list[str]:
    """Every statement ``apply`` sends for ``cluster`` to a store with nothing applied, in order."""
    renderer = ClusterRenderer(cluster)
    statements = [bookkeeping_table(cluster)]
    for migration in available():
        statements += [rendered for statement in migration.statements() for rendered in renderer.render(statement)]
    return statements


def pending(client: Client) -> list[str]:
    """The names of the files not applied yet, changing nothing: what ``usagemeter migrate --check`` reports,
    and what a process that must not migrate (the API, an init container) waits for."""
    exists = client.query(
        "SELECT count() FROM system.tables WHERE database = currentDatabase() AND name = 'schema_migrations'"
    ).result_rows[0][0]
    if not exists:
        return [migration.name for migration in available()]
    return [migration.name for migration in _missing(client)]


def _missing(client: Client) -> list[Migration]:
    """The migrations ``schema_migrations`` does not list; raises when an applied file was edited afterwards."""
    rows = client.query("SELECT version, checksum FROM schema_migrations").result_rows
    done = {int(version): str(checksum) for version, checksum in rows}
    missing = []
    for migration in available():
        if migration.version not in done:
            missing.append(migration)
        elif done[migration.version] != migration.checksum:
            raise MigrationEdited(
                f"{migration.name} was changed after it was applied; add a new migration file instead"
            )
    return missing
