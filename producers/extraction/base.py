"""Reading provider responses without importing provider SDKs: duck-typed field access and the result.

Every SDK here returns pydantic objects whose attributes carry the JSON field names, and callers also
hold the plain JSON (``response.model_dump()``, a proxy's body, a log line). ``get`` reads both, and
falls back to the camelCase key because Gemini's REST JSON spells ``usageMetadata.promptTokenCount``
where its SDK says ``usage_metadata.prompt_token_count``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, cast

from usagemeter.producers.fields import EventFields
from usagemeter.schemas.errors import ExtractionError


@dataclass(frozen=True, slots=True)
class Extracted:
    """A response's usage in the event contract: ``UsageEmitter.emit(model, **fields)`` takes it as is."""

    model: str
    """The model the response names; empty when it names none (pass ``model=`` then)."""
    fields: EventFields


def get(obj: object, name: str) -> Any:
    """``obj.name`` or ``obj[name]`` (or its camelCase key); None when absent."""
    if isinstance(obj, Mapping):
        value = obj.get(name)
        if value is None and "_" in name:
            head, *rest = name.split("_")
            value = obj.get(head + "".join(part.title() for part in rest))
        return value
    return getattr(obj, name, None)


def count(obj: object, *path: str) -> int:
    """The non-negative integer at ``path`` below ``obj``; 0 when any step is missing or None."""
    value: Any = obj
    for name in path:
        value = get(value, name)
        if value is None:
            return 0
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ExtractionError(f"usage field {'.'.join(path)} is {value!r}, not a token count")
    return value


def items(obj: object, name: str) -> Sequence[Any]:
    """The list at ``obj.name``; empty when absent or None."""
    value = get(obj, name)
    if value is None:
        return ()
    if isinstance(value, str | bytes) or not isinstance(value, Sequence):
        raise ExtractionError(f"response field {name} is a {type(value).__name__}, not a list")
    return value


def text(obj: object, name: str) -> str:
    """The string at ``obj.name`` (enum members give their value); empty when absent."""
    value = get(obj, name)
    value = getattr(value, "value", value)
    return value if isinstance(value, str) else ""


_STANDARD_TIERS = frozenset({"", "default", "auto", "standard", "on_demand"})


def service_tier(value: str) -> str:
    """The event's ``service_tier``: empty for the standard price, else the provider's tier name."""
    tier = value.lower()
    return "" if tier in _STANDARD_TIERS else tier


def drop_zeros(fields: EventFields) -> EventFields:
    """Leaves out zero counts and empty strings: the schema's defaults are the same, and events read shorter."""
    return cast(EventFields, {name: value for name, value in fields.items() if value not in (0, "")})
