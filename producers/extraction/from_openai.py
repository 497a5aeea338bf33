"""OpenAI usage: chat completions (and every OpenAI-compatible body) and the Responses API.

OpenAI's convention is already ours: ``prompt_tokens`` / ``input_tokens`` include the cached and audio
input tokens, ``completion_tokens`` / ``output_tokens`` include reasoning and audio output tokens, so
the details are copied as parts, never added. The provider is left empty: the chat-completions shape is
spoken by many OpenAI-compatible APIs (DeepSeek, Groq, OpenRouter, vLLM, ...), and the pipeline
resolves the provider from the model name; pass ``provider=`` when you know better.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from usagemeter.producers.extraction.base import Extracted, count, drop_zeros, get, items, service_tier, text
from usagemeter.producers.fields import EventFields

_TOOL_CALL_ITEMS = frozenset({"function_call", "custom_tool_call"})
"""Responses API output items that are calls of the caller's own tools."""


def chat_completion(response: object) -> Extracted:
    """A ``ChatCompletion`` or its dict; also LiteLLM's OpenAI-shaped usage extras (cache writes, searches)."""
    usage = get(response, "usage")
    fields = EventFields(
        operation="chat",
        request_id=text(response, "id"),
        service_tier=service_tier(text(response, "service_tier")),
        input_tokens=count(usage, "prompt_tokens"),
        output_tokens=count(usage, "completion_tokens"),
        # DeepSeek's own field name when called directly; LiteLLM maps it to cached_tokens.
        cache_read_tokens=count(usage, "prompt_tokens_details", "cached_tokens")
        or count(usage, "prompt_cache_hit_tokens"),
        # OpenAI and LiteLLM say cache_write_tokens; older LiteLLM only cache_creation_tokens.
        cache_write_tokens=count(usage, "prompt_tokens_details", "cache_write_tokens")
        or count(usage, "prompt_tokens_details", "cache_creation_tokens"),
        cache_write_1h_tokens=count(
            usage, "prompt_tokens_details", "cache_creation_token_details", "ephemeral_1h_input_tokens"
        ),
        reasoning_tokens=count(usage, "completion_tokens_details", "reasoning_tokens"),
        input_audio_tokens=count(usage, "prompt_tokens_details", "audio_tokens"),
        output_audio_tokens=count(usage, "completion_tokens_details", "audio_tokens"),
        total_tokens=count(usage, "total_tokens"),
        web_searches=count(usage, "server_tool_use", "web_search_requests"),
        tool_calls=sum(_calls_in(get(choice, "message")) for choice in items(response, "choices")),
    )
    return Extracted(text(response, "model"), drop_zeros(fields))


def responses_api(response: object) -> Extracted:
    """A Responses API ``Response`` or its dict."""
    usage = get(response, "usage")
    output = items(response, "output")
    fields = EventFields(
        operation="responses",
        request_id=text(response, "id"),
        service_tier=service_tier(text(response, "service_tier")),
        input_tokens=count(usage, "input_tokens"),
        output_tokens=count(usage, "output_tokens"),
        cache_read_tokens=count(usage, "input_tokens_details", "cached_tokens"),
        cache_write_tokens=count(usage, "input_tokens_details", "cache_write_tokens"),
        reasoning_tokens=count(usage, "output_tokens_details", "reasoning_tokens"),
        total_tokens=count(usage, "total_tokens"),
        web_searches=_web_searches(response, output),
        tool_calls=sum(1 for item in output if text(item, "type") in _TOOL_CALL_ITEMS),
    )
    return Extracted(text(response, "model"), drop_zeros(fields))


def _calls_in(message: object) -> int:
    legacy_call = 1 if get(message, "function_call") else 0
    return len(items(message, "tool_calls")) + legacy_call


def _web_searches(response: object, output: Sequence[Any]) -> int:
    """``tool_usage.web_search.num_requests`` is the billable count; without it, the search calls made."""
    if get(response, "tool_usage") is not None:
        return count(response, "tool_usage", "web_search", "num_requests")
    return sum(1 for item in output if text(item, "type") == "web_search_call")
