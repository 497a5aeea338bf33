"""``freshness()``: the as_of watermark and the late events of a query's range (see ``answer.Freshness``).

Both read small tables of migration 0015: ``ingest_watermarks`` (a row per partition after merges) and
``usage_late_events`` (a row per late event, which are rare), so every answer can carry them.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Final

from clickhouse_connect.driver.client import Client

from usagemeter.query.answer import Freshness
from usagemeter.query.spec import UsageQuery
from usagemeter.query.sql import RANGE, filter_conditions, range_parameters

ACTIVE_WINDOW: Final = timedelta(days=1)
"""A partition that inserted nothing in the day before the newest insert no longer holds as_of back."""

_WATERMARKS_SQL: Final = """
SELECT topic, partition, max(newest_event_time), max(last_insert)
FROM ingest_watermarks
GROUP BY topic, partition
"""


def freshness(client: Client, query: UsageQuery, settings: dict[str, object] | None = None) -> Freshness:
    """as_of of the whole pipeline, and the late events among the query's (filtered) events."""
    marks = client.query(_WATERMARKS_SQL, settings=settings).result_rows
    conditions, parameters = filter_conditions(query.filters, per_event=True)
    late = client.query(
        f"SELECT count() FROM usage_late_events WHERE {RANGE}{conditions}",
        parameters={**parameters, **range_parameters(query)},
        settings=settings,
    ).result_rows[0][0]
    if not marks:
        return Freshness(as_of=None, late_events=int(late), partitions=0)
    newest_insert = max(_utc(row[3]) for row in marks)
    active = [_utc(row[2]) for row in marks if _utc(row[3]) >= newest_insert - ACTIVE_WINDOW]
    return Freshness(as_of=min(active), late_events=int(late), partitions=len(active))


def _utc(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
