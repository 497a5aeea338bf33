"""OpenAI responses, built with the openai SDK's own types (no network), read into event fields.

OpenAI's cached, audio and reasoning tokens are parts of prompt/completion (input/output) tokens: they
must come out as parts, never added on top.
"""

from __future__ import annotations

from typing import Any

import pytest
from openai.types import CompletionUsage
from openai.types.chat import (
    ChatCompletion,
    ChatCompletionMessage,
    ChatCompletionMessageFunctionToolCall,
    ChatCompletionMessageToolCallUnion,
)
from openai.types.chat.chat_completion import Choice
from openai.types.chat.chat_completion_message_function_tool_call import Function
from openai.types.completion_usage import CompletionTokensDetails, PromptTokensDetails
from openai.types.responses import Response

from usagemeter.producers import EventFields
from usagemeter.producers.extraction import extract_usage
from usagemeter.schemas.errors import ExtractionError

LOOKUP = Function(name="lookup", arguments="{}")


def chat(usage: CompletionUsage | None, *, tool_calls: int = 0, service_tier: Any = None) -> ChatCompletion:
    calls: list[ChatCompletionMessageToolCallUnion] = [
        ChatCompletionMessageFunctionToolCall(id=f"call_{i}", type="function", function=LOOKUP)
        for i in range(tool_calls)
    ]
    message = ChatCompletionMessage(role="assistant", content="hi", tool_calls=calls or None)
    return ChatCompletion(
        id="chatcmpl-1",
        created=1_700_000_000,
        model="gpt-4o-2024-08-06",
        object="chat.completion",
        choices=[Choice(index=0, finish_reason="stop", message=message)],
        usage=usage,
        service_tier=service_tier,
    )


CHAT_CASES = [
    pytest.param(
        CompletionUsage(prompt_tokens=1200, completion_tokens=300, total_tokens=1500),
        {},
        {"input_tokens": 1200, "output_tokens": 300, "total_tokens": 1500},
        id="no details at all",
    ),
    pytest.param(
        CompletionUsage(
            prompt_tokens=1200,
            completion_tokens=300,
            total_tokens=1500,
            prompt_tokens_details=PromptTokensDetails(cached_tokens=1024, audio_tokens=None),
            completion_tokens_details=CompletionTokensDetails(reasoning_tokens=None, audio_tokens=None),
        ),
        {},
        {"input_tokens": 1200, "output_tokens": 300, "total_tokens": 1500, "cache_read_tokens": 1024},
        id="cached tokens are part of prompt tokens, None details are zero",
    ),
    pytest.param(
        CompletionUsage(
            prompt_tokens=5000,
            completion_tokens=900,
            total_tokens=5900,
            prompt_tokens_details=PromptTokensDetails(cached_tokens=0, cache_write_tokens=4096),
            completion_tokens_details=CompletionTokensDetails(reasoning_tokens=640),
        ),
        {},
        {
            "input_tokens": 5000,
            "output_tokens": 900,
            "total_tokens": 5900,
            "cache_write_tokens": 4096,
            "reasoning_tokens": 640,
        },
        id="cache writes and reasoning (o-series)",
    ),
    pytest.param(
        CompletionUsage(
            prompt_tokens=800,
            completion_tokens=400,
            total_tokens=1200,
            prompt_tokens_details=PromptTokensDetails(audio_tokens=500, cached_tokens=128),
            completion_tokens_details=CompletionTokensDetails(audio_tokens=350),
        ),
        {},
        {
            "input_tokens": 800,
            "output_tokens": 400,
            "total_tokens": 1200,
            "cache_read_tokens": 128,
            "input_audio_tokens": 500,
            "output_audio_tokens": 350,
        },
        id="audio in and out (gpt-4o-audio)",
    ),
    pytest.param(
        CompletionUsage(prompt_tokens=90, completion_tokens=30, total_tokens=120),
        {"tool_calls": 2, "service_tier": "flex"},
        {"input_tokens": 90, "output_tokens": 30, "total_tokens": 120, "tool_calls": 2, "service_tier": "flex"},
        id="tool calls counted, flex tier kept",
    ),
    pytest.param(
        CompletionUsage(prompt_tokens=90, completion_tokens=30, total_tokens=120),
        {"service_tier": "default"},
        {"input_tokens": 90, "output_tokens": 30, "total_tokens": 120},
        id="default tier is the standard price",
    ),
]


@pytest.mark.parametrize(("usage", "options", "expected"), CHAT_CASES)
def test_chat_completion(usage: CompletionUsage, options: dict[str, Any], expected: EventFields) -> None:
    response = chat(usage, **options)
    extracted = extract_usage(response)
    assert extracted.model == "gpt-4o-2024-08-06"
    assert extracted.fields == {"operation": "chat", "request_id": "chatcmpl-1", **expected}
    assert extract_usage(response.model_dump()) == extracted, "the dict form reads the same"
    assert extract_usage(response.model_dump(exclude_none=True)) == extracted


def test_deepseek_cache_hits_through_the_openai_sdk() -> None:
    usage = CompletionUsage.model_validate(
        {"prompt_tokens": 1000, "completion_tokens": 10, "total_tokens": 1010, "prompt_cache_hit_tokens": 700}
    )
    assert extract_usage(chat(usage)).fields["cache_read_tokens"] == 700


def test_a_streamed_chunk_without_usage_is_refused_with_the_fix() -> None:
    with pytest.raises(ExtractionError, match="include_usage"):
        extract_usage(chat(None))


def test_a_count_that_is_not_an_integer_is_refused() -> None:
    body = chat(CompletionUsage(prompt_tokens=1, completion_tokens=1, total_tokens=2)).model_dump()
    body["usage"]["prompt_tokens_details"] = {"cached_tokens": "12"}
    with pytest.raises(ExtractionError, match=r"prompt_tokens_details\.cached_tokens is '12'"):
        extract_usage(body)


def responses_api(usage: dict[str, Any] | None, output: list[dict[str, Any]], **extra: Any) -> Response:
    return Response.model_validate(
        {
            "id": "resp_1",
            "created_at": 1_700_000_000,
            "model": "o4-mini-2025-04-16",
            "object": "response",
            "output": output,
            "parallel_tool_calls": True,
            "tool_choice": "auto",
            "tools": [],
            "usage": usage,
            **extra,
        }
    )


def response_usage(inp: int, out: int, *, cached: int = 0, written: int = 0, reasoning: int = 0) -> dict[str, Any]:
    return {
        "input_tokens": inp,
        "input_tokens_details": {"cached_tokens": cached, "cache_write_tokens": written},
        "output_tokens": out,
        "output_tokens_details": {"reasoning_tokens": reasoning},
        "total_tokens": inp + out,
    }


SEARCH = {"type": "web_search_call", "id": "ws_1", "status": "completed", "action": {"type": "search", "query": "q"}}
CALL = {"type": "function_call", "id": "fc_1", "call_id": "c1", "name": "lookup", "arguments": "{}"}
MESSAGE = {
    "type": "message",
    "id": "msg_1",
    "role": "assistant",
    "status": "completed",
    "content": [{"type": "output_text", "text": "hi", "annotations": []}],
}
NO_IMAGES = {
    "input_tokens": 0,
    "input_tokens_details": {"image_tokens": 0, "text_tokens": 0},
    "output_tokens": 0,
    "total_tokens": 0,
}

RESPONSES_CASES = [
    pytest.param(
        response_usage(2000, 500, cached=1536, reasoning=384),
        [MESSAGE],
        {},
        {"input_tokens": 2000, "output_tokens": 500, "cache_read_tokens": 1536, "reasoning_tokens": 384},
        id="cached and reasoning are parts",
    ),
    pytest.param(
        response_usage(3000, 100, written=2048),
        [MESSAGE],
        {"service_tier": "priority"},
        {"input_tokens": 3000, "output_tokens": 100, "cache_write_tokens": 2048, "service_tier": "priority"},
        id="cache writes, priority tier",
    ),
    pytest.param(
        response_usage(400, 80),
        [SEARCH, SEARCH, CALL, MESSAGE],
        {},
        {"input_tokens": 400, "output_tokens": 80, "web_searches": 2, "tool_calls": 1},
        id="web search calls counted from the output when tool_usage is absent",
    ),
    pytest.param(
        response_usage(400, 80),
        [SEARCH, SEARCH, MESSAGE],
        {"tool_usage": {"web_search": {"num_requests": 1}, "image_gen": NO_IMAGES}},
        {"input_tokens": 400, "output_tokens": 80, "web_searches": 1},
        id="tool_usage's billable search count wins over the calls",
    ),
]


@pytest.mark.parametrize(("usage", "output", "extra", "expected"), RESPONSES_CASES)
def test_responses_api(
    usage: dict[str, Any], output: list[dict[str, Any]], extra: dict[str, Any], expected: dict[str, Any]
) -> None:
    response = responses_api(usage, output, **extra)
    extracted = extract_usage(response)
    total = {"total_tokens": expected["input_tokens"] + expected["output_tokens"]}
    assert extracted.model == "o4-mini-2025-04-16"
    assert extracted.fields == {"operation": "responses", "request_id": "resp_1", **total, **expected}
    assert extract_usage(response.model_dump()) == extracted
