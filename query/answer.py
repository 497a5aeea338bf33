"""What a ``UsageQuery`` answers: rows, their total, and how fresh and complete they are.

Rows carry every count and cost component so that exports (CSV, JSON Lines, FOCUS) need nothing more.
Money is ``Decimal`` (a string in JSON), as in ``models.py``.
"""

from __future__ import annotations

from datetime import datetime

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from usagemeter.query.models import CostBreakdown, TokenCounts
from usagemeter.query.spec import UsageQuery

OTHER = "(other)"
"""The group value of the row that folds every group past ``top``."""


class Measures(BaseModel):
    """Counts, tokens and cost of one slice of usage."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    events: int = 0
    requests: int = 0
    errors: int = 0
    unpriced: int = 0
    web_searches: int = 0
    tool_calls: int = 0
    tokens: TokenCounts = TokenCounts()
    cost: CostBreakdown = CostBreakdown()


class UsageRow(Measures):
    """One group (and one bucket, when the query has buckets): ``[start, end)`` clipped to the query's range."""

    group: dict[str, str] = Field(description="dimension -> value; OTHER for the folded row")
    start: AwareDatetime | None = None
    end: AwareDatetime | None = None


class Freshness(BaseModel):
    """How complete an answer is.

    ``as_of``: every partition that inserted in the day before the newest insert has inserted its events up
    to this event time, so buckets before it are complete unless late events still come. ``late_events``:
    events in the answer's range ingested more than a minute after their 15-minute bucket closed, i.e.
    after a dashboard refreshing every minute had shown that bucket without them.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    as_of: AwareDatetime | None
    late_events: int
    partitions: int = Field(description="partitions whose watermarks as_of is the minimum of")


class UsageAnswer(BaseModel):
    """The rows of one page, the total of the whole answer, and notes such as unknown clients or models."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    query: UsageQuery
    source: str = Field(description="the aggregate table read")
    generated_at: datetime
    freshness: Freshness
    rows: list[UsageRow]
    total: Measures
    total_rows: int = Field(description="rows of the whole answer, before offset and limit")
    next_offset: int | None
    notes: list[str] = Field(default_factory=list, description="why an answer is empty, e.g. an unknown model")


__all__ = ["OTHER", "Freshness", "Measures", "UsageAnswer", "UsageRow"]
