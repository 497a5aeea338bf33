"""CSV and JSON Lines of any answer: one flat record per row, the same columns in both.

Columns: ``start``, ``end`` (ISO 8601 in the query's zone; empty without buckets), one per dimension of
the query, then every count, token kind and cost component. Costs keep every digit (plain notation).
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable, Iterable, Iterator
from typing import Final

from usagemeter.query.answer import UsageAnswer, UsageRow
from usagemeter.query.models import CostBreakdown, TokenCounts, decimal_text
from usagemeter.query.spec import UsageQuery

_COUNTS: Final = ("events", "requests", "errors", "unpriced", "web_searches", "tool_calls")


def columns(answer: UsageAnswer) -> list[str]:
    tokens = [f"tokens_{name}" for name in TokenCounts.model_fields]
    costs = [f"cost_{name}" for name in CostBreakdown.model_fields]
    return ["start", "end", *answer.query.group_by, *_COUNTS, *tokens, *costs]


def record(answer: UsageAnswer, row: UsageRow) -> dict[str, str | int]:
    """One row as flat ``column -> value`` (money as exact text)."""
    flat: dict[str, str | int] = {
        "start": row.start.isoformat() if row.start else "",
        "end": row.end.isoformat() if row.end else "",
    }
    flat |= {name: row.group.get(name, "") for name in answer.query.group_by}
    flat |= {name: getattr(row, name) for name in _COUNTS}
    flat |= {f"tokens_{name}": value for name, value in row.tokens}
    flat |= {f"cost_{name}": decimal_text(value) for name, value in row.cost}
    return flat


def csv_lines(answer: UsageAnswer, rows: Iterable[UsageRow]) -> Iterator[str]:
    """The header, then one CSV line per row (for streaming to a file or an HTTP response)."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns(answer), lineterminator="\n")
    writer.writeheader()
    yield _drain(buffer)
    for row in rows:
        writer.writerow(record(answer, row))
        yield _drain(buffer)


def json_lines(answer: UsageAnswer, rows: Iterable[UsageRow]) -> Iterator[str]:
    """One JSON object per row and line."""
    for row in rows:
        yield json.dumps(record(answer, row), ensure_ascii=False) + "\n"


def _drain(buffer: io.StringIO) -> str:
    text = buffer.getvalue()
    buffer.seek(0)
    buffer.truncate()
    return text


def pages(answer_for: Callable[[UsageQuery], UsageAnswer], query: UsageQuery) -> Iterator[UsageAnswer]:
    """Every page of ``query``'s answer, from ``query.offset`` on, through ``answer_for`` (local or remote)."""
    page = answer_for(query)
    yield page
    while page.next_offset is not None:
        page = answer_for(query.model_copy(update={"offset": page.next_offset}))
        yield page
