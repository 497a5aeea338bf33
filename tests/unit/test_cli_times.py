"""The one time parser of the CLI's options: what it accepts, and what a time without a zone means."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone
from typing import Any, get_type_hints

import pytest
import typer

from usagemeter.cli import dlq_cmd, prices_cmd
from usagemeter.cli.reprice_cmd import reprice_command
from usagemeter.cli.times import local_time, utc_time
from usagemeter.cli.usage_cmd import usage_command

PLUS_1 = timezone(timedelta(hours=1))


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param("2026-11-23", datetime(2026, 11, 23, tzinfo=UTC), id="date-alone-is-utc-midnight"),
        pytest.param("2026-11-23T08:00", datetime(2026, 11, 23, 8, tzinfo=UTC), id="no-zone-is-utc"),
        pytest.param("2026-11-23 08:00:30", datetime(2026, 11, 23, 8, 0, 30, tzinfo=UTC), id="space-separator"),
        pytest.param("2026-11-23T08:00Z", datetime(2026, 11, 23, 8, tzinfo=UTC), id="z-suffix"),
        pytest.param("2026-11-23T09:00+01:00", datetime(2026, 11, 23, 8, tzinfo=UTC), id="offset-converted"),
        pytest.param("2026-11-23T03:00-05:00", datetime(2026, 11, 23, 8, tzinfo=UTC), id="negative-offset"),
        pytest.param(" 2026-11-23T08:00:00.250Z ", datetime(2026, 11, 23, 8, 0, 0, 250_000, tzinfo=UTC),
                     id="fraction-and-spaces"),
    ],
)  # fmt: skip
def test_utc_time(text: str, expected: datetime) -> None:
    parsed = utc_time(text)
    assert parsed == expected and parsed.tzinfo is UTC


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param("2026-11-23T08:00", datetime(2026, 11, 23, 8), id="no-zone-stays-naive-for-tz"),
        pytest.param("2026-11-23", datetime(2026, 11, 23), id="date-alone-stays-naive"),
        pytest.param("2026-11-23T08:00+01:00", datetime(2026, 11, 23, 8, tzinfo=PLUS_1), id="offset-kept"),
        pytest.param("2026-11-23T08:00Z", datetime(2026, 11, 23, 8, tzinfo=UTC), id="z-kept"),
    ],
)
def test_local_time(text: str, expected: datetime) -> None:
    parsed = local_time(text)
    assert parsed == expected and parsed.utcoffset() == expected.utcoffset()


@pytest.mark.parametrize(
    "text",
    [
        pytest.param("", id="empty"),
        pytest.param("yesterday", id="word"),
        pytest.param("23/11/2026", id="day-first"),
        pytest.param("2026-13-01", id="month-13"),
        pytest.param("2026-11-23T25:00", id="hour-25"),
    ],
)
def test_refused_with_an_example(text: str) -> None:
    with pytest.raises(typer.BadParameter, match="ISO 8601"):
        utc_time(text)


def _option(command: Callable[..., None], name: str) -> Any:
    """The typer.Option an option is declared with."""
    return get_type_hints(command, include_extras=True)[name].__metadata__[0]


TIME_OPTIONS = [
    pytest.param(usage_command, "since", local_time, "without a zone, in --tz", id="usage--since"),
    pytest.param(dlq_cmd.list_command, "since", utc_time, "without a zone, UTC", id="dlq-list--since"),
    pytest.param(dlq_cmd.count, "since", utc_time, "without a zone, UTC", id="dlq-count--since"),
    pytest.param(dlq_cmd.replay_command, "since", utc_time, "without a zone, UTC", id="dlq-replay--since"),
    pytest.param(reprice_command, "since", utc_time, "without a zone, UTC", id="reprice--since"),
    pytest.param(reprice_command, "until", utc_time, "without a zone, UTC", id="reprice--until"),
    pytest.param(prices_cmd.show, "at", utc_time, "without a zone, UTC", id="prices-show--at"),
]


@pytest.mark.parametrize(("command", "name", "parser", "says"), TIME_OPTIONS)
def test_every_time_option_uses_the_one_parser_and_says_so(
    command: Callable[..., None], name: str, parser: Callable[[str], datetime], says: str
) -> None:
    option = _option(command, name)
    assert option.parser is parser
    assert says in (option.help or "")
