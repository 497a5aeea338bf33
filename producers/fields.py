"""The keyword arguments ``UsageEmitter.emit`` takes besides ``model``: one per event schema field."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import TypedDict


class EventFields(TypedDict, total=False):
    """Optional event fields; the Avro schema's defaults fill what is left out.

    Token convention: ``input_tokens`` counts every input token, cached and audio ones included;
    ``output_tokens`` counts every output token, reasoning and audio included.
    """

    event_id: str
    event_time: datetime | int
    """A datetime, or UTC microseconds since the epoch; now when left out."""
    user_id: str
    request_id: str
    session_id: str
    service: str
    provider: str
    operation: str
    status: str
    error: str
    latency_ms: int
    input_tokens: int
    output_tokens: int
    cache_read_tokens: int
    cache_write_tokens: int
    cache_write_1h_tokens: int
    reasoning_tokens: int
    input_audio_tokens: int
    output_audio_tokens: int
    total_tokens: int
    requests: int
    web_searches: int
    tool_calls: int
    cost: str | Decimal | int | None
    """Caller-given cost in USD; wins over the calculated price. Floats are refused: they are not exact."""
    cost_label: str
    service_tier: str
    labels: dict[str, str]
