"""Anthropic Messages usage, normalised to our convention.

Anthropic's ``input_tokens`` EXCLUDES ``cache_read_input_tokens`` and ``cache_creation_input_tokens``,
so our ``input_tokens`` is the sum of the three (the classic double-count is adding them on top of
OpenAI-style inclusive counts; the classic undercount is ignoring them). ``cache_creation`` splits the
writes by TTL; without it every write is taken as the default 5-minute one. ``output_tokens`` already
includes thinking tokens (``output_tokens_details.thinking_tokens`` is a part of it).
"""

from __future__ import annotations

from usagemeter.producers.extraction.base import Extracted, count, drop_zeros, get, items, service_tier, text
from usagemeter.producers.fields import EventFields


def message(response: object) -> Extracted:
    """A ``Message`` (``client.messages.create``) or its dict."""
    usage = get(response, "usage")
    cache_read = count(usage, "cache_read_input_tokens")
    cache_write = count(usage, "cache_creation_input_tokens")
    output_tokens = count(usage, "output_tokens")
    fields = EventFields(
        provider="anthropic",
        operation="chat",
        request_id=text(response, "id"),
        service_tier=service_tier(text(usage, "service_tier")),
        input_tokens=count(usage, "input_tokens") + cache_read + cache_write,
        output_tokens=output_tokens,
        cache_read_tokens=cache_read,
        cache_write_tokens=cache_write,
        cache_write_1h_tokens=count(usage, "cache_creation", "ephemeral_1h_input_tokens"),
        reasoning_tokens=count(usage, "output_tokens_details", "thinking_tokens"),
        total_tokens=0,  # Anthropic reports none; a computed one would check nothing
        web_searches=count(usage, "server_tool_use", "web_search_requests"),
        tool_calls=sum(1 for block in items(response, "content") if text(block, "type") == "tool_use"),
    )
    return Extracted(text(response, "model"), drop_zeros(fields))
