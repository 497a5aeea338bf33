"""``UsageEmitter`` with no broker listening: it must never raise into the caller nor block it.

Port 1 on localhost has no Kafka: messages wait in librdkafka's queue until ``message.timeout.ms``
(one second here) and then fail, which is what a service sees when the brokers are down.
"""

from __future__ import annotations

import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, cast

import pytest
from confluent_kafka import KafkaError

from usagemeter.producers import DeliveryCallback, UsageEmitter

NO_BROKER = "127.0.0.1:1"
KAFKA_CONFIG = {"message.timeout.ms": 1000, "log_level": 0}  # no connection-refused lines on stderr

EmitterFactory = Callable[..., UsageEmitter]


@pytest.fixture
def make_emitter(tmp_path: Path) -> Iterator[EmitterFactory]:
    """Emitters pointed at no broker, spooling into the test's own directory, closed after the test."""
    made: list[UsageEmitter] = []

    def make(**kwargs: Any) -> UsageEmitter:
        kwargs.setdefault("spool_dir", tmp_path / "spool")
        emitter = UsageEmitter(NO_BROKER, client_id="acme", kafka_config=KAFKA_CONFIG, **kwargs)
        made.append(emitter)
        return emitter

    yield make
    for emitter in made:
        emitter.close(timeout_s=0.1)


def test_emit_returns_an_event_id_without_a_broker(make_emitter: EmitterFactory) -> None:
    emitter = make_emitter()
    event_id = emitter.emit("gpt-4o-mini", provider="openai", input_tokens=1000, output_tokens=200)
    assert event_id is not None
    assert str(uuid.UUID(event_id)) == event_id
    assert emitter.stats().emitted == 1
    assert emitter.stats().failed == 0


def test_a_given_event_id_is_returned(make_emitter: EmitterFactory) -> None:
    given = str(uuid.uuid4())
    assert make_emitter().emit("gpt-4o-mini", event_id=given) == given


def test_emit_does_not_block_without_a_broker(make_emitter: EmitterFactory) -> None:
    emitter = make_emitter()
    calls = 2_000
    started = time.perf_counter()
    ids = [emitter.emit("gpt-4o-mini", input_tokens=i, output_tokens=1) for i in range(calls)]
    mean_s = (time.perf_counter() - started) / calls
    assert None not in ids
    assert len(set(ids)) == calls
    assert mean_s < 0.001, f"emit() took {mean_s * 1e6:.0f} µs per call on average"
    assert emitter.stats().emitted == calls


@pytest.mark.parametrize(
    "fields",
    [
        pytest.param({"cost": 0.25}, id="float cost"),
        pytest.param({"cost": "lots", "input_tokens": "many"}, id="a count that is not a number"),
        pytest.param({"event_id": 42}, id="event_id that is not a string"),
    ],
)
def test_an_event_that_cannot_be_encoded_is_counted_not_raised(
    make_emitter: EmitterFactory, fields: dict[str, Any]
) -> None:
    emitter = make_emitter()
    assert emitter.emit("gpt-4o-mini", **fields) is None
    stats = emitter.stats()
    assert (stats.failed, stats.emitted) == (1, 0)


def test_strict_mode_raises_on_a_float_cost(make_emitter: EmitterFactory) -> None:
    with pytest.raises(TypeError):
        make_emitter(strict=True).emit("gpt-4o-mini", cost=cast(Any, 0.25))


@pytest.mark.parametrize(
    ("fields", "reason"),
    [
        pytest.param({"input_tokens": -1}, "negative_count", id="negative input tokens"),
        pytest.param({"output_tokens": -5}, "negative_count", id="negative output tokens"),
        pytest.param({"operation": "fax"}, "unknown_operation", id="unknown operation"),
        pytest.param({"cost": "1e3"}, "invalid_cost", id="cost with an exponent"),
    ],
)
def test_strict_mode_raises_value_error_for_an_invalid_event(
    make_emitter: EmitterFactory, fields: dict[str, Any], reason: str
) -> None:
    emitter = make_emitter(strict=True)
    with pytest.raises(ValueError, match=reason):
        emitter.emit("gpt-4o-mini", **fields)
    assert emitter.stats().emitted == 0


def test_strict_mode_sends_a_valid_event(make_emitter: EmitterFactory) -> None:
    emitter = make_emitter(strict=True)
    assert emitter.emit("gpt-4o-mini", input_tokens=10, output_tokens=5, cost="0.01") is not None
    assert emitter.stats().emitted == 1


def test_non_strict_mode_sends_an_invalid_event_for_the_worker_to_dead_letter(make_emitter: EmitterFactory) -> None:
    emitter = make_emitter()
    assert emitter.emit("gpt-4o-mini", input_tokens=-1) is not None
    assert emitter.stats().emitted == 1


def test_close_returns_and_spools_undelivered_events_counting_each_once(make_emitter: EmitterFactory) -> None:
    """A timed-out delivery is not a failure: the event is spooled, and counted as spooled only."""
    emitter = make_emitter()
    for _ in range(5):
        emitter.emit("gpt-4o-mini", input_tokens=1)
    started = time.perf_counter()
    emitter.close(timeout_s=2)
    assert time.perf_counter() - started < 4.0
    stats = emitter.stats()
    assert stats.emitted == 5
    assert (stats.delivered, stats.spooled, stats.failed, stats.dropped) == (0, 5, 0, 0), stats
    emitter.close(timeout_s=2)  # a second close is a no-op


def test_the_message_key_is_the_event_id(make_emitter: EmitterFactory) -> None:
    reported: list[tuple[str, KafkaError | None]] = []
    lock = threading.Lock()

    def on_delivery(event_id: str, err: KafkaError | None) -> None:
        with lock:
            reported.append((event_id, err))

    callback: DeliveryCallback = on_delivery
    emitter = make_emitter(on_delivery=callback)
    given = str(uuid.uuid4())
    sent = {emitter.emit("gpt-4o-mini", event_id=given), emitter.emit("gpt-4o-mini"), emitter.emit("o3")}
    emitter.close(timeout_s=3)

    assert given in sent
    assert {event_id for event_id, _ in reported} == sent
    assert len(reported) == 3
    assert all(err is not None for _, err in reported), "nothing can be delivered without a broker"


WORKER_MODULES = ("clickhouse_connect", "chdb", "genai_prices", "fastapi", "typer")
PROVIDER_SDKS = ("openai", "anthropic", "google.genai", "litellm")
"""Usage extraction reads their responses by field name: a producer must not pull them in."""
HEAVY_MODULES = WORKER_MODULES + PROVIDER_SDKS


def _imported_after(statement: str) -> set[str]:
    script = f"import sys\n{statement}\nprint(' '.join(m for m in {HEAVY_MODULES!r} if m in sys.modules))"
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True, timeout=120)
    return set(result.stdout.split())


def test_importing_the_producers_imports_nothing_of_the_worker_nor_a_provider_sdk() -> None:
    assert _imported_after("import usagemeter.producers") == set()


def test_extracting_usage_imports_no_provider_sdk() -> None:
    statement = (
        "from usagemeter.producers import extract_usage\n"
        "extract_usage({'model': 'gpt-4o', 'usage': {'prompt_tokens': 3, 'completion_tokens': 1}})\n"
        "extract_usage({'modelVersion': 'gemini-2.5-flash', 'usageMetadata': {'promptTokenCount': 3}})\n"
        "extract_usage({'type': 'message', 'model': 'claude-haiku-4-5', 'usage': {'input_tokens': 3}})"
    )
    assert _imported_after(statement) == set()


def test_the_import_check_sees_a_provider_sdk() -> None:
    assert _imported_after("import google.genai.types") == {"google.genai"}


def test_the_import_check_sees_a_worker_import() -> None:
    assert "clickhouse_connect" in _imported_after("import usagemeter.consumers.sink")
