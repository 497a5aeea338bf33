"""The usage event as a typed pydantic model: the edge representation for callers, APIs and docs.

The hot paths (``UsageEmitter.emit`` and the worker) never build this model; they handle plain
records. ``UsageEvent.to_record`` gives the plain record in the current Avro schema's shape.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, NonNegativeInt, field_validator, model_validator

from usagemeter.schemas.clock import SYSTEM_CLOCK, utc_datetime
from usagemeter.schemas.validation import check_record

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
Operation = Literal[
    "chat", "completion", "responses", "embedding", "image", "audio", "moderation", "rerank", "tool", "other"
]
Status = Literal["ok", "error", "timeout", "cancelled", "rate_limited"]


class UsageEvent(BaseModel):
    """One metered call. Token fields follow one convention: ``input_tokens`` counts every input token,
    cached and audio ones included; ``output_tokens`` counts every output token, reasoning included."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    event_id: uuid.UUID = Field(default_factory=uuid.uuid4)
    event_time: datetime = Field(default_factory=lambda: utc_datetime(SYSTEM_CLOCK.now_us()))
    client_id: str = Field(min_length=1)
    user_id: str = ""
    request_id: str = ""
    session_id: str = ""
    service: str = ""
    provider: str = ""
    model: str = Field(min_length=1)
    operation: Operation = "chat"
    status: Status = "ok"
    error: str = ""
    latency_ms: NonNegativeInt = 0
    input_tokens: NonNegativeInt = 0
    output_tokens: NonNegativeInt = 0
    cache_read_tokens: NonNegativeInt = 0
    cache_write_tokens: NonNegativeInt = 0
    cache_write_1h_tokens: NonNegativeInt = 0
    reasoning_tokens: NonNegativeInt = 0
    input_audio_tokens: NonNegativeInt = 0
    output_audio_tokens: NonNegativeInt = 0
    total_tokens: NonNegativeInt = 0
    requests: NonNegativeInt = 1
    web_searches: NonNegativeInt = 0
    tool_calls: NonNegativeInt = 0
    cost: Decimal | None = None
    cost_label: str = ""
    service_tier: str = ""
    labels: dict[str, str] = Field(default_factory=dict)

    @field_validator("event_time")
    @classmethod
    def _aware(cls, value: datetime) -> datetime:
        return value if value.tzinfo else value.replace(tzinfo=UTC)

    @model_validator(mode="after")
    def _rules(self) -> UsageEvent:
        problem = check_record(self.to_record(), SYSTEM_CLOCK.now_us())
        if problem:
            raise ValueError(f"{problem.reason}: {problem.message}")
        return self

    def to_record(self) -> dict[str, Any]:
        record = self.model_dump()
        record["event_id"] = str(self.event_id)
        record["event_time"] = (self.event_time - _EPOCH) // timedelta(microseconds=1)
        record["cost"] = None if self.cost is None else format(self.cost, "f")
        return record
