"""``InMemoryEmitter`` records what the pipeline would store, and dead-letters what the worker would.

Its refusals at emit() are checked beside ``UsageEmitter``'s in ``test_emitter_bad_input.py``; here the
recording: typed events equal to what was emitted, the worker's verdicts, sessions, close, stats.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from decimal import Decimal

import pytest

from tests.fixtures.clock import ManualClock
from usagemeter import InMemoryEmitter
from usagemeter.schemas import check_record
from usagemeter.schemas.clock import SYSTEM_CLOCK


def test_an_emitted_event_is_recorded_typed_with_every_field_as_sent() -> None:
    meter = InMemoryEmitter(client_id="acme", service="chat-api")
    at = datetime(2026, 11, 30, 12, 0, 0, 123456, tzinfo=UTC)
    event_id = meter.emit(
        "gpt-4o-mini",
        provider="openai",
        user_id="alice",
        input_tokens=1_000,
        cache_read_tokens=200,
        output_tokens=2_000,
        cost="0.0125",
        labels={"feature": "summarise"},
        event_time=at,
    )
    (event,) = meter.events
    assert str(event.event_id) == event_id
    assert (event.client_id, event.service, event.user_id, event.provider, event.model) == (
        "acme",
        "chat-api",
        "alice",
        "openai",
        "gpt-4o-mini",
    )
    assert (event.input_tokens, event.cache_read_tokens, event.output_tokens) == (1_000, 200, 2_000)
    assert event.cost == Decimal("0.0125") and event.event_time == at
    assert event.labels == {"feature": "summarise"}
    assert isinstance(event.event_id, uuid.UUID)
    assert check_record(event.to_record(), SYSTEM_CLOCK.now_us()) is None
    stats = meter.stats()
    assert (stats.emitted, stats.delivered, stats.failed, stats.queued) == (1, 1, 0, 0)


def test_an_event_the_worker_would_reject_is_dead_lettered_with_the_workers_reason() -> None:
    meter = InMemoryEmitter(client_id="acme")
    meter.emit("gpt-4o", input_tokens=10, cache_read_tokens=50)  # more cached than all input tokens
    meter.emit("gpt-4o", input_tokens=10)
    assert [e.input_tokens for e in meter.events] == [10]
    (letter,) = meter.dead_letters
    expected = check_record({**letter.record}, SYSTEM_CLOCK.now_us())
    assert expected is not None and letter.reason == expected.reason and letter.message == expected.message
    assert letter.record["cache_read_tokens"] == 50


def test_strict_mode_raises_for_what_would_be_dead_lettered() -> None:
    meter = InMemoryEmitter(client_id="acme", strict=True)
    with pytest.raises(ValueError, match="cache"):
        meter.emit("gpt-4o", input_tokens=10, cache_read_tokens=50)
    assert meter.events == [] and meter.dead_letters == []


def test_a_missing_client_is_what_the_worker_refuses_too() -> None:
    meter = InMemoryEmitter()
    meter.emit("gpt-4o", input_tokens=1)
    assert meter.events == []
    assert [letter.reason for letter in meter.dead_letters] == [check_reason({"client_id": ""})]


def check_reason(change: dict[str, object]) -> str:
    """The reason the worker's rules give for a minimal valid record with ``change`` applied."""
    probe = InMemoryEmitter(client_id="probe")
    probe.emit("gpt-4o", input_tokens=1)
    record = {**probe.events[0].to_record(), **change}
    problem = check_record(record, SYSTEM_CLOCK.now_us())
    assert problem is not None
    return problem.reason


def test_the_emitters_clock_judges_event_times_not_the_system_clock() -> None:
    then = datetime(2020, 9, 13, 12, 26, 40, tzinfo=UTC)  # years ago: the model's own check would refuse it
    meter = InMemoryEmitter(client_id="acme", clock=ManualClock(now=then))
    meter.emit("gpt-4o", input_tokens=1)
    (event,) = meter.events
    assert event.event_time == then and meter.dead_letters == []


def test_sessions_emit_one_event_and_clear_forgets() -> None:
    meter = InMemoryEmitter(client_id="acme")
    with meter.session("claude-sonnet-4", provider="anthropic", user_id="bob") as session:
        session.usage(100, "prompt")
        session.usage(40, "completion")
    (event,) = meter.events
    assert (event.input_tokens, event.output_tokens, event.user_id) == (100, 40, "bob")
    meter.clear()
    assert meter.events == [] and meter.dead_letters == []


def test_after_close_emits_are_dropped_and_counted_like_the_kafka_emitter() -> None:
    with InMemoryEmitter(client_id="acme") as meter:
        meter.emit("gpt-4o", input_tokens=1)
    meter.emit("gpt-4o", input_tokens=1)
    stats = meter.stats()
    assert (stats.emitted, stats.delivered, stats.dropped) == (2, 1, 1)
    assert len(meter.events) == 1
