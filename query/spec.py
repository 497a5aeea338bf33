"""The query model: one JSON-serialisable description of a usage question, shared by Python, the CLI and the API.

    UsageQuery(client_ids=["acme"], start="2026-11-01", end="2026-12-01", tz="Asia/Kathmandu",
               bucket="day", group_by=["model"], filters=[Filter(dimension="status", op="eq", values=["ok"])])

A range is ``[start, end)``; a naive time is local time in ``tz``; both ends must fall on a 15-minute
boundary (every UTC offset in use is a multiple of 15 minutes, so local days, hours and months do).
Dimensions are the fixed ones of ``DIMENSIONS`` or ``label:<key>`` for a free label. The clients asked for
are always explicit, so whoever serves the query can check them against the caller's scope.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Final, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError, model_validator

from usagemeter.query.periods import on_bucket_boundary, zone

Bucket = Literal["15m", "hour", "day", "week", "month"]
OrderBy = Literal["cost", "tokens", "requests"]
FilterOp = Literal["eq", "in", "not_in"]

DIMENSIONS: Final = ("client", "user", "provider", "model", "service", "operation", "status", "service_tier")
LABEL_PREFIX: Final = "label:"
MAX_LABEL_KEY_BYTES: Final = 128  # the event's own limit (schemas/validation.py)


def label_key(dimension: str) -> str | None:
    """The key of a ``label:<key>`` dimension, None for a fixed one."""
    return dimension.removeprefix(LABEL_PREFIX) if dimension.startswith(LABEL_PREFIX) else None


def _dimension(name: str) -> str:
    key = label_key(name)
    if key is None and name not in DIMENSIONS:
        raise ValueError(f"unknown dimension {name!r}: use one of {', '.join(DIMENSIONS)} or label:<key>")
    if key is not None and not 0 < len(key.encode()) <= MAX_LABEL_KEY_BYTES:
        raise ValueError(f"label key of {name!r} must be 1 to {MAX_LABEL_KEY_BYTES} bytes")
    return name


Dimension = Annotated[str, AfterValidator(_dimension)]


class Filter(BaseModel):
    """``dimension`` equal to one value (``eq``), one of several (``in``) or none of them (``not_in``)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    dimension: Dimension
    op: FilterOp = "eq"
    values: list[str] = Field(min_length=1, max_length=1000)

    @model_validator(mode="after")
    def _one_value_for_eq(self) -> Filter:
        if self.op == "eq" and len(self.values) != 1:
            raise ValueError(f"filter {self.dimension} eq takes one value, got {len(self.values)}")
        return self


class UsageQuery(BaseModel):
    """Usage of ``client_ids`` in ``[start, end)``, by ``bucket`` (None: totals) and ``group_by``.

    ``top`` keeps the N largest groups by ``order_by`` over the whole range and folds the rest into one
    ``other`` row (per bucket); ``offset``/``limit`` page through the rows that remain.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    client_ids: list[str] = Field(min_length=1, max_length=1000)
    start: datetime
    end: datetime
    tz: str = "UTC"
    bucket: Bucket | None = None
    group_by: list[Dimension] = Field(default_factory=list, max_length=4)
    filters: list[Filter] = Field(default_factory=list, max_length=20)
    order_by: OrderBy = "cost"
    top: int | None = Field(default=None, ge=1, le=10_000)
    offset: int = Field(default=0, ge=0)
    limit: int = Field(default=1000, ge=1, le=100_000)

    @model_validator(mode="after")
    def _check(self) -> UsageQuery:
        zone(self.tz)
        if any(not client for client in self.client_ids):
            raise ValueError("client ids must not be empty")
        if len(set(self.group_by)) != len(self.group_by):
            raise ValueError("group_by names a dimension twice")
        start, end = self.start_utc, self.end_utc
        if end <= start:
            raise ValueError(f"end ({self.end.isoformat()}) must be after start ({self.start.isoformat()})")
        for name, instant in (("start", start), ("end", end)):
            if not on_bucket_boundary(instant):
                raise ValueError(f"{name} must fall on a 15-minute boundary, got {instant.isoformat()}")
        keys = {key for key in map(label_key, self.dimensions) if key is not None}
        if len(keys) > 1:
            raise ValueError(f"a query can use one label key, this one uses {len(keys)}: {', '.join(sorted(keys))}")
        return self

    @property
    def start_utc(self) -> datetime:
        return self._aware(self.start)

    @property
    def end_utc(self) -> datetime:
        return self._aware(self.end)

    @property
    def dimensions(self) -> list[str]:
        """Every dimension the query groups or filters by."""
        return [*self.group_by, *(f.dimension for f in self.filters)]

    @property
    def label(self) -> str | None:
        """The one label key the query uses, if any."""
        return next((key for key in map(label_key, self.dimensions) if key is not None), None)

    def _aware(self, instant: datetime) -> datetime:
        return instant if instant.tzinfo is not None else instant.replace(tzinfo=zone(self.tz))


def parse_filter(text: str) -> Filter:
    """``dimension=value[,value...]`` (eq or in) or ``dimension!=value[,value...]`` (not in), as the CLI and
    the API's query string write a filter; values cannot hold a comma there (a JSON query can)."""
    negated = "!=" in text
    dimension, sep, values = text.partition("!=" if negated else "=")
    if not sep or not values:
        raise ValueError(f"filter {text!r}: write dimension=value[,value] or dimension!=value[,value]")
    parts = values.split(",")
    op: FilterOp = "not_in" if negated else ("eq" if len(parts) == 1 else "in")
    return Filter(dimension=dimension.strip(), op=op, values=parts)


def explain(exc: ValueError) -> str:
    """One line for a refused query: pydantic's messages without their boilerplate, or the error's text."""
    if isinstance(exc, ValidationError):
        return "; ".join(
            f"{'.'.join(map(str, e['loc']))}: {e['msg'].removeprefix('Value error, ')}".lstrip(": ")
            for e in exc.errors()
        )
    return str(exc)


__all__ = [
    "DIMENSIONS",
    "Bucket",
    "Dimension",
    "Filter",
    "FilterOp",
    "OrderBy",
    "UsageQuery",
    "explain",
    "label_key",
    "parse_filter",
]
