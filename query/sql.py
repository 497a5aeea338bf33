"""SQL pieces of the query model, put together from fixed fragments only.

Every value is a bound parameter and every column or table an ``Identifier`` chosen from the fixed sets
of ``tables.py``; the fragments here are constants, so no caller's text ever becomes SQL.
"""

from __future__ import annotations

from typing import Any, Final

from usagemeter.query.spec import Filter, UsageQuery, label_key
from usagemeter.query.tables import column

MEASURES: Final = """
    sum(events), sum(requests), sum(errors), sum(unpriced), sum(web_searches), sum(tool_calls),
    sum(input_tokens), sum(output_tokens), sum(cache_read_tokens), sum(cache_write_tokens),
    sum(reasoning_tokens), sum(input_audio_tokens), sum(output_audio_tokens),
    sum(cost_input), sum(cost_cache_read), sum(cost_cache_write), sum(cost_output), sum(cost_reasoning),
    sum(cost_audio), sum(cost_web_search), sum(cost_request), sum(cost_total)"""
"""The measures of every aggregate table, in the order ``rows.measures`` reads them."""

BUCKET_START: Final = {
    "15m": "bucket",
    "hour": "toStartOfHour(bucket, {tz:String})",
    "day": "toStartOfDay(bucket, {tz:String})",
    "week": "toDateTime(toMonday(bucket, {tz:String}), {tz:String})",
    "month": "toDateTime(toStartOfMonth(bucket, {tz:String}), {tz:String})",
}
"""The local bucket a UTC 15-minute bucket falls in, as the UTC instant it starts at."""

RANGE: Final = """client_id IN {clients:Array(String)}
  AND bucket >= {start:DateTime('UTC')} AND bucket < {end:DateTime('UTC')}"""

_OPERATOR: Final = {"eq": "IN", "in": "IN", "not_in": "NOT IN"}
_LABEL_IN_EVENT: Final = "mapContains(labels, {label:String}) AND labels[{label:String}] "


def range_parameters(query: UsageQuery) -> dict[str, Any]:
    """The parameters of ``RANGE`` (and of the label key, when the query has one)."""
    return {
        "clients": list(query.client_ids),
        "start": query.start_utc,
        "end": query.end_utc,
        "tz": query.tz,
        "label": query.label or "",
    }


def filter_conditions(filters: list[Filter], *, per_event: bool) -> tuple[str, dict[str, Any]]:
    """``AND ...`` conditions for ``filters`` and their parameters.

    ``per_event``: against a table of events with a ``labels`` map (usage_late_events), where a label
    filter reads the map; otherwise against an aggregate, where it reads ``label_value``.
    """
    text, parameters = "", dict[str, Any]()
    for at, condition in enumerate(filters):
        operator = _OPERATOR[condition.op]
        if per_event and label_key(condition.dimension) is not None:
            text += f"\n  AND {_LABEL_IN_EVENT}{operator} {{v{at}:Array(String)}}"
        else:
            text += f"\n  AND {{f{at}:Identifier}} {operator} {{v{at}:Array(String)}}"
            parameters[f"f{at}"] = column(condition.dimension)
        parameters[f"v{at}"] = list(condition.values)
    return text, parameters


def grouped_select(query: UsageQuery, *, label_table: bool) -> tuple[str, dict[str, Any]]:
    """The aggregate statement of ``query`` (table bound as ``{table:Identifier}``) and its parameters:
    the group columns, then the bucket start when there are buckets, then ``MEASURES``."""
    keys = [f"{{g{at}:Identifier}}" for at in range(len(query.group_by))]
    parameters: dict[str, Any] = {f"g{at}": column(name) for at, name in enumerate(query.group_by)}
    if query.bucket is not None:
        keys.append(f"toTimeZone({BUCKET_START[query.bucket]}, 'UTC')")
    conditions, filter_parameters = filter_conditions(query.filters, per_event=False)
    if label_table:
        conditions = "\n  AND label_key = {label:String}" + conditions
    select = ", ".join([*keys, MEASURES])
    group = f"\nGROUP BY {', '.join(keys)}" if keys else ""
    # HAVING: a totals query over no rows still returns one, and a group repricing moved away sums to 0 events.
    tail = "\nHAVING sum(events) > 0\nLIMIT {max_rows:UInt64}"
    sql = f"SELECT {select}\nFROM {{table:Identifier}}\nWHERE {RANGE}{conditions}{group}{tail}"
    return sql, {**parameters, **filter_parameters, **range_parameters(query)}
