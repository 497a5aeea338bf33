"""``UsageEmitter.emit_response``: the extracted usage is what goes on the wire, caller fields override
it, and a response whose usage cannot be read is refused like an invalid event (counted, or raised in
strict mode) without ever raising into the caller by default."""

from __future__ import annotations

import io
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from anthropic.types import Message, TextBlock, Usage
from fastavro import schemaless_reader

from usagemeter.producers import ExtractionError, UsageEmitter
from usagemeter.schemas import CURRENT

NO_BROKER = "127.0.0.1:1"
KAFKA_CONFIG = {"message.timeout.ms": 1000, "log_level": 0}


class CapturingEmitter(UsageEmitter):
    """Decodes what would be handed to Kafka instead of sending it."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.records: list[dict[str, Any]] = []

    def _send(self, key: bytes, value: bytes) -> None:
        record: Any = schemaless_reader(io.BytesIO(value[10:]), CURRENT.plain, None)
        assert key.decode() == record["event_id"]
        self.records.append(record)


Factory = Callable[..., CapturingEmitter]


@pytest.fixture
def make_emitter(tmp_path: Path) -> Iterator[Factory]:
    made: list[CapturingEmitter] = []

    def make(**kwargs: Any) -> CapturingEmitter:
        emitter = CapturingEmitter(
            NO_BROKER, client_id="acme", kafka_config=KAFKA_CONFIG, spool_dir=tmp_path / "spool", **kwargs
        )
        made.append(emitter)
        return emitter

    yield make
    for emitter in made:
        emitter.close(timeout_s=0.1)


def anthropic_message() -> Message:
    usage = Usage(input_tokens=50, output_tokens=300, cache_read_input_tokens=10_000, cache_creation_input_tokens=2000)
    return Message(
        id="msg_1",
        type="message",
        role="assistant",
        model="claude-sonnet-4-5-20250929",
        content=[TextBlock(type="text", text="hi")],
        usage=usage,
    )


def test_the_normalised_usage_is_what_is_sent(make_emitter: Factory) -> None:
    emitter = make_emitter(strict=True)
    event_id = emitter.emit_response(anthropic_message(), user_id="alice", labels={"feature": "search"})
    (record,) = emitter.records
    assert record["event_id"] == event_id
    expected = {
        "client_id": "acme",
        "user_id": "alice",
        "provider": "anthropic",
        "model": "claude-sonnet-4-5-20250929",
        "operation": "chat",
        "request_id": "msg_1",
        "input_tokens": 12_050,
        "cache_read_tokens": 10_000,
        "cache_write_tokens": 2000,
        "output_tokens": 300,
        "requests": 1,
        "labels": {"feature": "search"},
    }
    assert {name: record[name] for name in expected} == expected


def test_caller_fields_and_model_override_the_response(make_emitter: Factory) -> None:
    emitter = make_emitter()
    emitter.emit_response(anthropic_message(), model="claude-sonnet-4-5", provider="aws", request_id="req-9")
    (record,) = emitter.records
    assert (record["model"], record["provider"], record["request_id"]) == ("claude-sonnet-4-5", "aws", "req-9")


UNREADABLE = [
    pytest.param(object(), "builtins.object carries no usage", id="not a response"),
    pytest.param({"model": "x", "usage": {"tokens": 5}}, "cannot tell which provider", id="unknown usage shape"),
    pytest.param({"model": "x", "usage": {"input_tokens": 5, "output_tokens": 1}}, "cannot tell", id="ambiguous"),
    pytest.param({"model": "gpt-4o", "choices": []}, "carries no usage", id="no usage"),
    pytest.param({"usage": {"prompt_tokens": 5, "completion_tokens": 1}}, "names no model", id="no model"),
    pytest.param({"model": "gpt-4o", "usage": {"prompt_tokens": -5}}, "not a token count", id="negative count"),
]


@pytest.mark.parametrize(("response", "message"), UNREADABLE)
def test_an_unreadable_response_is_counted_not_raised(make_emitter: Factory, response: object, message: str) -> None:
    emitter = make_emitter()
    assert emitter.emit_response(response) is None
    assert (emitter.stats().failed, emitter.stats().emitted) == (1, 0)


@pytest.mark.parametrize(("response", "message"), UNREADABLE)
def test_an_unreadable_response_raises_in_strict_mode(make_emitter: Factory, response: object, message: str) -> None:
    with pytest.raises(ExtractionError, match=message):
        make_emitter(strict=True).emit_response(response)


def test_inconsistent_provider_numbers_are_refused_by_the_usual_event_rules(make_emitter: Factory) -> None:
    body = {"model": "gpt-4o", "usage": {"prompt_tokens": 10, "prompt_tokens_details": {"cached_tokens": 20}}}
    with pytest.raises(ValueError, match="inconsistent_tokens"):
        make_emitter(strict=True).emit_response(body)
