"""``rebuild()``: re-derive the 15-minute aggregates from ``usage_events`` and ``cost_adjustments`` while
ingestion runs, without counting any event twice or missing one.

Materialized views only see new inserts, so after a new view, a new dimension or a bad view fixed, the
aggregates lack (or miscount) history. Rebuilding corrects a table in place instead of swapping it:

1. **Snapshot at a quiet instant.** No engine offers one snapshot across tables, and an insert reaches the
   events and each aggregate at slightly different moments. So the table's rows from ``since`` on are
   copied while no insert runs: a check before and after the copy finds no insert in
   ``system.processes`` and the same row counts in ``usage_events`` and ``cost_adjustments``. The copy
   then holds exactly what the events ingested up to the first check (``cut``, the engine's own clock:
   ``ingest_time`` is the inserting query's ``now64()``) put into the table, plus whatever was wrong.
2. **Correction = truth - snapshot.** The truth is the table's sums over the signed rows of
   ``usage_signed_rows`` (migration 0015: events ingested up to ``cut``, and every reprice row) grouped
   by the table's dimensions. Their difference, computed into a scratch table, is inserted into the
   table itself; counts are unsigned there and wrap, and sums come out right, as with reprice (0010).
   Events ingested after the cut were added by the live views and are in neither side: untouched.
3. A reprice that adds rows between the snapshot and the correction would be counted twice; the
   adjustments' count is checked again before the correction is written, and the table starts over.

Rerunning is safe: a crash leaves a partial correction at worst, and the next run's snapshot includes it.
One rebuild per table at a time, held by a lock table (``usagemeter_rebuild_lock_<table>``): a second one
is refused, and a crashed one's lock is removed with ``force``. ``usage_15m_by_model`` is fed from
``usage_15m_by_user``'s inserts, so a correction to the latter reaches it too; rebuilding one table of the
two always rebuilds the other after it. Against a server cluster, ``system.processes`` is per server: run
the rebuild where the inserts go.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Final

from clickhouse_connect.driver.client import Client
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from usagemeter.schemas.errors import RebuildRefused

COUNTS: Final = (
    "requests", "input_tokens", "output_tokens", "cache_read_tokens", "cache_write_tokens", "reasoning_tokens",
    "input_audio_tokens", "output_audio_tokens", "web_searches", "tool_calls",
)  # fmt: skip
COSTS: Final = (
    "cost_input", "cost_cache_read", "cost_cache_write", "cost_output", "cost_reasoning", "cost_audio",
    "cost_web_search", "cost_request", "cost_total",
)  # fmt: skip
_SIGNED: Final = {
    "events": "sign",
    "errors": "if(status != 'ok', sign, 0)",
    "unpriced": "if(price_status = 'unknown_model' AND cost_source = 'unpriced', sign, 0)",
    **{name: name for name in COUNTS},
}
"""Each unsigned count of an aggregate as a signed term of one row of ``usage_signed_rows``."""


@dataclass(frozen=True, slots=True)
class Aggregate:
    """A rebuildable table: its dimensions, each as an expression over ``usage_signed_rows``."""

    name: str
    dimensions: tuple[tuple[str, str], ...]
    per_label: bool = False


_BASE: Final = (("client_id", "client_id"), ("bucket", "bucket"))
_DIMS_COLUMNS: Final = ("user_id", "service", "provider", "model", "operation", "status", "service_tier")
AGGREGATES: Final = (
    Aggregate("usage_15m_by_user", (*_BASE, ("user_id", "user_id"), ("provider", "provider"), ("model", "model"))),
    Aggregate("usage_15m_by_model", (*_BASE, ("user_id", "''"), ("provider", "provider"), ("model", "model"))),
    Aggregate(
        "usage_15m_by_label",
        (*_BASE, ("label_key", "label.1"), ("label_value", "label.2"), ("provider", "provider"), ("model", "model")),
        per_label=True,
    ),
    Aggregate("usage_15m_by_dims", (*_BASE, *((name, name) for name in _DIMS_COLUMNS))),
)
"""In the order they are rebuilt: ``usage_15m_by_user`` before the table fed by its inserts."""
TABLES: Final = tuple(aggregate.name for aggregate in AGGREGATES)
_FED_BY: Final = {"usage_15m_by_model": "usage_15m_by_user", "usage_15m_by_user": "usage_15m_by_model"}
_UNRELATED_INSERTS: Final = (
    r"(?i)^\s*INSERT\s+INTO\s+(TABLE\s+)?[`\"]?(\w+[`\"]?\.[`\"]?)?"
    r"(ingest_ledger|budget_versions|budget_alerts|alert_deliveries|api_keys)[`\"]?[\s(]"
)
"""Inserts no view carries into an aggregate (the worker's ledger, budgets, alerts, keys): they need not end
before a snapshot. Every other insert must, whatever its table: unknown ones count as related."""
_QUIET_SQL: Final = """
SELECT now64(3, 'UTC'),
       (SELECT count() FROM system.processes
        WHERE query_kind = 'Insert' AND current_database = currentDatabase()
          AND NOT match(query, {unrelated:String})),
       (SELECT count() FROM usage_events),
       (SELECT count() FROM cost_adjustments)"""
_QUIET: Final = {"unrelated": _UNRELATED_INSERTS}


class RebuildRequest(BaseModel):
    """What to rebuild: ``since`` (floored to its 15-minute bucket; None: all history) and which tables."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    since: AwareDatetime | None = None
    tables: list[str] = Field(default_factory=list, description=f"Some of {', '.join(TABLES)}; empty: all.")
    force: bool = Field(default=False, description="Remove a lock left by a rebuild that crashed.")


class TableRebuilt(BaseModel):
    table: str
    cut: AwareDatetime
    """Events ingested up to here were re-derived; later ones were counted by the live views."""
    corrected_rows: int
    """Rows of correction written (0: the table was right)."""
    attempts: int
    """Snapshots taken until one was quiet (no insert running, no rows added during the copy)."""
    waited_s: float
    """Of ``seconds``, the time spent waiting for inserts to end."""
    seconds: float


class RebuildResult(BaseModel):
    since: AwareDatetime | None
    tables: list[TableRebuilt]


def rebuild(
    client: Client, request: RebuildRequest, *, quiet_timeout_s: float = 120.0, pause_s: float = 0.005
) -> RebuildResult:
    """Rebuild ``request.tables`` (see the module docstring); ``quiet_timeout_s`` bounds the wait for a quiet
    instant per table, ``pause_s`` is the wait between two looks while inserts run."""
    chosen = _chosen(request.tables)
    since = _floor(request.since) if request.since else None
    done = [
        _rebuild_one(client, aggregate, since, force=request.force, timeout_s=quiet_timeout_s, pause_s=pause_s)
        for aggregate in chosen
    ]
    return RebuildResult(since=since, tables=done)


def _chosen(names: Sequence[str]) -> list[Aggregate]:
    unknown = sorted(set(names) - set(TABLES))
    if unknown:
        raise ValueError(f"cannot rebuild {', '.join(unknown)}: the aggregates are {', '.join(TABLES)}")
    wanted = set(names or TABLES)
    wanted |= {_FED_BY[name] for name in wanted if name in _FED_BY}
    return [aggregate for aggregate in AGGREGATES if aggregate.name in wanted]


def _floor(at: datetime) -> datetime:
    return at - timedelta(minutes=at.minute % 15, seconds=at.second, microseconds=at.microsecond)


def _rebuild_one(
    client: Client, aggregate: Aggregate, since: datetime | None, *, force: bool, timeout_s: float, pause_s: float
) -> TableRebuilt:
    began = time.monotonic()
    lock = f"usagemeter_rebuild_lock_{aggregate.name}"
    if force:
        client.command(f"DROP TABLE IF EXISTS {lock}")
    try:
        client.command(f"CREATE TABLE {lock} (started DateTime64(3, 'UTC')) ENGINE = Memory")
    except Exception as exc:
        if "already exists" not in str(exc):
            raise
        raise RebuildRefused(
            f"another rebuild of {aggregate.name} is running; if none is (one crashed), pass force"
        ) from exc
    run = uuid.uuid4().hex[:12]
    snapshot, delta = f"usagemeter_rebuild_{run}_snapshot", f"usagemeter_rebuild_{run}_delta"
    try:
        for name in (snapshot, delta):
            client.command(f"CREATE TABLE {name} AS {aggregate.name} ENGINE = MergeTree ORDER BY tuple()")
        attempts, waited = 0, 0.0
        while True:
            attempts += 1
            cut, adjustments, wait = _quiet_snapshot(
                client, aggregate.name, snapshot, since, deadline=began + timeout_s, pause_s=pause_s
            )
            waited += wait
            _difference(client, aggregate, snapshot, delta, since=since, cut=cut)
            if _count(client, "cost_adjustments") == adjustments:
                break
            for name in (snapshot, delta):  # a reprice wrote meanwhile: its rows would count twice
                client.command(f"TRUNCATE TABLE {name}")
        corrected = _count(client, delta)
        if corrected:
            client.command(f"INSERT INTO {aggregate.name} SELECT * FROM {delta}", settings={"insert_deduplicate": 0})
        return TableRebuilt(
            table=aggregate.name,
            cut=cut,
            corrected_rows=corrected,
            attempts=attempts,
            waited_s=round(waited, 3),
            seconds=round(time.monotonic() - began, 3),
        )
    finally:
        for name in (snapshot, delta, lock):
            client.command(f"DROP TABLE IF EXISTS {name}")


def _quiet_snapshot(
    client: Client, table: str, snapshot: str, since: datetime | None, *, deadline: float, pause_s: float
) -> tuple[datetime, int, float]:
    """Copies ``table`` (from ``since``) into ``snapshot`` at an instant no insert crossed; returns the cut,
    the adjustments' row count then, and the seconds spent waiting for inserts to end."""
    where, parameters = _since_clause("bucket", since)
    waited = 0.0
    while time.monotonic() < deadline:
        before = client.query(_QUIET_SQL, parameters=_QUIET).result_rows[0]
        if before[1] == 0:
            client.command(f"INSERT INTO {snapshot} SELECT * FROM {table}{where}", parameters=parameters)
            after = client.query(_QUIET_SQL, parameters=_QUIET).result_rows[0]
            if after[1:] == before[1:]:
                cut: datetime = before[0]
                return (cut if cut.tzinfo else cut.replace(tzinfo=UTC)), int(before[3]), waited
            client.command(f"TRUNCATE TABLE {snapshot}")
        time.sleep(pause_s)
        waited += pause_s
    raise RebuildRefused(f"no instant without inserts came within the time allowed to rebuild {table}; try again")


def _difference(
    client: Client, aggregate: Aggregate, snapshot: str, delta: str, *, since: datetime | None, cut: datetime
) -> None:
    """Writes into ``delta`` the rows that take ``snapshot`` to the truth at ``cut`` (only the nonzero ones)."""
    dimensions = [name for name, _ in aggregate.dimensions]
    truth_terms = [f"{expression} AS {name}" for name, expression in aggregate.dimensions]
    truth_terms += [f"toInt64({term}) AS {name}" for name, term in _SIGNED.items()]
    truth_terms += [f"toDecimal128({name}, 18) AS {name}" for name in COSTS]
    unsigned = [*_SIGNED]
    held = [*dimensions, *(f"-toInt64({name})" for name in unsigned), *(f"-{name}" for name in COSTS)]
    array_join = " ARRAY JOIN CAST(labels, 'Array(Tuple(String, String))') AS label" if aggregate.per_label else ""
    where, parameters = _since_clause("bucket", since)
    since_at = since or datetime(1970, 1, 1, tzinfo=UTC)
    measures = [f"toUInt64(sum({name})) AS {name}" for name in unsigned] + [f"sum({name}) AS {name}" for name in COSTS]
    nonzero = " OR ".join(f"{name} != 0" for name in [*unsigned, *COSTS])
    client.command(
        f"""
INSERT INTO {delta} ({", ".join([*dimensions, *unsigned, *COSTS])})
SELECT {", ".join(dimensions)}, {", ".join(measures)}
FROM (
    SELECT {", ".join(truth_terms)}
    FROM usage_signed_rows(since = {{since_at:DateTime64(6, 'UTC')}}, cut = {{cut:DateTime64(3, 'UTC')}}){array_join}
    UNION ALL
    SELECT {", ".join(held)} FROM {snapshot}{where}
)
GROUP BY {", ".join(dimensions)}
HAVING {nonzero}""",
        parameters={**parameters, "since_at": since_at, "cut": cut},
    )


def _since_clause(column: str, since: datetime | None) -> tuple[str, dict[str, datetime]]:
    if since is None:
        return "", {}
    return f" WHERE {column} >= {{since:DateTime('UTC')}}", {"since": since}


def _count(client: Client, table: str) -> int:
    return int(client.query(f"SELECT count() FROM {table}").result_rows[0][0])
