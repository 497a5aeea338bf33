"""Report periods: local days and months as exact UTC bounds, on 15-minute bucket boundaries."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import available_timezones

import pytest

from usagemeter.query.periods import Period, on_bucket_boundary, period_bounds


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


@pytest.mark.parametrize(
    ("period", "tz", "now", "start_utc", "end_utc"),
    [
        pytest.param(
            "day",
            "Asia/Kolkata",
            "2026-03-10 20:00",
            "2026-03-10 18:30",
            "2026-03-11 18:30",
            id="Kolkata +05:30, already tomorrow locally",
        ),
        pytest.param(
            "day",
            "Asia/Kolkata",
            "2026-03-10 18:29:59",
            "2026-03-09 18:30",
            "2026-03-10 18:30",
            id="Kolkata one second before local midnight",
        ),
        pytest.param(
            "day",
            "Asia/Kathmandu",
            "2026-03-10 18:00",
            "2026-03-09 18:15",
            "2026-03-10 18:15",
            id="Kathmandu +05:45, 23:45 local",
        ),
        pytest.param(
            "day",
            "Asia/Kathmandu",
            "2026-03-10 18:15",
            "2026-03-10 18:15",
            "2026-03-11 18:15",
            id="Kathmandu exactly at local midnight",
        ),
        pytest.param(
            "month",
            "Europe/Berlin",
            "2026-03-15 12:00",
            "2026-02-28 23:00",
            "2026-03-31 22:00",
            id="Berlin March: starts +01:00, ends +02:00 (spring forward)",
        ),
        pytest.param(
            "month",
            "Europe/Berlin",
            "2026-10-31 22:59",
            "2026-09-30 22:00",
            "2026-10-31 23:00",
            id="Berlin October: starts +02:00, ends +01:00 (fall back)",
        ),
        pytest.param(
            "day",
            "Europe/Berlin",
            "2026-03-29 12:00",
            "2026-03-28 23:00",
            "2026-03-29 22:00",
            id="Berlin spring-forward day has 23 hours",
        ),
        pytest.param(
            "day",
            "Europe/Berlin",
            "2026-10-25 12:00",
            "2026-10-24 22:00",
            "2026-10-25 23:00",
            id="Berlin fall-back day has 25 hours",
        ),
        pytest.param(
            "month",
            "UTC",
            "2026-12-31 23:59:59",
            "2026-12-01 00:00",
            "2027-01-01 00:00",
            id="December rolls into next year",
        ),
        pytest.param(
            "month",
            "Pacific/Chatham",
            "2026-01-31 11:30",
            "2026-01-31 10:15",
            "2026-02-28 10:15",
            id="Chatham +13:45 in summer: already February locally",
        ),
        pytest.param(
            "day",
            "America/Santiago",
            "2026-09-06 12:00",
            "2026-09-06 04:00",
            "2026-09-07 03:00",
            id="Santiago: skipped local midnight starts the day at 01:00",
        ),
    ],
)
def test_period_bounds_are_exact_utc_instants(period: Period, tz: str, now: str, start_utc: str, end_utc: str) -> None:
    bounds = period_bounds(period, tz, utc(now))

    assert (bounds.start_utc, bounds.end_utc) == (utc(start_utc), utc(end_utc))
    assert bounds.start.tzinfo is not None and str(bounds.start.tzinfo) == tz
    assert bounds.start <= utc(now) < bounds.end


def test_local_bounds_show_local_midnight_with_its_offset() -> None:
    bounds = period_bounds("month", "Europe/Berlin", utc("2026-03-15 12:00"))

    assert bounds.start.isoformat() == "2026-03-01T00:00:00+01:00"
    assert bounds.end.isoformat() == "2026-04-01T00:00:00+02:00"
    assert bounds.end_utc - bounds.start_utc == timedelta(days=31) - timedelta(hours=1)


@pytest.mark.parametrize("now", ["2026-01-15 12:00", "2026-07-15 12:00"])
@pytest.mark.parametrize("period", ["day", "month"])
def test_every_zone_falls_on_bucket_boundaries(period: Period, now: str) -> None:
    off = [
        tz
        for tz in sorted(available_timezones())
        for b in [period_bounds(period, tz, utc(now))]
        if not (on_bucket_boundary(b.start) and on_bucket_boundary(b.end))
    ]
    assert off == []


def test_unknown_time_zone_is_a_clear_value_error() -> None:
    with pytest.raises(ValueError, match=r"unknown time zone 'Mars/Olympus'.*IANA"):
        period_bounds("day", "Mars/Olympus", utc("2026-01-01 00:00"))


def test_malformed_time_zone_is_a_value_error_too() -> None:
    with pytest.raises(ValueError, match="unknown time zone"):
        period_bounds("day", "../etc/passwd", utc("2026-01-01 00:00"))


def test_naive_now_is_refused() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        period_bounds("day", "UTC", datetime(2026, 1, 1))


def test_unknown_period_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown period"):
        period_bounds("week", "UTC", utc("2026-01-01 00:00"))  # type: ignore[arg-type]
