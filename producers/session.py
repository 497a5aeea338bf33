"""``UsageSession``: ``usage(tokens, kind, cost=None, label=None)`` lines, one per call, adding up to one event.

Where each kind goes:

=========================  =====================================================================
``prompt`` / ``input``     ``input_tokens``
``completion`` / ``output`` ``output_tokens``
``total``                  ``total_tokens``: a check (the pipeline refuses a total below input +
                           output), never split into input and output
``function_call``,         one ``tool_calls`` each; the tokens go to a label (``function_call_tokens``,
``tool_usage``             ``tool_usage_tokens``), not to input/output: providers already count the
                           model's function-calling tokens in its prompt/completion tokens, and an
                           external tool's units are not this model's tokens
=========================  =====================================================================

A caller-given cost replaces the calculated price of the whole event it is on, so:

- costs on token lines add up to the session event's ``cost`` (labels joined into ``cost_label``); if
  some token lines carry a cost and others with tokens do not (and no ``total`` line carries one), that
  cost would leave tokens unpriced: it is dropped and the event is priced by the pipeline;
- a ``function_call``/``tool_usage`` line WITH a cost is sent as its own event at the session's end
  (``operation="tool"``, model = its label, or its kind), so pricing a DALL-E image does not make the
  chat tokens beside it free. It carries the session's ids and the label ``session_event_id``.

Costs are strings, ints or Decimals; floats are taken as written (``0.04`` is ``Decimal("0.04")``),
as callers write them. Bad input (an unknown kind, a negative or non-numeric count or cost, a usage
after the end) is refused like an invalid event: raised with ``strict=True``, else counted in
``stats().failed`` and logged, and the rest of the session is still sent. A session never raises into
the caller by default, and an exception from the ``with`` block is never replaced by one from metering.
"""

from __future__ import annotations

import logging
import threading
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from types import TracebackType
from typing import Any, Final, Protocol, Unpack, cast

from usagemeter.producers.extraction import extract_usage
from usagemeter.producers.fields import EventFields
from usagemeter.schemas.clock import SYSTEM_CLOCK, Clock, utc_datetime
from usagemeter.schemas.errors import SessionError
from usagemeter.schemas.validation import COUNT_FIELDS

log = logging.getLogger(__name__)


class Emitter(Protocol):
    """What a session sends through: ``UsageEmitter``."""

    def emit(self, model: str, *, client_id: str = "", **fields: Unpack[EventFields]) -> str | None: ...


FailCallback = Callable[[Exception, str], None]
"""Raises in strict mode, else counts and logs: ``UsageEmitter._fail``."""

_TOKEN_FIELDS: Final = {
    "prompt": "input_tokens",
    "input": "input_tokens",
    "completion": "output_tokens",
    "output": "output_tokens",
    "total": "total_tokens",
}
_TOOL_KINDS: Final = frozenset({"function_call", "tool_usage"})
KINDS: Final = (*_TOKEN_FIELDS, *sorted(_TOOL_KINDS))
_SUMMED: Final = tuple(name for name in COUNT_FIELDS if name not in ("requests", "latency_ms"))


@dataclass(frozen=True, slots=True)
class _Line:
    kind: str
    tokens: int
    cost: Decimal | None
    label: str


class UsageSession:
    """Usage lines of one unit of work (a request, an agent step), sent as one event when it ends."""

    def __init__(
        self,
        emitter: Emitter,
        model: str,
        *,
        client_id: str,
        fields: EventFields,
        fail: FailCallback,
        clock: Clock = SYSTEM_CLOCK,
    ) -> None:
        self._emitter = emitter
        self._model = model
        self._client_id = client_id
        self._fields: dict[str, Any] = dict(fields)
        self._fail = fail
        self._clock = clock
        self._started = clock.monotonic()
        self._fields.setdefault("event_id", str(uuid.uuid4()))
        self._fields.setdefault("event_time", utc_datetime(clock.now_us()))
        self._counts: Counter[str] = Counter({name: self._fields.pop(name, 0) for name in _SUMMED})
        self._lines: list[_Line] = []
        self._responses = 0
        self._lock = threading.Lock()
        self._closed = False

    @property
    def event_id(self) -> str:
        """The id the session's event is sent with (known from the start, for the caller's logs)."""
        return cast(str, self._fields["event_id"])

    def usage(
        self, tokens: int | str, kind: str, cost: str | int | float | Decimal | None = None, label: str | None = None
    ) -> None:
        """Adds one line: ``tokens`` of ``kind`` (see the module's table), with the caller's cost and label."""
        try:
            line = _Line(_kind(kind), _tokens(tokens), _cost(cost), label or "")
        except SessionError as exc:
            self._fail(exc, f"usage({tokens!r}, {kind!r}) refused")
            return
        with self._lock:
            if self._refused_after_end(f"usage({tokens!r}, {kind!r})"):
                return
            self._lines.append(line)

    def add_response(self, response: object) -> None:
        """Adds the usage of a provider response (``extract_usage``); its model is the session's if none was given."""
        try:
            extracted = extract_usage(response)
        except Exception as exc:
            self._fail(exc, "usage of a provider response not added to the session")
            return
        with self._lock:
            if self._refused_after_end("add_response()"):
                return
            self._responses += 1
            self._model = self._model or extracted.model
            for name, value in extracted.fields.items():
                if name in _SUMMED:
                    self._counts[name] += cast(int, value)
                else:
                    self._fields.setdefault(name, value)

    def error(self, message: str, status: str = "error") -> None:
        """Marks the metered work as failed (``status`` one of error, timeout, cancelled, rate_limited)."""
        with self._lock:
            self._fields["status"] = status
            self._fields["error"] = message

    def close(self) -> str | None:
        """Sends the event (and one per priced tool line); returns its event_id. Only the first call sends."""
        with self._lock:
            if self._closed:
                return None
            self._closed = True
            fields = self._event_fields()
        if not self._model:
            self._fail(SessionError("the session has no model: pass model= or add a response"), "session not sent")
            return None
        event_id = self._emitter.emit(self._model, client_id=self._client_id, **fields)
        for line in self._lines:
            if line.kind in _TOOL_KINDS and line.cost is not None:
                self._emitter.emit(line.label or line.kind, client_id=self._client_id, **self._tool_event(line))
        return event_id

    def __enter__(self) -> UsageSession:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if exc is None:
            self.close()
            return
        if "status" not in self._fields:
            self.error(f"{type(exc).__name__}: {exc}"[:500])
        try:
            self.close()
        except Exception:
            log.exception("usagemeter: session %s not sent", self.event_id)

    def _refused_after_end(self, what: str) -> bool:
        if self._closed:
            self._fail(SessionError(f"{what} after the session ended"), f"{what} refused")
        return self._closed

    def _event_fields(self) -> EventFields:
        counts = self._counts.copy()
        labels = dict(self._fields.get("labels") or {})
        for line in self._lines:
            if line.kind in _TOOL_KINDS:
                if line.cost is None:  # a priced one is an event of its own
                    counts["tool_calls"] += 1
                    key = f"{line.kind}_tokens"
                    labels[key] = str(int(labels.get(key, 0)) + line.tokens)
            else:
                counts[_TOKEN_FIELDS[line.kind]] += line.tokens
        fields = dict(self._fields) | {name: value for name, value in counts.items() if value}
        self._check_total(fields)
        fields.setdefault("requests", max(1, self._responses))
        fields.setdefault("latency_ms", round((self._clock.monotonic() - self._started) * 1000))
        fields["labels"] = labels
        fields |= self._caller_cost()
        return cast(EventFields, fields)

    def _check_total(self, fields: dict[str, Any]) -> None:
        total, parts = fields.get("total_tokens", 0), fields.get("input_tokens", 0) + fields.get("output_tokens", 0)
        if total and total < parts:
            del fields["total_tokens"]
            self._fail(SessionError(f"total {total} < input + output {parts}"), "the session's total was dropped")

    def _caller_cost(self) -> dict[str, Any]:
        lines = [line for line in self._lines if line.kind not in _TOOL_KINDS]
        costed = [line for line in lines if line.cost is not None]
        if not costed:
            return {}
        covers_all = any(line.kind == "total" for line in costed) or all(
            line.cost is not None for line in lines if line.tokens and line.kind != "total"
        )
        if not covers_all:
            self._fail(
                SessionError("some token lines have a cost and others not: give a cost on every one, or on total"),
                "the session's caller cost was dropped (the pipeline prices the tokens)",
            )
            return {}
        labels = dict.fromkeys(line.label for line in costed if line.label)
        return {"cost": sum((cast(Decimal, line.cost) for line in costed), Decimal(0)), "cost_label": "; ".join(labels)}

    def _tool_event(self, line: _Line) -> EventFields:
        shared = ("event_time", "user_id", "request_id", "session_id", "service")
        fields = {name: self._fields[name] for name in shared if name in self._fields}
        labels = dict(self._fields.get("labels") or {}) | {
            "session_event_id": self.event_id,
            f"{line.kind}_tokens": str(line.tokens),
        }
        return cast(
            EventFields,
            fields
            | {"operation": "tool", "tool_calls": 1, "cost": line.cost, "cost_label": line.label, "labels": labels},
        )


def _kind(kind: str) -> str:
    normal = kind.strip().lower() if isinstance(kind, str) else ""
    if normal not in KINDS:
        raise SessionError(f"token kind {kind!r} is not one of {', '.join(KINDS)}")
    return normal


def _tokens(tokens: int | str) -> int:
    if isinstance(tokens, str) and tokens.strip().isdigit():
        return int(tokens.strip())
    if isinstance(tokens, bool) or not isinstance(tokens, int) or tokens < 0:
        raise SessionError(f"tokens must be a whole number >= 0, not {tokens!r}")
    return tokens


def _cost(cost: str | int | float | Decimal | None) -> Decimal | None:
    if cost is None:
        return None
    try:
        amount = Decimal(repr(cost)) if isinstance(cost, float) else Decimal(cost)
    except (InvalidOperation, TypeError, ValueError):
        amount = Decimal("NaN")
    if isinstance(cost, bool) or not amount.is_finite() or amount < 0:
        raise SessionError(f"cost must be a non-negative amount in USD, not {cost!r}")
    return amount
