"""A budget's period containing an instant: a local day, week or month of its zone, or the rolling last N days.

Calendar periods come from local dates (``query.periods.local_midnight``), never from adding hours, so
23- and 25-hour days are right and a period is exactly the 15-minute buckets whose start lies in it (every
UTC offset in use is a multiple of 15 minutes). Thresholds re-arm when ``key`` changes.

A rolling period ends at the end of the bucket holding the instant and starts N days before; it never
resets, so its ``key`` is one constant and its thresholds re-arm only when spend falls back below them.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Final

from usagemeter.budgets.model import WEEKDAYS, BudgetSpec
from usagemeter.query.periods import BUCKET, local_midnight, zone

ROLLING_KEY: Final = datetime(1970, 1, 1, tzinfo=UTC)
"""The ledger's period start of every rolling budget."""


@dataclass(frozen=True, slots=True)
class Window:
    """``[start, end)`` as aware datetimes in the budget's zone; ``next_reset`` is None for a rolling one."""

    start: datetime
    end: datetime
    next_reset: datetime | None
    key: datetime
    """What identifies the period in the alert ledger (UTC)."""

    @property
    def start_utc(self) -> datetime:
        return self.start.astimezone(UTC)

    @property
    def end_utc(self) -> datetime:
        return self.end.astimezone(UTC)

    @property
    def seconds(self) -> float:
        return (self.end - self.start).total_seconds()


def window(spec: BudgetSpec, now: datetime) -> Window:
    """The period of ``spec`` that contains the aware instant ``now``."""
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    local_zone = zone(spec.tz)
    if spec.period == "rolling":
        end = bucket_end(now)
        start = end - timedelta(days=spec.rolling_days or 0)
        return Window(start.astimezone(local_zone), end.astimezone(local_zone), None, ROLLING_KEY)
    today = now.astimezone(local_zone).date()
    first, after = _calendar(spec, today)
    start, end = local_midnight(first, local_zone), local_midnight(after, local_zone)
    return Window(start, end, end, start.astimezone(UTC))


def _calendar(spec: BudgetSpec, today: date) -> tuple[date, date]:
    if spec.period == "day":
        return today, today + timedelta(days=1)
    if spec.period == "week":
        first = today - timedelta(days=(today.weekday() - WEEKDAYS.index(spec.week_start)) % 7)
        return first, first + timedelta(days=7)
    first = today.replace(day=1)
    return first, date(first.year + first.month // 12, first.month % 12 + 1, 1)


RECENT: Final = timedelta(hours=1)
"""How far back the run rate looks: projections and the pre-flight check's worst-case overshoot."""


def recent_start(period: Window, now: datetime) -> datetime:
    """Where the trailing run rate starts: an hour before the end of ``now``'s bucket, within the period."""
    return max(period.start_utc, bucket_end(now) - RECENT)


def bucket_end(now: datetime) -> datetime:
    """The end of the UTC 15-minute bucket that holds ``now``."""
    epoch = datetime(1970, 1, 1, tzinfo=UTC)
    since = now.astimezone(UTC) - epoch
    return epoch + (since // BUCKET + 1) * BUCKET
