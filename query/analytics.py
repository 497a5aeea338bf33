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
from typing import Any, Final, cast

from clickhouse_connect.driver.client import Client
from pydantic import TypeAdapter

from usagemeter.query.answer import OTHER, Measures, UsageAnswer, UsageRow
from usagemeter.query.freshness import freshness
from usagemeter.query.periods import next_bucket_start, zone
from usagemeter.query.spec import OrderBy, UsageQuery
from usagemeter.query.sql import grouped_select
from usagemeter.query.tables import table_for
from usagemeter.query.unknown import unknown_values
from usagemeter.schemas.clock import SYSTEM_CLOCK, utc_datetime

MAX_ROWS: Final = 1_000_000
"""Rows one statement may return before the query is refused as too wide."""
STATEMENT_SETTINGS: Final = {"compile_expressions": 0, "compile_aggregate_expressions": 0}
"""No JIT for the query model's statements: ClickHouse compiles an expression or an aggregate on its 3rd
run, which stalled that one answer by 200-400 ms, and for the few thousand rows an answer aggregates the
compiled code was no faster (BENCHMARKS.md, "Reports")."""
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
    settings: dict[str, Any] = dict(STATEMENT_SETTINGS)
    if timeout_s is not None:
        settings["max_execution_time"] = timeout_s
    sql, parameters = grouped_select(query, label_table=table.labels)
    result = client.query(
        sql, parameters={**parameters, "table": table.name, "max_rows": max_rows + 1}, settings=settings
    ).result_rows
    if len(result) > max_rows:
        raise QueryTooWide(f"the query has more than {max_rows:,} rows: narrow its range, buckets or groups")
    with localcontext() as ctx:
        ctx.prec = _EXACT_PRECISION
        parsed = _parsed(query, result)
        total = _add([values for _, _, values in parsed])
    following = query.offset + query.limit
    return UsageAnswer(
        query=query,
        source=table.name,
        generated_at=now or utc_datetime(SYSTEM_CLOCK.now_us()),
        freshness=freshness(client, query, settings),
        rows=_page(query, parsed[query.offset : following]),
        total=measures(total),
        total_rows=len(parsed),
        next_offset=following if following < len(parsed) else None,
        notes=[] if parsed else _why_empty(client, query, settings),
    )


Values = tuple[Any, ...]
"""A row's ``sql.MEASURES`` as the engine returns them: 13 counts (``int``), then 9 costs (``Decimal``)."""
Parsed = tuple[GroupKey, datetime | None, Values]

_ZERO: Final[Values] = (0,) * (len(_COUNTS) + len(_TOKENS)) + (Decimal(0),) * len(_COSTS)
_REQUESTS: Final = _COUNTS.index("requests")
_INPUT: Final = len(_COUNTS) + _TOKENS.index("input")
_OUTPUT: Final = len(_COUNTS) + _TOKENS.index("output")
_COST_TOTAL: Final = len(_COUNTS) + len(_TOKENS) + _COSTS.index("total")


def _parsed(query: UsageQuery, result: Sequence[Sequence[Any]]) -> list[Parsed]:
    """The statement's rows folded past ``top`` and in answer order, measures still plain tuples: the
    models are built for the page alone (``_page``), which is what the answer holds."""
    width = len(query.group_by)
    buckets = query.bucket is not None
    parsed = [
        (tuple(map(str, row[:width])), _utc(row[width]) if buckets else None, tuple(row[width + buckets :]))
        for row in result
    ]
    if query.top is not None:
        parsed = _fold_past_top(parsed, query.top, query.order_by)
    return sorted(parsed, key=lambda item: _order(item, query.order_by))


def _fold_past_top(parsed: list[Parsed], top: int, order_by: OrderBy) -> list[Parsed]:
    """The ``top`` groups by ``order_by`` over the whole range; every other group summed into OTHER per bucket."""
    by_group: dict[GroupKey, list[Values]] = {}
    for key, _, values in parsed:
        by_group.setdefault(key, []).append(values)
    ranked = sorted(by_group, key=lambda key: (-_metric(_add(by_group[key]), order_by), key))
    kept = set(ranked[:top])
    folded: dict[datetime | None, list[Values]] = {}
    for key, start, values in parsed:
        if key not in kept:
            folded.setdefault(start, []).append(values)
    width = len(parsed[0][0]) if parsed else 0
    other = (OTHER,) * width
    return [item for item in parsed if item[0] in kept] + [(other, start, _add(v)) for start, v in folded.items()]


def _order(item: Parsed, order_by: OrderBy) -> tuple[Any, ...]:
    key, start, values = item
    return (start or datetime.min.replace(tzinfo=UTC), key[:1] == (OTHER,), -_metric(values, order_by), key)


def _metric(values: Values, order_by: OrderBy) -> Decimal | int:
    if order_by == "cost":
        return cast(Decimal, values[_COST_TOTAL])
    if order_by == "tokens":
        return cast(int, values[_INPUT] + values[_OUTPUT])
    return cast(int, values[_REQUESTS])


def _add(items: Sequence[Values]) -> Values:
    """Column sums of ``items`` (exact: called under ``_EXACT_PRECISION``)."""
    if not items:
        return _ZERO
    return tuple(sum(column, zero) for column, zero in zip(zip(*items, strict=True), _ZERO, strict=True))


_ROWS: Final = TypeAdapter(list[UsageRow])


def _page(query: UsageQuery, parsed: Sequence[Parsed]) -> list[UsageRow]:
    """The rows of one page, validated in one call: pydantic-core checks a list of plain dicts faster than
    Python builds the models one by one, validation kept (BENCHMARKS.md, "Reports"). Buckets are clipped to
    the range, local in ``query.tz``; a bucket's end is computed once per start, not once per group."""
    local = zone(query.tz)
    bounds: dict[datetime, dict[str, datetime]] = {}
    rows = []
    for key, start, values in parsed:
        row = _fields(values)
        row["group"] = dict(zip(query.group_by, key, strict=True))
        if start is not None and query.bucket is not None:
            if start not in bounds:
                end = min(next_bucket_start(query.bucket, start, query.tz), query.end_utc)
                bounds[start] = {"start": max(start, query.start_utc).astimezone(local), "end": end.astimezone(local)}
            row.update(bounds[start])
        rows.append(row)
    return _ROWS.validate_python(rows)


def measures(row: Sequence[Any]) -> Measures:
    """Measures from the ``sql.MEASURES`` columns of a row."""
    return Measures.model_validate(_fields(tuple(row)))


def _fields(values: Values) -> dict[str, Any]:
    """The fields of ``Measures`` from a row's ``sql.MEASURES``, as plain data for one validation call."""
    tokens = dict(zip(_TOKENS, values[6:13], strict=True))
    tokens["total"] = tokens["input"] + tokens["output"]
    fields: dict[str, Any] = dict(zip(_COUNTS, values[:6], strict=True))
    fields["tokens"] = tokens
    fields["cost"] = dict(zip(_COSTS, values[13:22], strict=True))
    return fields


def _why_empty(client: Client, query: UsageQuery, settings: dict[str, Any]) -> list[str]:
    """Notes naming the clients and filtered values that have no usage at any time, else that the range is empty."""
    notes = unknown_values(client, query, settings)
    return notes or ["no usage of these clients matches the query in this range"]


def _utc(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


__all__ = ["MAX_ROWS", "QueryTooWide", "measures", "run_query"]
