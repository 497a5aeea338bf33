"""LiteLLM responses: OpenAI-shaped usage whatever the provider, plus the provider LiteLLM routed to.

litellm itself is not a test dependency (336 MB, about a minute to install, pins openai<3, fetches a
price map at import). The usage bodies below are what litellm 1.106.2's own code produced
(``AnthropicConfig().calculate_usage``, ``VertexGeminiConfig.calculate_usage``, ``litellm.Usage``)
from the provider payloads named in each case, copied verbatim; ``ModelResponse`` here mirrors
litellm's: an OpenAI-SDK model with a private ``_hidden_params`` dict.
"""

from __future__ import annotations

from typing import Any

import pytest
from openai.types.chat import ChatCompletion
from pydantic import PrivateAttr

from usagemeter.producers.extraction import extract_usage


class ModelResponse(ChatCompletion):
    _hidden_params: dict[str, Any] = PrivateAttr(default_factory=dict)


# Anthropic payload: input 20, output 100, cache read 3000, cache creation 1500 (1h: 1000), 2 searches.
ANTHROPIC_USAGE = {
    "completion_tokens": 100,
    "prompt_tokens": 4520,
    "total_tokens": 4620,
    "completion_tokens_details": {
        "accepted_prediction_tokens": None,
        "audio_tokens": None,
        "reasoning_tokens": 0,
        "rejected_prediction_tokens": None,
        "text_tokens": 100,
        "image_tokens": None,
        "video_tokens": None,
    },
    "prompt_tokens_details": {
        "audio_tokens": None,
        "cache_write_tokens": 1500,
        "cached_tokens": 3000,
        "text_tokens": 20,
        "image_tokens": None,
        "video_tokens": None,
        "cache_creation_tokens": 1500,
        "cache_creation_token_details": {"ephemeral_5m_input_tokens": 500, "ephemeral_1h_input_tokens": 1000},
    },
    "server_tool_use": {"web_search_requests": 2, "tool_search_requests": None, "browser_open_requests": None},
    "cache_creation_input_tokens": 1500,
    "cache_read_input_tokens": 3000,
    "iterations": None,
    "inference_geo": None,
    "speed": None,
    "service_tier": None,
}
# Gemini payload: prompt 40000 (cached 32000, audio 450), candidates 200, thoughts 800, total 41000.
GEMINI_USAGE = {
    "completion_tokens": 1000,
    "prompt_tokens": 40000,
    "total_tokens": 41000,
    "completion_tokens_details": {
        "accepted_prediction_tokens": None,
        "audio_tokens": None,
        "reasoning_tokens": 800,
        "rejected_prediction_tokens": None,
        "text_tokens": 200,
        "image_tokens": None,
        "video_tokens": None,
    },
    "prompt_tokens_details": {
        "audio_tokens": 450,
        "cached_tokens": 32000,
        "text_tokens": 7550,
        "image_tokens": None,
        "video_tokens": None,
    },
    "cache_read_input_tokens": 32000,
}
# OpenAI payload: prompt 1200 (cached 1024, audio 100), completion 900 (reasoning 640, audio 50).
OPENAI_USAGE = {
    "completion_tokens": 900,
    "prompt_tokens": 1200,
    "total_tokens": 2100,
    "completion_tokens_details": {
        "accepted_prediction_tokens": None,
        "audio_tokens": 50,
        "reasoning_tokens": 640,
        "rejected_prediction_tokens": None,
        "text_tokens": None,
        "image_tokens": None,
        "video_tokens": None,
    },
    "prompt_tokens_details": {
        "audio_tokens": 100,
        "cached_tokens": 1024,
        "text_tokens": None,
        "image_tokens": None,
        "video_tokens": None,
    },
}

CASES = [
    pytest.param(
        "claude-sonnet-4-5-20250929",
        "anthropic",
        ANTHROPIC_USAGE,
        {
            "provider": "anthropic",
            "input_tokens": 4520,
            "output_tokens": 100,
            "total_tokens": 4620,
            "cache_read_tokens": 3000,
            "cache_write_tokens": 1500,
            "cache_write_1h_tokens": 1000,
            "web_searches": 2,
        },
        id="anthropic: the cache is counted once, though Anthropic's names sit beside prompt_tokens",
    ),
    pytest.param(
        "gemini-2.5-flash",
        "gemini",
        GEMINI_USAGE,
        {
            "provider": "google",
            "input_tokens": 40_000,
            "output_tokens": 1000,
            "total_tokens": 41_000,
            "cache_read_tokens": 32_000,
            "reasoning_tokens": 800,
            "input_audio_tokens": 450,
        },
        id="gemini: litellm's 'gemini' is genai-prices' 'google'",
    ),
    pytest.param(
        "gpt-4o-mini-2024-07-18",
        "openai",
        OPENAI_USAGE,
        {
            "provider": "openai",
            "input_tokens": 1200,
            "output_tokens": 900,
            "total_tokens": 2100,
            "cache_read_tokens": 1024,
            "reasoning_tokens": 640,
            "input_audio_tokens": 100,
            "output_audio_tokens": 50,
        },
        id="openai",
    ),
]


def body(model: str, usage: dict[str, Any]) -> dict[str, Any]:
    message = {"content": "hi", "role": "assistant", "tool_calls": None, "function_call": None}
    return {
        "id": "chatcmpl-9f81",
        "created": 1_700_000_000,
        "model": model,
        "object": "chat.completion",
        "system_fingerprint": None,
        "choices": [{"finish_reason": "stop", "index": 0, "message": message}],
        "usage": usage,
    }


@pytest.mark.parametrize(("model", "routed_to", "usage", "expected"), CASES)
def test_model_response(model: str, routed_to: str, usage: dict[str, Any], expected: dict[str, Any]) -> None:
    response = ModelResponse.model_validate(body(model, usage))
    response._hidden_params = {"custom_llm_provider": routed_to, "model": model}
    extracted = extract_usage(response)
    assert extracted.model == model
    assert extracted.fields == {"operation": "chat", "request_id": "chatcmpl-9f81", **expected}


@pytest.mark.parametrize(("model", "routed_to", "usage", "expected"), CASES)
def test_the_dict_form_reads_the_same_but_cannot_name_the_provider(
    model: str, routed_to: str, usage: dict[str, Any], expected: dict[str, Any]
) -> None:
    without_provider = {name: value for name, value in expected.items() if name != "provider"}
    extracted = extract_usage(body(model, usage))
    assert extracted.fields == {"operation": "chat", "request_id": "chatcmpl-9f81", **without_provider}
