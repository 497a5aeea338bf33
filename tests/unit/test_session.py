"""``UsageSession``: ``usage()`` lines add up to one event (plus one per caller-priced tool line),
refused lines are counted (raised in strict mode), and nothing raises into the caller by default."""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any, cast

import pytest
from anthropic.types import Message, TextBlock, Usage

from tests.fixtures.clock import ManualClock
from usagemeter.producers import SessionError, UsageEmitter, UsageSession
from usagemeter.producers.fields import EventFields

NO_BROKER = "127.0.0.1:1"
KAFKA_CONFIG = {"message.timeout.ms": 1000, "log_level": 0}


class Recorder:
    """Stands in for the emitter: keeps what a session sends and what it refuses."""

    def __init__(self, *, strict: bool = False) -> None:
        self.sent: list[tuple[str, dict[str, Any]]] = []
        self.failures: list[str] = []
        self.strict = strict
        self.clock = ManualClock(monotonic_s=100.0)

    def emit(self, model: str, *, client_id: str = "", **fields: Any) -> str | None:
        self.sent.append((model, fields))
        return str(fields.get("event_id", ""))

    def fail(self, exc: Exception, what: str) -> None:
        if self.strict:
            raise exc
        self.failures.append(str(exc))

    def session(self, model: str = "gpt-4o", **fields: Any) -> UsageSession:
        given = cast(EventFields, {"user_id": "alice", "event_id": "e-1", **fields})
        return UsageSession(self, model, client_id="acme", fields=given, fail=self.fail, clock=self.clock)


@pytest.fixture
def meter() -> Recorder:
    return Recorder()


def only_event(meter: Recorder) -> dict[str, Any]:
    assert len(meter.sent) == 1, meter.sent
    return meter.sent[0][1]


def test_the_seed_example_is_one_event_for_the_model_and_one_for_the_priced_image(meter: Recorder) -> None:
    with meter.session("gpt-4", labels={"feature": "chat"}) as s:
        s.usage(150, "prompt")
        s.usage(250, "completion")
        s.usage(400, "total")
        s.usage(50, "function_call", cost="0.04", label="DALL-E 3 Image")
        meter.clock.monotonic_s += 1.25

    (model, chat), (tool_model, tool) = meter.sent
    assert model == "gpt-4"
    assert chat == {
        "user_id": "alice",
        "event_id": "e-1",
        "event_time": chat["event_time"],
        "input_tokens": 150,
        "output_tokens": 250,
        "total_tokens": 400,
        "requests": 1,
        "latency_ms": 1250,
        "labels": {"feature": "chat"},
    }, "no cost: the pipeline prices the chat tokens"
    assert tool_model == "DALL-E 3 Image"
    assert tool == {
        "event_time": chat["event_time"],
        "user_id": "alice",
        "operation": "tool",
        "tool_calls": 1,
        "cost": Decimal("0.04"),
        "cost_label": "DALL-E 3 Image",
        "labels": {"feature": "chat", "session_event_id": "e-1", "function_call_tokens": "50"},
    }


KIND_CASES = [
    pytest.param([(10, "input"), (5, "output")], {"input_tokens": 10, "output_tokens": 5}, id="aliases input/output"),
    pytest.param([(10, "prompt"), (20, " Prompt ")], {"input_tokens": 30}, id="lines add up, kinds case-insensitive"),
    pytest.param([("120", "completion")], {"output_tokens": 120}, id="token counts as strings"),
    pytest.param(
        [(30, "tool_usage"), (20, "function_call"), (5, "function_call")],
        {"tool_calls": 3, "labels": {"tool_usage_tokens": "30", "function_call_tokens": "25"}},
        id="unpriced tool lines count calls, their tokens in labels",
    ),
    pytest.param([(400, "total")], {"total_tokens": 400}, id="a total alone is kept, never split"),
]


@pytest.mark.parametrize(("lines", "expected"), KIND_CASES)
def test_kinds(meter: Recorder, lines: list[tuple[Any, str]], expected: dict[str, Any]) -> None:
    with meter.session() as s:
        for tokens, kind in lines:
            s.usage(tokens, kind)
    event = only_event(meter)
    assert {name: event[name] for name in expected} == {**expected}
    assert meter.failures == []


COST_CASES = [
    pytest.param(
        [(150, "prompt", "0.001", None), (250, "completion", "0.002", None)],
        {"cost": Decimal("0.003"), "cost_label": ""},
        id="costs on every token line add up",
    ),
    pytest.param(
        [(150, "prompt", None, None), (250, "completion", None, None), (400, "total", 0.0125, "GPT-4 call")],
        {"cost": Decimal("0.0125"), "cost_label": "GPT-4 call"},
        id="a cost on total covers the lines; a float is taken as written",
    ),
    pytest.param(
        [(150, "prompt", 1, "a"), (0, "completion", None, None), (250, "output", Decimal("0.5"), "b")],
        {"cost": Decimal("1.5"), "cost_label": "a; b"},
        id="an int and a Decimal; a zero-token line needs no cost",
    ),
]


@pytest.mark.parametrize(("lines", "expected"), COST_CASES)
def test_caller_costs(meter: Recorder, lines: list[tuple[Any, ...]], expected: dict[str, Any]) -> None:
    with meter.session() as s:
        for tokens, kind, cost, label in lines:
            s.usage(tokens, kind, cost=cost, label=label)
    event = only_event(meter)
    assert {name: event.get(name) for name in expected} == expected


def test_a_cost_that_leaves_tokens_unpriced_is_dropped_and_counted(meter: Recorder) -> None:
    with meter.session() as s:
        s.usage(150, "prompt", cost="0.001")
        s.usage(250, "completion")
    event = only_event(meter)
    assert "cost" not in event
    assert event["input_tokens"] == 150
    assert len(meter.failures) == 1
    assert "give a cost on every one" in meter.failures[0]


def test_a_total_below_input_plus_output_is_dropped_and_counted(meter: Recorder) -> None:
    with meter.session() as s:
        s.usage(150, "prompt")
        s.usage(250, "completion")
        s.usage(300, "total")
    assert "total_tokens" not in only_event(meter)
    assert meter.failures == ["total 300 < input + output 400"]


BAD_LINES = [
    pytest.param((10, "image"), "token kind 'image' is not one of prompt, input", id="unknown kind"),
    pytest.param((-1, "prompt"), "whole number", id="negative tokens"),
    pytest.param((1.5, "prompt"), "whole number", id="fractional tokens"),
    pytest.param((True, "prompt"), "whole number", id="a bool is not a count"),
    pytest.param((10, "prompt", "ten cents"), "non-negative amount", id="cost not a number"),
    pytest.param((10, "prompt", "-0.01"), "non-negative amount", id="negative cost"),
    pytest.param((10, "prompt", float("nan")), "non-negative amount", id="NaN cost"),
]


@pytest.mark.parametrize(("args", "message"), BAD_LINES)
def test_a_bad_line_is_counted_and_the_rest_is_sent(meter: Recorder, args: tuple[Any, ...], message: str) -> None:
    with meter.session() as s:
        s.usage(*args)
        s.usage(7, "prompt")
    assert only_event(meter)["input_tokens"] == 7
    assert len(meter.failures) == 1
    assert message in meter.failures[0]


@pytest.mark.parametrize(("args", "message"), BAD_LINES)
def test_a_bad_line_raises_in_strict_mode(args: tuple[Any, ...], message: str) -> None:
    s = Recorder(strict=True).session()
    with pytest.raises(SessionError, match=re.escape(message)):
        s.usage(*args)


def test_a_session_sends_once_and_refuses_usage_after_its_end(meter: Recorder) -> None:
    s = meter.session()
    s.usage(1, "prompt")
    assert s.close() == "e-1"
    assert s.close() is None
    s.usage(1, "prompt")
    assert len(meter.sent) == 1
    assert meter.failures == ["usage(1, 'prompt') after the session ended"]


def test_an_exception_in_the_block_marks_the_event_and_still_propagates(meter: Recorder) -> None:
    with pytest.raises(RuntimeError, match="provider down"), meter.session() as s:
        s.usage(10, "prompt")
        raise RuntimeError("provider down")
    event = only_event(meter)
    assert event["status"] == "error"
    assert event["error"] == "RuntimeError: provider down"


def test_metering_errors_never_replace_the_blocks_exception(caplog: pytest.LogCaptureFixture) -> None:
    strict = Recorder(strict=True)
    with caplog.at_level(logging.ERROR), pytest.raises(KeyError), strict.session(model="") as s:
        raise KeyError("the caller's own error")
    assert strict.sent == []
    assert "session e-1 not sent" in caplog.text
    assert s.event_id == "e-1"


def test_error_sets_status(meter: Recorder) -> None:
    with meter.session() as s:
        s.error("upstream 429", status="rate_limited")
    assert only_event(meter)["status"] == "rate_limited"


def anthropic_message(inp: int, cache_read: int, out: int) -> Message:
    usage = Usage(input_tokens=inp, output_tokens=out, cache_read_input_tokens=cache_read)
    content: list[Any] = [TextBlock(type="text", text="hi")]
    return Message(id="msg_1", type="message", role="assistant", model="claude-haiku-4-5", content=content, usage=usage)


def test_responses_add_up_in_our_convention_and_name_the_model(meter: Recorder) -> None:
    with meter.session(model="") as s:
        s.add_response(anthropic_message(10, 1000, 50))
        s.add_response(anthropic_message(20, 1000, 70))
        s.add_response({"not": "a response"})
    ((model, event),) = meter.sent
    assert model == "claude-haiku-4-5"
    assert event["provider"] == "anthropic"
    assert (event["input_tokens"], event["cache_read_tokens"], event["output_tokens"]) == (2030, 2000, 120)
    assert event["requests"] == 2
    assert len(meter.failures) == 1
    assert "carries no usage" in meter.failures[0]


def test_a_session_without_a_model_is_refused(meter: Recorder) -> None:
    with meter.session(model="") as s:
        s.usage(10, "prompt")
    assert meter.sent == []
    assert meter.failures == ["the session has no model: pass model= or add a response"]


@pytest.fixture
def emitter(tmp_path: Path) -> Iterator[UsageEmitter]:
    made = UsageEmitter(NO_BROKER, client_id="acme", kafka_config=KAFKA_CONFIG, spool_dir=tmp_path / "spool")
    yield made
    made.close(timeout_s=0.1)


def test_the_emitters_session_counts_refused_lines_in_its_stats(emitter: UsageEmitter) -> None:
    with emitter.session("gpt-4o-mini", provider="openai", user_id="alice") as s:
        s.usage(100, "prompt")
        s.usage(10, "bogus")
        s.usage(50, "function_call", cost="0.04", label="DALL-E 3 Image")
    stats = emitter.stats()
    assert (stats.emitted, stats.failed) == (2, 1)
