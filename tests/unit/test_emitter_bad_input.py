"""Bad input gets a clear answer: a misspelt field, a wrong type, an event too large to send.

Each is refused at emit() (never sent), counted in ``failed`` and ``refused`` and logged in one line
without a traceback, or raised with ``strict=True``. No broker is needed: nothing reaches one. Every case
runs on ``UsageEmitter`` and on ``InMemoryEmitter``: users' tests must see the refusals production does.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from usagemeter.producers import EventTooLargeError, InMemoryEmitter, UsageEmitter
from usagemeter.producers.core import EmitterCore

NO_BROKER = "127.0.0.1:1"
KAFKA_CONFIG = {"message.timeout.ms": 1000, "log_level": 0}
EMITTER_LOG = "usagemeter.producers.emitter"

Factory = Callable[..., EmitterCore]


@pytest.fixture(params=["kafka", "memory"])
def make_emitter(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Factory]:
    made: list[EmitterCore] = []

    def make(**kwargs: Any) -> EmitterCore:
        config = KAFKA_CONFIG | kwargs.pop("kafka_config", {})
        emitter: EmitterCore
        if request.param == "memory":
            limit = int(config.get("message.max.bytes", 1_000_000))
            emitter = InMemoryEmitter(client_id="acme", max_bytes=limit, **kwargs)
        else:
            emitter = UsageEmitter(
                NO_BROKER, client_id="acme", kafka_config=config, spool_dir=tmp_path / "spool", **kwargs
            )
        made.append(emitter)
        return emitter

    yield make
    for emitter in made:
        emitter.close(timeout_s=0.1)


def emitter_errors(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == EMITTER_LOG and r.levelno >= logging.ERROR]


def test_a_misspelt_field_raises_a_type_error_naming_the_right_one_in_strict_mode(make_emitter: Factory) -> None:
    emitter = make_emitter(strict=True)
    with pytest.raises(TypeError, match=r"'imput_tokens' \(did you mean 'input_tokens'\?\)"):
        emitter.emit("gpt-4o", imput_tokens=10)  # type: ignore[call-arg]
    assert emitter.stats().emitted == 0


def test_a_misspelt_field_is_refused_not_stored_as_a_zero_token_request(
    make_emitter: Factory, caplog: pytest.LogCaptureFixture
) -> None:
    emitter = make_emitter()
    with caplog.at_level(logging.ERROR):
        assert emitter.emit("gpt-4o", imput_tokens=10) is None  # type: ignore[call-arg]
    stats = emitter.stats()
    assert (stats.emitted, stats.failed, stats.refused) == (0, 1, 1), stats
    (line,) = emitter_errors(caplog)
    assert "did you mean 'input_tokens'" in line.getMessage()
    assert line.exc_info is None


def test_a_field_far_from_any_name_is_named_without_a_guess(make_emitter: Factory) -> None:
    with pytest.raises(TypeError, match=r"unknown field 'zzz'$"):
        make_emitter(strict=True).emit("gpt-4o", zzz=1)  # type: ignore[call-arg]


def test_a_wrong_type_is_logged_in_one_line_naming_the_field_without_a_traceback(
    make_emitter: Factory, caplog: pytest.LogCaptureFixture
) -> None:
    emitter = make_emitter()
    with caplog.at_level(logging.ERROR):
        assert emitter.emit("gpt-4o", input_tokens="10") is None  # type: ignore[arg-type]
    (line,) = emitter_errors(caplog)
    assert "input_tokens must be an int (64-bit), not str '10'" in line.getMessage()
    assert line.exc_info is None
    assert "Traceback" not in caplog.text
    stats = emitter.stats()
    assert (stats.emitted, stats.failed, stats.refused) == (0, 1, 1), stats


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        pytest.param({"input_tokens": "10"}, r"input_tokens must be an int \(64-bit\), not str '10'", id="str count"),
        pytest.param({"labels": {"a": 1}}, r"labels must be a dict of str to str", id="label value"),
        pytest.param({"event_id": 42}, r"event_id must be a str, not int 42", id="event_id"),
    ],
)
def test_a_wrong_type_raises_a_type_error_naming_the_field_in_strict_mode(
    make_emitter: Factory, fields: dict[str, Any], message: str
) -> None:
    with pytest.raises(TypeError, match=message):
        make_emitter(strict=True).emit("gpt-4o", **fields)


def test_an_event_over_message_max_bytes_is_refused_at_emit(
    make_emitter: Factory, caplog: pytest.LogCaptureFixture
) -> None:
    emitter = make_emitter()
    with caplog.at_level(logging.ERROR):
        assert emitter.emit("gpt-4o", error="x" * 1_000_000) is None  # over librdkafka's default 1,000,000
        assert emitter.emit("gpt-4o", input_tokens=1) is not None
    stats = emitter.stats()
    assert (stats.emitted, stats.failed, stats.refused, stats.queued) == (1, 1, 1, 0), stats
    (line,) = emitter_errors(caplog)
    assert "over message.max.bytes (1000000)" in line.getMessage()


def test_an_event_over_a_configured_message_max_bytes_raises_in_strict_mode(make_emitter: Factory) -> None:
    emitter = make_emitter(strict=True, kafka_config={"message.max.bytes": 2000})
    with pytest.raises(EventTooLargeError, match=r"over message.max.bytes \(2000\)") as raised:
        emitter.emit("gpt-4o", error="x" * 3000)
    assert isinstance(raised.value, ValueError)
    assert emitter.emit("gpt-4o", error="x" * 1000) is not None


def test_refusals_log_one_line_per_kind_not_one_per_event(
    make_emitter: Factory, caplog: pytest.LogCaptureFixture
) -> None:
    emitter = make_emitter()
    with caplog.at_level(logging.ERROR):
        for _ in range(100):
            emitter.emit("gpt-4o", imput_tokens=10)  # type: ignore[call-arg]
            emitter.emit("gpt-4o", input_tokens="10")  # type: ignore[arg-type]
    assert len(emitter_errors(caplog)) == 2
    assert emitter.stats().refused == 200
