"""Provider SDK responses → ``emit_response`` / a session → the real broker → the real worker → ClickHouse:
each event's stored tokens are the provider's usage in our convention, and a session's caller-priced
tool line is stored with the caller's cost."""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from anthropic.types import Message
from clickhouse_connect.driver.client import Client
from google.genai.types import GenerateContentResponse
from openai.types.chat import ChatCompletion
from openai.types.responses import Response

from tests.fixtures.workers import run_until
from usagemeter.consumers.pipeline import build_worker
from usagemeter.consumers.settings import KafkaSettings, WorkerSettings
from usagemeter.pricing import pricebook
from usagemeter.producers import UsageEmitter

pytestmark = [pytest.mark.kafka, pytest.mark.clickhouse]

COLUMNS = (
    "provider_raw",
    "model_raw",
    "input_tokens",
    "output_tokens",
    "cache_read_tokens",
    "cache_write_tokens",
    "cache_write_1h_tokens",
    "reasoning_tokens",
    "web_searches",
    "tool_calls",
)

SEARCH = {"type": "search", "query": "usagemeter"}

RESPONSES: list[tuple[object, tuple[Any, ...]]] = [
    (
        ChatCompletion.model_validate(
            {
                "id": "chatcmpl-1",
                "created": 0,
                "model": "gpt-4o-mini",
                "object": "chat.completion",
                "choices": [],
                "usage": {
                    "prompt_tokens": 2000,
                    "completion_tokens": 700,
                    "total_tokens": 2700,
                    "prompt_tokens_details": {"cached_tokens": 1536},
                    "completion_tokens_details": {"reasoning_tokens": 0},
                },
            }
        ),
        ("", "gpt-4o-mini", 2000, 700, 1536, 0, 0, 0, 0, 0),
    ),
    (
        Response.model_validate(
            {
                "id": "resp_1",
                "created_at": 0,
                "model": "o4-mini",
                "object": "response",
                "output": [{"type": "web_search_call", "id": "ws_1", "status": "completed", "action": SEARCH}],
                "parallel_tool_calls": True,
                "tool_choice": "auto",
                "tools": [],
                "usage": {
                    "input_tokens": 900,
                    "input_tokens_details": {"cached_tokens": 0, "cache_write_tokens": 0},
                    "output_tokens": 1200,
                    "output_tokens_details": {"reasoning_tokens": 1000},
                    "total_tokens": 2100,
                },
            }
        ),
        ("", "o4-mini", 900, 1200, 0, 0, 0, 1000, 1, 0),
    ),
    (
        Message.model_validate(
            {
                "id": "msg_1",
                "type": "message",
                "role": "assistant",
                "model": "claude-sonnet-4-5",
                "content": [{"type": "tool_use", "id": "toolu_1", "name": "lookup", "input": {}}],
                "usage": {
                    "input_tokens": 20,
                    "output_tokens": 100,
                    "cache_read_input_tokens": 3000,
                    "cache_creation_input_tokens": 1500,
                    "cache_creation": {"ephemeral_5m_input_tokens": 500, "ephemeral_1h_input_tokens": 1000},
                    "server_tool_use": {"web_search_requests": 2, "web_fetch_requests": 0},
                },
            }
        ),
        ("anthropic", "claude-sonnet-4-5", 4520, 100, 3000, 1500, 1000, 0, 2, 1),
    ),
    (
        GenerateContentResponse.model_validate(
            {
                "model_version": "gemini-2.5-flash",
                "usage_metadata": {
                    "prompt_token_count": 40_000,
                    "cached_content_token_count": 32_000,
                    "candidates_token_count": 200,
                    "thoughts_token_count": 800,
                    "total_token_count": 41_000,
                },
            }
        ),
        ("google", "gemini-2.5-flash", 40_000, 1000, 32_000, 0, 0, 800, 0, 0),
    ),
]


def test_extracted_usage_arrives_in_clickhouse_as_extracted(
    clickhouse: Client, kafka_broker: Any, kafka_topic: Callable[..., str], tmp_path: Path
) -> None:
    topic, dlq_topic = kafka_topic(partitions=2), kafka_topic(partitions=1)
    pricebook.load(clickhouse)
    expected: dict[str, tuple[Any, ...]] = {}
    with UsageEmitter(
        kafka_broker.bootstrap_servers, topic=topic, client_id="acme", strict=True, spool_dir=tmp_path / "spool"
    ) as meter:
        for response, row in RESPONSES:
            event_id = meter.emit_response(response, user_id="alice")
            assert event_id is not None
            expected[event_id] = row
        with meter.session(model="gpt-4o", provider="openai", user_id="alice") as session:
            session.usage(150, "prompt")
            session.usage(250, "completion")
            session.usage(50, "function_call", cost="0.04", label="DALL-E 3 Image")
        expected[session.event_id] = ("openai", "gpt-4o", 150, 250, 0, 0, 0, 0, 0, 0)
        assert meter.flush(30) == 0
        assert meter.stats().failed == 0

    total = len(expected) + 1  # the session's priced image is an event of its own
    worker = build_worker(
        KafkaSettings(
            bootstrap_servers=kafka_broker.bootstrap_servers, topic=topic, dlq_topic=dlq_topic, group_id=f"g-{topic}"
        ),
        WorkerSettings(max_batch_rows=100, max_batch_wait_s=0.2),
        clickhouse,
    )
    run_until(worker, lambda: worker.totals["inserted"] + worker.totals["dead_lettered"] >= total, 120, join_s=60)
    assert (worker.totals["inserted"], worker.totals["dead_lettered"]) == (total, 0)

    rows = clickhouse.query(
        f"SELECT toString(event_id), {', '.join(COLUMNS)} FROM usage_events WHERE user_id = 'alice'"
    ).result_rows
    stored = {row[0]: tuple(row[1:]) for row in rows}
    assert {event_id: stored[event_id] for event_id in expected} == expected

    (tool,) = clickhouse.query(
        "SELECT model_raw, operation, tool_calls, cost_source, cost_total, cost_label, labels['session_event_id'] "
        "FROM usage_events WHERE operation = 'tool'"
    ).result_rows
    assert tool == ("DALL-E 3 Image", "tool", 1, "caller", Decimal("0.04"), "DALL-E 3 Image", session.event_id)
