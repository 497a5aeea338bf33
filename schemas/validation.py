"""What makes a usage event unacceptable, as reason codes the dead-letter topic carries.

The same rules run in three places and must agree: the producer's strict mode, the ClickHouse view that
validates every inserted row (``schemas/clickhouse``: it throws, failing the whole block), and the
worker's fallback path, which decodes a rejected block in Python to find which messages were bad.
Limits are constants here and literals in the SQL; ``tests/unit/test_validation_rules.py`` checks
that both sides reject the same corpus.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Final, Literal

RejectReason = Literal[
    "not_avro",
    "unknown_schema",
    "malformed_avro",
    "not_utf8",
    "missing_client_id",
    "missing_model",
    "negative_count",
    "absurd_count",
    "inconsistent_tokens",
    "event_time_future",
    "event_time_too_old",
    "unknown_operation",
    "unknown_status",
    "oversized_labels",
    "oversized_field",
    "invalid_cost",
    "rejected_by_engine",
]

OPERATIONS: Final = frozenset(
    {
        "chat",
        "completion",
        "responses",
        "embedding",
        "image",
        "audio",
        "moderation",
        "rerank",
        "tool",
        "other",
    }
)
STATUSES: Final = frozenset({"ok", "error", "timeout", "cancelled", "rate_limited"})
COUNT_FIELDS: Final = (
    "input_tokens",
    "output_tokens",
    "cache_read_tokens",
    "cache_write_tokens",
    "cache_write_1h_tokens",
    "reasoning_tokens",
    "input_audio_tokens",
    "output_audio_tokens",
    "total_tokens",
    "requests",
    "web_searches",
    "tool_calls",
    "latency_ms",
)
MAX_COUNT: Final = 1_000_000_000
"""No single call reports a billion tokens; a larger count is a bug upstream, not usage."""
MAX_FUTURE_US: Final = 86_400 * 1_000_000
"""Event time may run one day ahead of the worker's clock (skewed hosts), no more."""
MAX_AGE_US: Final = 1_096 * 86_400 * 1_000_000
"""Events older than three years are refused: no invoice period reaches that far back."""
MAX_LABELS: Final = 64
MAX_LABEL_KEY_BYTES: Final = 128
MAX_LABEL_VALUE_BYTES: Final = 1024
MAX_FIELD_BYTES: Final = {
    **dict.fromkeys(
        ("client_id", "user_id", "request_id", "session_id", "service", "provider", "model", "operation", "status"),
        256,
    ),
    "cost_label": 256,
    "error": 8192,
    "service_tier": 64,
}
"""Longest value of each string field, in UTF-8 bytes: an aggregate key or an error text of megabytes is
a bug upstream, and would make every table and report that holds it as large (``oversized_field``)."""
MAX_COST_USD: Final = 1_000_000
COST_PATTERN: Final = re.compile(r"[0-9]{1,7}([.][0-9]{1,18})?")
"""A caller-given cost: plain digits, at most 18 decimals (the cost columns' scale), no sign or exponent."""


@dataclass(frozen=True, slots=True)
class Rejection:
    reason: RejectReason
    message: str


def _count_problem(record: Mapping[str, Any]) -> Rejection | None:
    counts = [(name, record.get(name, 0)) for name in COUNT_FIELDS]
    for name, value in counts:
        if value < 0:
            return Rejection("negative_count", f"{name} is negative ({value})")
    for name, value in counts:
        if value > MAX_COUNT:
            return Rejection("absurd_count", f"{name} is {value}, above the limit of {MAX_COUNT}")
    return None


def _token_problem(record: Mapping[str, Any]) -> Rejection | None:
    inp, out = record.get("input_tokens", 0), record.get("output_tokens", 0)
    cached = record.get("cache_read_tokens", 0) + record.get("cache_write_tokens", 0)
    if cached > inp:
        return Rejection("inconsistent_tokens", f"cache read + write tokens ({cached}) exceed input tokens ({inp})")
    if record.get("cache_write_1h_tokens", 0) > record.get("cache_write_tokens", 0):
        return Rejection("inconsistent_tokens", "cache_write_1h_tokens exceed cache_write_tokens")
    if record.get("input_audio_tokens", 0) > inp:
        return Rejection("inconsistent_tokens", "input_audio_tokens exceed input_tokens")
    if record.get("reasoning_tokens", 0) + record.get("output_audio_tokens", 0) > out:
        return Rejection("inconsistent_tokens", "reasoning + output audio tokens exceed output_tokens")
    total = record.get("total_tokens", 0)
    if total and total < inp + out:
        return Rejection("inconsistent_tokens", f"total_tokens ({total}) < input + output ({inp + out})")
    return None


def _label_problem(labels: Mapping[str, str]) -> Rejection | None:
    if len(labels) > MAX_LABELS:
        return Rejection("oversized_labels", f"{len(labels)} labels, at most {MAX_LABELS} allowed")
    for key, value in labels.items():
        if len(key.encode()) > MAX_LABEL_KEY_BYTES or len(value.encode()) > MAX_LABEL_VALUE_BYTES:
            return Rejection(
                "oversized_labels",
                f"label {key[:40]!r}: keys up to {MAX_LABEL_KEY_BYTES} bytes, values up to {MAX_LABEL_VALUE_BYTES}",
            )
    return None


def _cost_problem(cost: str | None) -> Rejection | None:
    if cost is None:
        return None
    if not COST_PATTERN.fullmatch(cost) or Decimal(cost) > MAX_COST_USD:
        return Rejection("invalid_cost", f"cost {cost[:40]!r} is not a plain decimal number in [0, {MAX_COST_USD}]")
    return None


def _field_problem(record: Mapping[str, Any]) -> Rejection | None:
    for name, limit in MAX_FIELD_BYTES.items():
        size = len(str(record.get(name) or "").encode())
        if size > limit:
            return Rejection("oversized_field", f"{name} is {size} bytes, at most {limit} allowed")
    return None


def check_record(record: Mapping[str, Any], now_us: int) -> Rejection | None:
    """The first rule a decoded event breaks, or None when it is acceptable.

    ``now_us`` is the clock the time rules use: the worker passes its slice's reference time (kept in the
    ingest ledger) so that a retry judges an event exactly as the first attempt did.
    """
    problem = _field_problem(record)
    if problem:
        return problem
    if not record["client_id"]:
        return Rejection("missing_client_id", "client_id is empty")
    if not record["model"]:
        return Rejection("missing_model", "model is empty")
    problem = _count_problem(record) or _token_problem(record)
    if problem:
        return problem
    event_us = record["event_time"]
    if event_us > now_us + MAX_FUTURE_US:
        return Rejection("event_time_future", "event_time is more than one day in the future")
    if event_us < now_us - MAX_AGE_US:
        return Rejection("event_time_too_old", "event_time is more than three years in the past")
    if record.get("operation", "chat") not in OPERATIONS:
        return Rejection(
            "unknown_operation", f"operation {record['operation'][:40]!r} is not one of {sorted(OPERATIONS)}"
        )
    if record.get("status", "ok") not in STATUSES:
        return Rejection("unknown_status", f"status {record['status'][:40]!r} is not one of {sorted(STATUSES)}")
    return _label_problem(record.get("labels", {})) or _cost_problem(record.get("cost"))
