"""Anthropic messages, built with the anthropic SDK's own types (no network), read into event fields.

Anthropic's input_tokens exclude cache reads and cache writes: ours is the sum of the three.
"""

from __future__ import annotations

from typing import Any

import pytest
from anthropic.types import CacheCreation, Message, ServerToolUsage, TextBlock, ToolUseBlock, Usage
from anthropic.types.output_tokens_details import OutputTokensDetails

from usagemeter.producers.extraction import extract_usage


def message(usage: Usage, *, tool_uses: int = 0) -> Message:
    content: list[Any] = [TextBlock(type="text", text="hi")]
    content += [ToolUseBlock(type="tool_use", id=f"toolu_{i}", name="lookup", input={}) for i in range(tool_uses)]
    return Message(
        id="msg_1",
        type="message",
        role="assistant",
        model="claude-sonnet-4-5-20250929",
        content=content,
        stop_reason="end_turn",
        stop_sequence=None,
        usage=usage,
    )


CASES = [
    pytest.param(
        Usage(input_tokens=1200, output_tokens=300),
        {},
        {"input_tokens": 1200, "output_tokens": 300},
        id="no cache fields (older responses, None)",
    ),
    pytest.param(
        Usage(input_tokens=50, output_tokens=300, cache_read_input_tokens=10_000, cache_creation_input_tokens=0),
        {},
        {"input_tokens": 10_050, "output_tokens": 300, "cache_read_tokens": 10_000},
        id="cache reads are added to input",
    ),
    pytest.param(
        Usage(
            input_tokens=20,
            output_tokens=100,
            cache_read_input_tokens=3000,
            cache_creation_input_tokens=1500,
            cache_creation=CacheCreation(ephemeral_5m_input_tokens=500, ephemeral_1h_input_tokens=1000),
        ),
        {},
        {
            "input_tokens": 4520,
            "output_tokens": 100,
            "cache_read_tokens": 3000,
            "cache_write_tokens": 1500,
            "cache_write_1h_tokens": 1000,
        },
        id="cache writes split by TTL",
    ),
    pytest.param(
        Usage(input_tokens=20, output_tokens=100, cache_creation_input_tokens=1500, cache_creation=None),
        {},
        {"input_tokens": 1520, "output_tokens": 100, "cache_write_tokens": 1500},
        id="writes without the TTL split are 5-minute writes",
    ),
    pytest.param(
        Usage(
            input_tokens=400,
            output_tokens=2000,
            output_tokens_details=OutputTokensDetails(thinking_tokens=1500),
            server_tool_use=ServerToolUsage(web_search_requests=3, web_fetch_requests=1),
            service_tier="batch",
        ),
        {"tool_uses": 2},
        {
            "input_tokens": 400,
            "output_tokens": 2000,
            "reasoning_tokens": 1500,
            "web_searches": 3,
            "tool_calls": 2,
            "service_tier": "batch",
        },
        id="thinking, web searches, tool uses, batch tier",
    ),
    pytest.param(
        Usage(input_tokens=400, output_tokens=20, service_tier="standard"),
        {},
        {"input_tokens": 400, "output_tokens": 20},
        id="standard tier is the standard price",
    ),
]


@pytest.mark.parametrize(("usage", "options", "expected"), CASES)
def test_message(usage: Usage, options: dict[str, Any], expected: dict[str, Any]) -> None:
    response = message(usage, **options)
    extracted = extract_usage(response)
    assert extracted.model == "claude-sonnet-4-5-20250929"
    assert extracted.fields == {"provider": "anthropic", "operation": "chat", "request_id": "msg_1", **expected}
    assert extract_usage(response.model_dump()) == extracted, "the dict form reads the same"
    assert extract_usage(response.model_dump(exclude_none=True)) == extracted


def test_a_bare_anthropic_body_is_recognised_by_its_cache_fields() -> None:
    body = {
        "model": "claude-3-5-haiku-latest",
        "usage": {"input_tokens": 5, "output_tokens": 1, "cache_read_input_tokens": 100},
    }
    assert extract_usage(body).fields["input_tokens"] == 105
