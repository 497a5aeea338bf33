"""``run_query()``: a ``UsageQuery`` answered from the 15-minute aggregates.

One aggregate statement (the narrowest table that holds the query's dimensions, ``tables.py``) grouped by
the query's dimensions and local bucket; top N, the "other" row, ordering and paging are done here on
its rows, in ``Decimal`` at a precision no Decimal(38, 18) sum can exceed. ``max_rows`` bounds what the
statement may return and ``timeout_s`` how long it may run (ClickHouse's ``max_execution_time``).
An empty answer says why when a client, model, label or other filtered value has no usage at all.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from decimal import Decimal, localcontext
from typing import Any, Final

from clickhouse_connect.driver.client import Client

from usagemeter.query.answer import OTHER, Measures, UsageAnswer, UsageRow
from usagemeter.query.freshness import freshness
from usagemeter.query.models import CostBreakdown, TokenCounts
from usagemeter.query.periods import next_bucket_start, zone
from usagemeter.query.spec import OrderBy, UsageQuery
from usagemeter.query.sql import grouped_select
from usagemeter.query.tables import table_for
from usagemeter.query.unknown import unknown_values
from usagemeter.schemas.clock import SYSTEM_CLOCK, utc_datetime

MAX_ROWS: Final = 1_000_000
"""Rows one statement may return before the query is refused as too wide."""
_EXACT_PRECISION: Final = 80
_COUNTS: Final = ("events", "requests", "errors", "unpriced", "web_searches", "tool_calls")
_TOKENS: Final = ("input", "output", "cache_read", "cache_write", "reasoning", "input_audio", "output_audio")
_COSTS: Final = ("input", "cache_read", "cache_write", "output", "reasoning", "audio", "web_search", "request", "total")

GroupKey = tuple[str, ...]


class QueryTooWide(ValueError):
    """The query would return more rows than ``max_rows``: narrow the range, buckets or groups."""


def run_query(
    client: Client,
    query: UsageQuery,
    *,
    timeout_s: float | None = None,
    max_rows: int = MAX_ROWS,
    now: datetime | None = None,
) -> UsageAnswer:
    """The answer to ``query``; raises ``QueryTooWide`` (a ``ValueError``) past ``max_rows``."""
    table = table_for(query)
    settings: dict[str, Any] = {} if timeout_s is None else {"max_execution_time": timeout_s}
    sql, parameters = grouped_select(query, label_table=table.labels)
    result = client.query(
        sql, parameters={**parameters, "table": table.name, "max_rows": max_rows + 1}, settings=settings
    ).result_rows
    if len(result) > max_rows:
        raise QueryTooWide(f"the query has more than {max_rows:,} rows: narrow its range, buckets or groups")
    with localcontext() as ctx:
        ctx.prec = _EXACT_PRECISION
        rows = _rows(query, result)
        total = _sum(rows)
    page = rows[query.offset : query.offset + query.limit]
    following = query.offset + query.limit
    return UsageAnswer(
        query=query,
        source=table.name,
        generated_at=now or utc_datetime(SYSTEM_CLOCK.now_us()),
        freshness=freshness(client, query, settings),
        rows=page,
        total=total,
        total_rows=len(rows),
        next_offset=following if following < len(rows) else None,
        notes=[] if rows else _why_empty(client, query, settings),
    )


def _rows(query: UsageQuery, result: Sequence[Sequence[Any]]) -> list[UsageRow]:
    width = len(query.group_by)
    buckets = query.bucket is not None
    parsed = [
        (tuple(map(str, row[:width])), _utc(row[width]) if buckets else None, measures(row[width + buckets :]))
        for row in result
    ]
    if query.top is not None:
        parsed = _fold_past_top(parsed, query.top, query.order_by)
    ordered = sorted(parsed, key=lambda item: _order(item, query.order_by))
    return [_row(query, key, start, values) for key, start, values in ordered]


Parsed = tuple[GroupKey, datetime | None, Measures]


def _fold_past_top(parsed: list[Parsed], top: int, order_by: OrderBy) -> list[Parsed]:
    """The ``top`` groups by ``order_by`` over the whole range; every other group summed into OTHER per bucket."""
    by_group: dict[GroupKey, list[Measures]] = {}
    for key, _, values in parsed:
        by_group.setdefault(key, []).append(values)
    ranked = sorted(by_group, key=lambda key: (-_metric(_sum(by_group[key]), order_by), key))
    kept = set(ranked[:top])
    folded: dict[datetime | None, list[Measures]] = {}
    for key, start, values in parsed:
        if key not in kept:
            folded.setdefault(start, []).append(values)
    width = len(parsed[0][0]) if parsed else 0
    other = (OTHER,) * width
    return [item for item in parsed if item[0] in kept] + [(other, start, _sum(v)) for start, v in folded.items()]


def _order(item: Parsed, order_by: OrderBy) -> tuple[Any, ...]:
    key, start, values = item
    return (start or datetime.min.replace(tzinfo=UTC), key[:1] == (OTHER,), -_metric(values, order_by), key)


def _metric(values: Measures, order_by: OrderBy) -> Decimal | int:
    if order_by == "cost":
        return values.cost.total
    return values.tokens.total if order_by == "tokens" else values.requests


def _row(query: UsageQuery, key: GroupKey, start: datetime | None, values: Measures) -> UsageRow:
    group = dict(zip(query.group_by, key, strict=True))
    if start is None or query.bucket is None:
        return UsageRow(group=group, **dict(values))
    local = zone(query.tz)
    first = max(start, query.start_utc).astimezone(local)
    end = min(next_bucket_start(query.bucket, start, query.tz), query.end_utc).astimezone(local)
    return UsageRow(group=group, start=first, end=end, **dict(values))


def measures(row: Sequence[Any]) -> Measures:
    """Measures from the ``sql.MEASURES`` columns of a row."""
    counts = dict(zip(_COUNTS, (int(v) for v in row[:6]), strict=True))
    tokens = dict(zip(_TOKENS, (int(v) for v in row[6:13]), strict=True))
    costs = dict(zip(_COSTS, (Decimal(v) for v in row[13:22]), strict=True))
    return Measures(
        **counts,
        tokens=TokenCounts(**tokens, total=tokens["input"] + tokens["output"]),
        cost=CostBreakdown(**costs),
    )


def _sum(items: Sequence[Measures]) -> Measures:
    counts = {name: sum(getattr(m, name) for m in items) for name in _COUNTS}
    tokens = {name: sum(getattr(m.tokens, name) for m in items) for name in (*_TOKENS, "total")}
    costs = {name: sum((getattr(m.cost, name) for m in items), Decimal(0)) for name in _COSTS}
    return Measures(**counts, tokens=TokenCounts(**tokens), cost=CostBreakdown(**costs))


def _why_empty(client: Client, query: UsageQuery, settings: dict[str, Any]) -> list[str]:
    """Notes naming the clients and filtered values that have no usage at any time, else that the range is empty."""
    notes = unknown_values(client, query, settings)
    return notes or ["no usage of these clients matches the query in this range"]


def _utc(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


__all__ = ["MAX_ROWS", "QueryTooWide", "measures", "run_query"]
