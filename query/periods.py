"""Report periods: a local calendar day or month in an IANA time zone, as exact UTC bounds.

Aggregates are kept in UTC 15-minute buckets. Every UTC offset in use today is a multiple of 15 minutes
(India +05:30, Nepal +05:45, Chatham +12:45 included), so a local day or month ``[start, end)`` is exactly
the set of buckets whose start lies in ``[start, end)`` converted to UTC: no bucket straddles a bound.

Bounds come from local calendar dates, never from adding 24 hours, so days of 23 or 25 hours (daylight
saving changes) and months across them are right. A local midnight skipped by a daylight saving change
(clocks jumping from 00:00 to 01:00) resolves to the first instant that exists that day.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

Period = Literal["day", "month"]

BUCKET = timedelta(minutes=15)


@dataclass(frozen=True, slots=True)
class PeriodBounds:
    """A half-open local period ``[start, end)``; both ends are aware datetimes in the report's zone."""

    start: datetime
    end: datetime

    @property
    def start_utc(self) -> datetime:
        return self.start.astimezone(UTC)

    @property
    def end_utc(self) -> datetime:
        return self.end.astimezone(UTC)


def zone(name: str) -> ZoneInfo:
    """The IANA zone called ``name``; a ``ValueError`` that says what to pass when there is none."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValueError(f"unknown time zone {name!r}: give an IANA name such as 'UTC' or 'Europe/Berlin'") from exc


def period_bounds(period: Period, tz: str, now: datetime) -> PeriodBounds:
    """The local day or month of ``tz`` that contains the instant ``now`` (an aware datetime)."""
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    local_zone = zone(tz)
    today = now.astimezone(local_zone).date()
    if period == "day":
        first, after = today, today + timedelta(days=1)
    elif period == "month":
        first = today.replace(day=1)
        after = date(first.year + first.month // 12, first.month % 12 + 1, 1)
    else:
        raise ValueError(f"unknown period {period!r}: use 'day' or 'month'")
    return PeriodBounds(start=local_midnight(first, local_zone), end=local_midnight(after, local_zone))


def on_bucket_boundary(instant: datetime) -> bool:
    """Whether an aware instant is the start of a UTC 15-minute bucket."""
    since_epoch = instant.astimezone(UTC) - datetime(1970, 1, 1, tzinfo=UTC)
    return since_epoch % BUCKET == timedelta(0)


def local_midnight(day: date, local_zone: ZoneInfo) -> datetime:
    # fold=0 maps a skipped wall time with the offset in force before the jump, which lands on the first
    # instant that exists after it; normalising through UTC shows it with the right offset.
    return datetime.combine(day, time(0), tzinfo=local_zone).astimezone(UTC).astimezone(local_zone)


def next_bucket_start(bucket: str, start: datetime, tz: str) -> datetime:
    """The start of the local bucket after the one starting at ``start`` (15m, hour, day, week or month of ``tz``).

    Days, weeks and months step by local calendar dates (23- and 25-hour days included); 15 minutes and
    hours are fixed lengths of UTC time, which local ones are wherever offsets are whole quarter hours.
    """
    if bucket == "15m":
        return start + BUCKET
    if bucket == "hour":
        return start + timedelta(hours=1)
    local_zone = zone(tz)
    day = start.astimezone(local_zone).date()
    if bucket == "day":
        after = day + timedelta(days=1)
    elif bucket == "week":
        after = day + timedelta(days=7 - day.weekday())
    elif bucket == "month":
        after = date(day.year + day.month // 12, day.month % 12 + 1, 1)
    else:
        raise ValueError(f"unknown bucket {bucket!r}: use 15m, hour, day, week or month")
    return local_midnight(after, local_zone)
