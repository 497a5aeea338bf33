"""One parser for every option that takes a time (``usage --since``, ``dlq --since``, ``reprice --since/--until``,
``prices show --at``), so they all accept the same text and read a time without a zone the same way.

Accepted: ISO 8601 with ``Z`` or an offset (``2026-11-23T08:00Z``, ``2026-11-23 09:00+01:00``), without one
(``2026-11-23T08:00``), or a date alone (midnight). Without a zone a time is UTC, except for ``usage
--since``, whose report is in ``--tz`` (``local_time`` leaves it naive; ``get_usage`` reads it there).
"""

from __future__ import annotations

from datetime import UTC, datetime

import typer

EXAMPLES = "e.g. 2026-11-23, 2026-11-23T08:00Z or 2026-11-23T09:00+01:00"


def local_time(text: str) -> datetime:
    """The time as given: aware when it names a zone or offset, naive (for the caller's zone) when not."""
    try:
        return datetime.fromisoformat(text.strip())
    except ValueError as exc:
        raise typer.BadParameter(f"{text!r} is not an ISO 8601 date or time, {EXAMPLES}") from exc


def utc_time(text: str) -> datetime:
    """The time in UTC; one given without a zone is UTC."""
    value = local_time(text)
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


UTC_HELP = f"ISO 8601 or a date ({EXAMPLES}); without a zone, UTC"
