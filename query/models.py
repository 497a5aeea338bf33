"""The usage report: what ``get_usage()`` returns, the HTTP API serves and the CLI prints.

Shaped like the ``get_usage()`` of the LLM gateways people already use: all-time totals, the current
period, and breakdowns by provider, model and user. Money is ``Decimal`` end to end and is written to
JSON as a string, so no cost is rounded through a float on its way to a client.

Token convention (the event model's): ``input`` counts every input token, cached and audio ones
included; ``output`` counts every output token, reasoning and audio included; ``tokens`` is
input + output, so the kind-specific counts are parts of it, not additions to it.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, PlainSerializer

from usagemeter.query.periods import Period


def decimal_text(value: Decimal) -> str:
    # Plain notation ("100", "0.000001"), never an exponent, never a rounding (normalize() would round
    # to the context's 28 digits; a Decimal(38, 18) sum can have 38).
    text = format(value, "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return "0" if text in ("", "-0") else text


Money = Annotated[Decimal, PlainSerializer(decimal_text, return_type=str, when_used="json")]
"""An exact amount in the price book's currency (USD), a string in JSON."""


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class UsageTotals(_Frozen):
    """Requests, tokens and cost of one slice of usage (a provider, a model, a user, a period)."""

    requests: int = 0
    tokens: int = 0
    cost: Money = Decimal(0)


class CurrentPeriod(UsageTotals):
    """Usage in the current local day or month: ``[period_start, period_end)``, end excluded."""

    period_start: AwareDatetime
    period_end: AwareDatetime


class CostBreakdown(_Frozen):
    """Cost by price component; ``total`` is the priced total (a caller-given cost has no components)."""

    input: Money = Field(default=Decimal(0), description="uncached, non-audio input (prompt) tokens")
    cache_read: Money = Decimal(0)
    cache_write: Money = Decimal(0)
    output: Money = Field(default=Decimal(0), description="non-reasoning, non-audio output (completion) tokens")
    reasoning: Money = Decimal(0)
    audio: Money = Decimal(0)
    web_search: Money = Decimal(0)
    request: Money = Field(default=Decimal(0), description="per-request prices")
    total: Money = Decimal(0)


class TokenCounts(_Frozen):
    """Tokens by kind; ``input`` and ``output`` include the kinds listed after them."""

    input: int = 0
    output: int = 0
    cache_read: int = 0
    cache_write: int = 0
    reasoning: int = 0
    input_audio: int = 0
    output_audio: int = 0
    total: int = 0


class UsageReport(_Frozen):
    """Usage of one client (or one of its users): totals, the current period and breakdowns.

    Totals and breakdowns cover all time, or the time from ``since`` when it is set; ``current_period``
    is the local day or month of ``tz`` that contains ``generated_at``.
    """

    client_id: str
    user_id: str | None = None
    period: Period
    tz: str
    since: AwareDatetime | None = None
    generated_at: AwareDatetime

    total_requests: int
    total_tokens: int
    total_cost: Money
    events: int = Field(description="usage events counted (one per metered call)")
    errors: int = Field(description="events whose status was not ok")
    unpriced: int = Field(description="events of models the price book does not know; their cost is missing")
    web_searches: int = 0
    tool_calls: int = 0

    current_period: CurrentPeriod
    by_provider: dict[str, UsageTotals]
    by_model: dict[str, UsageTotals]
    by_user: dict[str, UsageTotals] = Field(
        default_factory=dict, description="filled only when asked for (it reads the larger per-user table)"
    )
    cost_breakdown: CostBreakdown
    tokens: TokenCounts


__all__ = ["CostBreakdown", "CurrentPeriod", "Money", "TokenCounts", "UsageReport", "UsageTotals"]
