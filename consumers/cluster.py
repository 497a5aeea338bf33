"""The migrations rendered for a ClickHouse cluster (``USAGEMETER_CLICKHOUSE_CLUSTER``): the same files, the same
order, each statement rewritten by a fixed rule, so the single-node SQL stays the one source of truth.

The layout is ClickHouse's usual one. Every table that stores rows becomes ``<name>_local``, a
``Replicated*MergeTree`` on each shard (``ReplicatedSummingMergeTree`` for ``SummingMergeTree`` ...; no path
arguments, so the server's ``default_replica_path`` and ``default_replica_name`` apply, by default
``/clickhouse/tables/{uuid}/{shard}`` and ``{replica}``), and a ``Distributed`` table takes the original name.
So every reader (reports, budgets, the ledger, keys) and every writer reaches all shards through the names it
already uses, and the materialized views are built on the local tables, where ClickHouse runs them: a block
inserted into ``usage_staging`` (Distributed) is split by client and written to each shard's
``usage_staging_local`` (Null), whose views feed that shard's ``usage_events_local`` and aggregates.

Sharding key: ``cityHash64(client_id)`` for tables with a ``client_id`` column (a client's rows on one shard,
so per-client reads can skip shards), else ``cityHash64`` of the sorting key. Either way rows with the same
sorting key land on the same shard, which ``ReplacingMergeTree``/``SummingMergeTree`` merges and ``FINAL``
(per shard) need.

Exactly-once on replicated tables: insert deduplication is per shard, kept in Keeper for the last
``replicated_deduplication_window`` blocks (100 by default in older servers, 1000 in newer ones) and
``replicated_deduplication_window_seconds``; the worker inserts one block per partition and writer schema,
so with many partitions a retry after a restart can fall outside 100 blocks and count twice. Every
replicated table is given ``replicated_deduplication_window = 10000`` (what the single-node tables keep
with ``non_replicated_deduplication_window``). A retried insert through the Distributed table splits the
identical block identically (the sharding key is deterministic), so each shard gets the same sub-block with
the same ``insert_deduplication_token`` and drops it; that needs synchronous Distributed inserts
(``distributed_foreground_insert=1``, which ``consumers/store.connect`` sets for a cluster), so that an
acknowledged insert is on the shards before the offset is committed.

Statements of a kind the rules do not know raise ``ValueError``, so a new migration shape is noticed by
``tests/unit/test_cluster_ddl.py`` instead of being sent to one node only.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

DEDUP_WINDOW = 10_000
_NAME = r"[A-Za-z_][A-Za-z0-9_]*"
_CREATE_TABLE = re.compile(rf"^CREATE TABLE IF NOT EXISTS ({_NAME})\b(.*)$", re.S)
_ENGINE = re.compile(r"\bENGINE\s*=\s*(\w*MergeTree|Null)\b(\([^)]*\))?", re.S)
_CREATE_NAMED = re.compile(
    rf"^(CREATE (?:OR REPLACE )?(?:MATERIALIZED VIEW|VIEW|DICTIONARY|FUNCTION)(?: IF NOT EXISTS)? )({_NAME})\b(.*)$",
    re.S,
)
_DROP = re.compile(rf"^DROP (TABLE|VIEW|DICTIONARY|FUNCTION) IF EXISTS ({_NAME})$")
_ALTER = re.compile(rf"^ALTER TABLE ({_NAME}) (.*)$", re.S)
_SYSTEM_RELOAD = re.compile(rf"^SYSTEM RELOAD DICTIONARY ({_NAME})$")
_TABLE_REFERENCE = re.compile(rf"\b(FROM|JOIN|TO)\s+({_NAME})\b")
_ORDER_BY = re.compile(r"\bORDER BY\s+(\((?:[^()]|\([^()]*\))*\)|[A-Za-z_][A-Za-z0-9_]*)")
_DEDUP_SETTING = re.compile(r"\bnon_replicated_deduplication_window\s*=\s*\d+")


@dataclass
class _Table:
    sharding_key: str


class ClusterRenderer:
    """Renders statements in migration order, remembering the tables it made local (later statements name them)."""

    def __init__(self, cluster: str) -> None:
        if not re.fullmatch(_NAME, cluster):
            raise ValueError(f"cluster name {cluster!r} is not an identifier")
        self.cluster = cluster
        self.tables: dict[str, _Table] = {}

    def render(self, statement: str) -> list[str]:
        """The cluster statements for one single-node statement (two for a table: local, then Distributed)."""
        text = statement.strip()
        on = f"ON CLUSTER {self.cluster}"
        if match := _CREATE_TABLE.match(text):
            return self._table(match.group(1), match.group(2), on)
        if match := _CREATE_NAMED.match(text):
            head, name, rest = match.groups()
            if "MATERIALIZED VIEW" in head or "FUNCTION" in head:
                rest = self._local_references(rest)  # views run, and their scalar subqueries read, on the shard
            return [f"{head}{name} {on}{rest}"]
        if match := _DROP.match(text):
            kind, name = match.groups()
            drops = [f"DROP {kind} IF EXISTS {name} {on} SYNC" if kind == "TABLE" else f"{text} {on}"]
            if name in self.tables:
                drops.append(f"DROP TABLE IF EXISTS {name}_local {on} SYNC")
            return drops
        if match := _ALTER.match(text):
            return self._alter(match.group(1), match.group(2), on)
        if match := _SYSTEM_RELOAD.match(text):
            return [f"SYSTEM RELOAD DICTIONARY {on} {match.group(1)}"]
        raise ValueError(f"no cluster rule for this statement: {text[:80]!r}")

    def _table(self, name: str, rest: str, on: str) -> list[str]:
        like = re.match(rf"\s*AS ({_NAME})\b", rest)
        if like:  # CREATE TABLE x AS y: the local table copies y's local table
            rest = rest.replace(f"AS {like.group(1)}", f"AS {like.group(1)}_local", 1)
        engine = _ENGINE.search(rest)
        if engine is None:
            raise ValueError(f"table {name}: no MergeTree or Null engine to make replicated")
        family, arguments = engine.group(1), engine.group(2) or ""
        if family == "Null":
            local = rest
        else:
            local = f"{rest[: engine.start()]}ENGINE = Replicated{family}{arguments}{rest[engine.end() :]}"
            local = self._dedup_window(local)
        self.tables[name] = _Table(self._sharding_key(rest, like.group(1) if like else None))
        distributed = (
            f"CREATE TABLE IF NOT EXISTS {name} {on} AS {name}_local "
            f"ENGINE = Distributed({self.cluster}, currentDatabase(), {name}_local, {self.tables[name].sharding_key})"
        )
        return [f"CREATE TABLE IF NOT EXISTS {name}_local {on}{local}", distributed]

    def _alter(self, name: str, change: str, on: str) -> list[str]:
        if name not in self.tables:  # a view: ALTER TABLE <view> MODIFY QUERY
            return [f"ALTER TABLE {name} {on} {self._local_references(change)}"]
        if change.startswith("MODIFY SETTING"):  # storage settings are the local table's only
            return [f"ALTER TABLE {name}_local {on} {self._dedup_window(change)}"]
        if change.startswith(("ADD COLUMN", "DROP COLUMN", "MODIFY COLUMN", "RENAME COLUMN")):
            # the Distributed table's columns must follow the local table's
            return [f"ALTER TABLE {name}_local {on} {change}", f"ALTER TABLE {name} {on} {change}"]
        raise ValueError(f"no cluster rule for ALTER TABLE {name} {change[:40]!r}")

    def _local_references(self, sql: str) -> str:
        def local(match: re.Match[str]) -> str:
            keyword, name = match.groups()
            return f"{keyword} {name}_local" if name in self.tables else match.group(0)

        return _TABLE_REFERENCE.sub(local, sql)

    def _sharding_key(self, rest: str, like: str | None) -> str:
        if like is not None:
            return self.tables[like].sharding_key
        columns = rest[: rest.find("ENGINE")]
        if re.search(r"^\s*client_id\s", columns, re.M):
            return "cityHash64(client_id)"
        order = _ORDER_BY.search(rest)
        if order is None:  # a Null table without client_id: any shard
            return "rand()"
        return f"cityHash64{order.group(1) if order.group(1).startswith('(') else f'({order.group(1)})'}"

    @staticmethod
    def _dedup_window(sql: str) -> str:
        replaced = _DEDUP_SETTING.sub(f"replicated_deduplication_window = {DEDUP_WINDOW}", sql)
        if "replicated_deduplication_window" in replaced:
            return replaced
        if re.search(r"\bSETTINGS\b", replaced):
            window = f"SETTINGS replicated_deduplication_window = {DEDUP_WINDOW},"
            return re.sub(r"\bSETTINGS\b", window, replaced, count=1)
        return f"{replaced}\nSETTINGS replicated_deduplication_window = {DEDUP_WINDOW}"


def bookkeeping_table(cluster: str | None) -> str:
    """``schema_migrations``: on a cluster, one replicated table every node shares (no ``{shard}`` in its path),
    so ``migrate --check`` on any node sees what was applied."""
    columns = "(version UInt32, name String, checksum String, applied_at DateTime64(3, 'UTC') DEFAULT now64(3))"
    if cluster is None:
        return f"CREATE TABLE IF NOT EXISTS schema_migrations {columns} ENGINE = MergeTree ORDER BY version"
    path = "'/clickhouse/usagemeter/{database}/schema_migrations'"
    return (
        f"CREATE TABLE IF NOT EXISTS schema_migrations ON CLUSTER {cluster} {columns} "
        f"ENGINE = ReplicatedMergeTree({path}, '{{shard}}-{{replica}}') ORDER BY version"
    )
