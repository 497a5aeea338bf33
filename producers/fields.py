"""The keyword arguments ``UsageEmitter.emit`` takes besides ``model``: one per event schema field."""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Mapping
from datetime import datetime
from decimal import Decimal
from typing import Any, TypedDict

from fastavro.validation import validate


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


FIELD_NAMES: frozenset[str] = frozenset(EventFields.__optional_keys__ | EventFields.__required_keys__)
"""The keyword arguments emit() takes besides ``model`` and ``client_id``."""


def unknown_field_message(given: Iterable[str]) -> str:
    """``emit() got an unknown field 'imput_tokens' (did you mean 'input_tokens'?)``, for every unknown one."""
    parts = []
    for name in sorted(set(given) - FIELD_NAMES):
        close = difflib.get_close_matches(name, FIELD_NAMES, n=1)
        parts.append(f"{name!r} (did you mean {close[0]!r}?)" if close else repr(name))
    return f"emit() got {'an unknown field' if len(parts) == 1 else 'unknown fields'} {', '.join(parts)}"


_EXPECTED = {"long": "an int (64-bit)", "int": "an int (32-bit)", "string": "a str"}


def _expected(avro_type: Any) -> str:
    if isinstance(avro_type, list):
        return " or ".join("None" if t == "null" else _expected(t) for t in avro_type)
    if isinstance(avro_type, dict):
        if avro_type.get("type") == "map":
            return f"a dict of str to {_expected(avro_type['values']).removeprefix('a ').removeprefix('an ')}"
        return _expected(avro_type.get("type"))
    return _EXPECTED.get(str(avro_type), str(avro_type))


def type_problem(schema: Mapping[str, Any], record: Mapping[str, Any]) -> str | None:
    """One line naming the first field whose value the Avro schema cannot take, and the type it wants.

    Only called after encoding failed, so it costs nothing on the hot path.
    """
    for field in schema["fields"]:
        name = field["name"]
        if name in record and not validate(record[name], field["type"], raise_errors=False):
            value = record[name]
            shown = repr(value) if len(repr(value)) <= 40 else repr(value)[:37] + "..."
            return f"{name} must be {_expected(field['type'])}, not {type(value).__name__} {shown}"
    return None
