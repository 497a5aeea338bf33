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
        """The file's statements; comment-only lines are dropped, ``;`` at line end separates."""
        lines = [line for line in self.sql.splitlines() if not line.lstrip().startswith("--")]
        return [stmt.strip() for stmt in "\n".join(lines).split(";\n") if stmt.strip().rstrip(";")]


def available() -> list[Migration]:
    folder = resources.files("usagemeter.schemas").joinpath("clickhouse")
    found = []
    for entry in folder.iterdir():
        if entry.name.endswith(".sql"):
            version = int(entry.name.split("_", 1)[0])
            found.append(Migration(version, entry.name, entry.read_text()))
    return sorted(found, key=lambda m: m.version)


def apply(client: Client) -> list[str]:
    """Applies what is missing; returns the names of the files applied now."""
    client.command(
        "CREATE TABLE IF NOT EXISTS schema_migrations "
        "(version UInt32, name String, checksum String, applied_at DateTime64(3, 'UTC') DEFAULT now64(3)) "
        "ENGINE = MergeTree ORDER BY version"
    )
    rows = client.query("SELECT version, checksum FROM schema_migrations").result_rows
    done = {int(version): str(checksum) for version, checksum in rows}
    applied = []
    for migration in available():
        if migration.version in done:
            if done[migration.version] != migration.checksum:
                raise MigrationEdited(
                    f"{migration.name} was changed after it was applied; add a new migration file instead"
                )
            continue
        for statement in migration.statements():
            client.command(statement)
        client.insert(
            "schema_migrations",
            [[migration.version, migration.name, migration.checksum]],
            column_names=["version", "name", "checksum"],
        )
        applied.append(migration.name)
    return applied
