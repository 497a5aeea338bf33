"""``get_usage()``: one client's usage report, read from the 15-minute aggregates.

Reads ``usage_15m_by_model`` (or ``usage_15m_by_user`` when a user is chosen or users are listed) with
``sum() ... GROUP BY``: the tables are SummingMergeTrees whose parts may not be merged yet, so a key can
have several rows and only a sum is right. Never ``FINAL``, never the raw events table.

Two statements, both parameterised; the table is bound as an ``Identifier`` chosen from a fixed pair.
Money is summed in Python with ``Decimal`` at a precision no Decimal(38, 18) sum can exceed.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal, localcontext
from typing import Any, Final

from clickhouse_connect.driver.client import Client

from usagemeter.query.models import CostBreakdown, CurrentPeriod, TokenCounts, UsageReport, UsageTotals
from usagemeter.query.periods import Period, on_bucket_boundary, period_bounds, zone
from usagemeter.schemas.clock import SYSTEM_CLOCK, utc_datetime

TABLE_BY_MODEL: Final = "usage_15m_by_model"
TABLE_BY_USER: Final = "usage_15m_by_user"
_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)
_EXACT_PRECISION: Final = 80  # digits: Decimal(38, 18) sums of any realistic row count stay exact

# One row per (provider, model, user_id); user_id is '' throughout usage_15m_by_model.
_BREAKDOWN_SQL: Final = """
SELECT
    provider, model, user_id,
    sum(events), sum(requests), sum(errors), sum(unpriced),
    sum(input_tokens), sum(output_tokens), sum(cache_read_tokens), sum(cache_write_tokens),
    sum(reasoning_tokens), sum(input_audio_tokens), sum(output_audio_tokens),
    sum(web_searches), sum(tool_calls),
    sum(cost_input), sum(cost_cache_read), sum(cost_cache_write), sum(cost_output), sum(cost_reasoning),
    sum(cost_audio), sum(cost_web_search), sum(cost_request), sum(cost_total)
FROM {table:Identifier}
WHERE client_id = {client_id:String}
  AND bucket >= {since:DateTime('UTC')}
  AND ({all_users:Bool} OR user_id = {user_id:String})
GROUP BY provider, model, user_id
"""

# Requests, tokens and cost of the buckets that start inside [start, end).
_PERIOD_SQL: Final = """
SELECT sum(requests), sum(input_tokens) + sum(output_tokens), sum(cost_total)
FROM {table:Identifier}
WHERE client_id = {client_id:String}
  AND bucket >= {start:DateTime('UTC')}
  AND bucket < {end:DateTime('UTC')}
  AND ({all_users:Bool} OR user_id = {user_id:String})
"""


def get_usage(
    client: Client,
    client_id: str,
    *,
    user_id: str | None = None,
    period: Period = "month",
    tz: str = "UTC",
    since: datetime | None = None,
    include_users: bool = False,
    now: datetime | None = None,
) -> UsageReport:
    """The usage report of ``client_id`` (only ``user_id``'s usage when given).

    ``period`` and ``tz`` choose ``current_period``: the local day or month of the IANA zone ``tz`` that
    contains ``now`` (default: the current time). Totals and breakdowns cover all time, or the time from
    ``since`` (naive means local time in ``tz``; it must fall on a 15-minute boundary). ``by_user`` is
    filled when ``include_users`` is set. Raises ``ValueError`` for an unknown zone or a bad ``since``.
    """
    if not client_id:
        raise ValueError("client_id must not be empty")
    moment = now if now is not None else utc_datetime(SYSTEM_CLOCK.now_us())
    bounds = period_bounds(period, tz, moment)
    start = _since_utc(since, tz)
    table = TABLE_BY_USER if user_id is not None or include_users else TABLE_BY_MODEL
    who = {"table": table, "client_id": client_id, "all_users": user_id is None, "user_id": user_id or ""}

    rows = client.query(_BREAKDOWN_SQL, parameters={**who, "since": start}).result_rows
    period_row = client.query(
        _PERIOD_SQL, parameters={**who, "start": bounds.start_utc, "end": bounds.end_utc}
    ).result_rows[0]

    sums = _Sums()
    with localcontext() as ctx:
        ctx.prec = _EXACT_PRECISION
        for row in rows:
            sums.add(row)
    return UsageReport(
        client_id=client_id,
        user_id=user_id,
        period=period,
        tz=tz,
        since=None if since is None else start,
        generated_at=moment,
        total_requests=sums.counts["requests"],
        total_tokens=sums.total_tokens,
        total_cost=sums.cost["total"],
        events=sums.counts["events"],
        errors=sums.counts["errors"],
        unpriced=sums.counts["unpriced"],
        web_searches=sums.counts["web_searches"],
        tool_calls=sums.counts["tool_calls"],
        current_period=CurrentPeriod(
            requests=int(period_row[0]),
            tokens=int(period_row[1]),
            cost=Decimal(period_row[2]),
            period_start=bounds.start,
            period_end=bounds.end,
        ),
        by_provider=_by_cost(sums.by_provider),
        by_model=_by_cost(sums.by_model),
        by_user=_by_cost(sums.by_user) if include_users else {},
        cost_breakdown=CostBreakdown(**sums.cost),
        tokens=TokenCounts(**sums.tokens, total=sums.total_tokens),
    )


def _since_utc(since: datetime | None, tz: str) -> datetime:
    if since is None:
        return _EPOCH
    aware = since if since.tzinfo is not None else since.replace(tzinfo=zone(tz))
    if not on_bucket_boundary(aware):
        raise ValueError(f"since must fall on a 15-minute boundary, got {aware.isoformat()}")
    return aware.astimezone(UTC)


_COUNT_FIELDS: Final = ("events", "requests", "errors", "unpriced", "web_searches", "tool_calls")
_TOKEN_FIELDS: Final = (
    "input", "output", "cache_read", "cache_write", "reasoning", "input_audio", "output_audio",
)  # fmt: skip
_COST_FIELDS: Final = (
    "input", "cache_read", "cache_write", "output", "reasoning", "audio", "web_search", "request", "total",
)  # fmt: skip


@dataclass(slots=True)
class _Slice:
    requests: int = 0
    tokens: int = 0
    cost: Decimal = Decimal(0)


class _Sums:
    """Adds up breakdown rows (in the order of ``_BREAKDOWN_SQL``'s columns) into every total at once."""

    def __init__(self) -> None:
        self.counts = dict.fromkeys(_COUNT_FIELDS, 0)
        self.tokens = dict.fromkeys(_TOKEN_FIELDS, 0)
        self.cost = dict.fromkeys(_COST_FIELDS, Decimal(0))
        self.by_provider: dict[str, _Slice] = {}
        self.by_model: dict[str, _Slice] = {}
        self.by_user: dict[str, _Slice] = {}

    def add(self, row: Sequence[Any]) -> None:
        provider, model, user_id = str(row[0]), str(row[1]), str(row[2])
        events, requests, errors, unpriced = (int(v) for v in row[3:7])
        tokens = dict(zip(_TOKEN_FIELDS, (int(v) for v in row[7:14]), strict=True))
        web_searches, tool_calls = int(row[14]), int(row[15])
        costs = dict(zip(_COST_FIELDS, (Decimal(v) for v in row[16:25]), strict=True))

        counts = (events, requests, errors, unpriced, web_searches, tool_calls)
        for name, value in zip(_COUNT_FIELDS, counts, strict=True):
            self.counts[name] += value
        for name, count in tokens.items():
            self.tokens[name] += count
        for name, amount in costs.items():
            self.cost[name] += amount
        for key, slices in ((provider, self.by_provider), (model, self.by_model), (user_id, self.by_user)):
            piece = slices.setdefault(key, _Slice())
            piece.requests += requests
            piece.tokens += tokens["input"] + tokens["output"]
            piece.cost += costs["total"]

    @property
    def total_tokens(self) -> int:
        return self.tokens["input"] + self.tokens["output"]


def _by_cost(slices: dict[str, _Slice]) -> dict[str, UsageTotals]:
    """Most expensive first, then by name, so JSON readers and tables see the same order."""
    ordered = sorted(slices.items(), key=lambda item: (-item[1].cost, item[0]))
    return {name: UsageTotals(requests=s.requests, tokens=s.tokens, cost=s.cost) for name, s in ordered}
