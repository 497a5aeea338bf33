"""What a dashboard URL holds: range, zone, client and filters, parsed and validated, and written back.

The state lives in the query string only (``/dashboard?client=acme&range=7d&tz=Europe/Berlin&model=gpt-4o``),
so a view can be bookmarked and shared; a key decides what of it the reader may see (``Scope``).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Final, Literal
from urllib.parse import urlencode

from pydantic import BaseModel, ConfigDict, Field, field_validator

from usagemeter.query.periods import zone
from usagemeter.query.spec import Bucket, Filter

Range = Literal["1d", "7d", "30d", "90d"]
RANGES: Final[dict[str, tuple[timedelta, Bucket]]] = {
    "1d": (timedelta(days=1), "hour"),
    "7d": (timedelta(days=7), "hour"),
    "30d": (timedelta(days=30), "day"),
    "90d": (timedelta(days=90), "day"),
}
"""Each range's length and the bucket its charts use: about 24 to 170 points, readable at any width."""
_QUARTER: Final = timedelta(minutes=15)
FILTER_FIELDS: Final = ("provider", "model", "user", "service")


@dataclass(frozen=True, slots=True)
class Scope:
    """Whose rows a reader may see: every client (an admin key) or ``clients`` only."""

    admin: bool
    clients: frozenset[str]

    def may_read(self, client_id: str) -> bool:
        return self.admin or client_id in self.clients


class View(BaseModel):
    """The main page's state. ``client`` empty: every client the key may read; ``label`` is ``key=value``."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    client: str = Field(default="", max_length=256)
    range: Range = "7d"
    tz: str = "UTC"
    provider: str = Field(default="", max_length=256)
    model: str = Field(default="", max_length=256)
    user: str = Field(default="", max_length=256)
    service: str = Field(default="", max_length=256)
    label: str = Field(default="", max_length=1200)

    @field_validator("tz")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        zone(value)
        return value

    @field_validator("label")
    @classmethod
    def _key_value(cls, value: str) -> str:
        if value and ("=" not in value or not value.partition("=")[0]):
            raise ValueError("label filter: write key=value")
        return value

    @property
    def bucket(self) -> Bucket:
        return RANGES[self.range][1]

    def bounds(self, now: datetime) -> tuple[datetime, datetime]:
        """``[start, end)`` of the range ending at the first 15-minute boundary after ``now``."""
        utc = now.astimezone(UTC)
        floor = utc.replace(minute=utc.minute - utc.minute % 15, second=0, microsecond=0)
        end = floor + _QUARTER
        return end - RANGES[self.range][0], end

    def filters(self) -> list[Filter]:
        """The query filters of the view (each field an equality; the label as ``label:<key>``)."""
        found = [Filter(dimension=name, values=[value]) for name in FILTER_FIELDS if (value := getattr(self, name))]
        if self.label:
            key, _, value = self.label.partition("=")
            found.append(Filter(dimension=f"label:{key}", values=[value]))
        return found

    def url(self, path: str = "/dashboard", **changes: str) -> str:
        """This view's URL with ``changes``, leaving out what is at its default, so shared links stay short."""
        state = self.model_dump() | changes
        defaults = View().model_dump()
        return f"{path}?{urlencode({k: v for k, v in state.items() if v != defaults[k]})}".rstrip("?")


class PriceView(BaseModel):
    """The prices page's state: a search over model and provider names and the moment (default now)."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    search: str = Field(default="", max_length=256)
    at: datetime | None = None

    def moment(self, now: datetime) -> datetime:
        if self.at is None:
            return now
        return self.at if self.at.tzinfo is not None else self.at.replace(tzinfo=UTC)
