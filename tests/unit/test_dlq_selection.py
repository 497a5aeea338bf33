"""Which dead letters a ``usagemeter dlq`` command selects, and how a DLQ message reads back: pure logic."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from confluent_kafka import TIMESTAMP_CREATE_TIME, Message

from usagemeter.consumers.dead_letters import (
    MESSAGE_HEADER,
    OFFSET_HEADER,
    PARTITION_HEADER,
    REASON_HEADER,
    REPLAY_OF_HEADER,
    TOPIC_HEADER,
)
from usagemeter.consumers.dlq.reader import DeadLetter, OffsetRange, Selection, dead_letter

AT = datetime(2026, 11, 23, 8, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param("17", OffsetRange(None, 17, 17), id="bare offset"),
        pytest.param("10-20", OffsetRange(None, 10, 20), id="bare range"),
        pytest.param("2:17", OffsetRange(2, 17, 17), id="partition and offset"),
        pytest.param("2:10-20", OffsetRange(2, 10, 20), id="partition and range"),
        pytest.param(" 0:5 ", OffsetRange(0, 5, 5), id="spaces around"),
        pytest.param("3:4-4", OffsetRange(3, 4, 4), id="range of one"),
    ],
)
def test_offsets_parse(text: str, expected: OffsetRange) -> None:
    assert OffsetRange.parse(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        pytest.param("", id="empty"),
        pytest.param("x", id="a word"),
        pytest.param("2:", id="partition without offset"),
        pytest.param("20-10", id="range going down"),
        pytest.param("-3", id="negative offset"),
        pytest.param("-1:3", id="negative partition"),
        pytest.param("1:2:3", id="two colons"),
        pytest.param("1.5", id="not an integer"),
    ],
)
def test_offsets_refuse(text: str) -> None:
    with pytest.raises(ValueError, match=r"(?i)offset"):
        OffsetRange.parse(text)


def _letter(partition: int = 0, offset: int = 5, reason: str = "not_avro", at: datetime | None = AT) -> DeadLetter:
    return DeadLetter(partition, offset, at, reason, "m", "usage.events", 1, 99, b"k", b"v")


@pytest.mark.parametrize(
    ("selection", "selected"),
    [
        pytest.param(Selection(), True, id="everything"),
        pytest.param(Selection(reasons=frozenset({"not_avro", "unknown_schema"})), True, id="one of the reasons"),
        pytest.param(Selection(reasons=frozenset({"unknown_schema"})), False, id="another reason"),
        pytest.param(Selection(since=AT), True, id="since exactly its time"),
        pytest.param(Selection(since=AT + timedelta(milliseconds=1)), False, id="since after its time"),
        pytest.param(Selection(offsets=(OffsetRange(0, 5, 5),)), True, id="its position"),
        pytest.param(Selection(offsets=(OffsetRange(None, 0, 10),)), True, id="bare range covering it"),
        pytest.param(Selection(offsets=(OffsetRange(1, 0, 10),)), False, id="range in another partition"),
        pytest.param(Selection(offsets=(OffsetRange(0, 6, 9), OffsetRange(0, 1, 4))), False, id="ranges around it"),
        pytest.param(
            Selection(reasons=frozenset({"not_avro"}), offsets=(OffsetRange(0, 6, 6),)), False, id="all must match"
        ),
    ],
)
def test_selection(selection: Selection, selected: bool) -> None:
    assert selection.matches(_letter()) is selected


def test_a_letter_without_time_is_not_selected_by_since() -> None:
    assert not Selection(since=AT).matches(_letter(at=None))


def test_a_dlq_message_reads_back_as_the_worker_wrote_it() -> None:
    headers: list[tuple[str, str | bytes | None]] = [
        (REASON_HEADER, b"unknown_schema"),
        (MESSAGE_HEADER, b"writer schema fingerprint 00 is not known"),
        (TOPIC_HEADER, b"usage.events"),
        (PARTITION_HEADER, b"3"),
        (OFFSET_HEADER, b"1200"),
        (REPLAY_OF_HEADER, b"usage.events.dlq/0:7"),
    ]
    millis = int(AT.timestamp() * 1000)
    msg = Message("usage.events.dlq", 1, 42, b"key", b"value", headers, None, (TIMESTAMP_CREATE_TIME, millis))
    assert dead_letter(msg) == DeadLetter(
        1, 42, AT, "unknown_schema", "writer schema fingerprint 00 is not known", "usage.events", 3, 1200,
        b"key", b"value", "usage.events.dlq/0:7",
    )  # fmt: skip
    assert dead_letter(msg).position == "1:42"


def test_a_message_without_our_headers_reads_as_empty_fields() -> None:
    msg = Message("usage.events.dlq", 0, 3, None, None, [(PARTITION_HEADER, b"not a number")], None, (0, 0))
    letter = dead_letter(msg)
    assert (letter.reason, letter.topic, letter.original_partition, letter.original_offset) == ("", "", None, None)
    assert letter.timestamp is None and letter.replay_of is None
