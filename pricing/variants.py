"""Service-tier variants: which event ``service_tier`` values have their own prices, and from where.

An event's ``service_tier`` (``batch``, ``flex``, ``priority``, ``fast``...) selects a price variant. The
price book writes a row per variant a model has, keyed by the event's value:

- genai-prices' own variants first: ``PriceVariant.when`` ``{"processing": "batch"}`` prices events with
  ``service_tier = "batch"``; ``{"service_tier": X}`` prices ``service_tier = X``. Other request contexts
  genai-prices knows (``speed``, ``route``, ``search_type``) have no event field and are not priced.
- Where genai-prices has no variant in force for a model at that time, the published provider rules of
  ``PROVIDER_RULES`` below: a multiplier of the standard token prices. genai-prices dates its batch
  variants from when it added them (2026-10-14), not from when the providers began to offer them, so the
  rules also cover the months before.

Tiers with no row (and no rule) are priced at the standard price and flagged ``approximate``, except the
names that mean standard (``NEUTRAL_TIERS``).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from genai_prices.types import ModelPrice, Tier, TieredPrices

NEUTRAL_TIERS = frozenset({"", "default", "standard", "auto"})
"""Service-tier values that mean the standard price (the SQL function ``usagemeter_cell_prices`` agrees)."""

EIGHTEEN_PLACES = Decimal(10) ** -18


@dataclass(frozen=True, slots=True)
class ProviderRule:
    """A provider's published price rule for one service tier: every token price times ``multiplier``."""

    provider_id: str
    service_tier: str
    multiplier: Decimal
    since: date
    """The day (UTC) the provider began to offer the tier; earlier events get no rule."""
    source: str
    """Where the provider publishes the rule."""

    def apply(self, price: ModelPrice) -> ModelPrice:
        """``price`` with every per-token price (``*_mtok``, tiers included) multiplied; per-request and
        per-search prices are not discounted by these rules and stay as they are."""
        values = {
            key: _scaled(value, self.multiplier) if key.endswith("_mtok") else value
            for key, value in price.__dict__.items()
            if not key.startswith("_") and isinstance(value, Decimal | TieredPrices)
        }
        return ModelPrice(**values)


PROVIDER_RULES: tuple[ProviderRule, ...] = (
    ProviderRule(
        "openai",
        "batch",
        Decimal("0.5"),
        date(2024, 4, 15),
        "https://platform.openai.com/docs/guides/batch (Batch API: 50% lower costs than synchronous calls)",
    ),
    ProviderRule(
        "anthropic",
        "batch",
        Decimal("0.5"),
        date(2024, 10, 8),
        "https://docs.anthropic.com/en/docs/build-with-claude/batch-processing#pricing (50% of standard prices;"
        " prompt-caching multipliers stack on it)",
    ),
    ProviderRule(
        "google",
        "batch",
        Decimal("0.5"),
        date(2025, 7, 7),
        "https://ai.google.dev/gemini-api/docs/batch-mode (Batch Mode: 50% of the interactive price)",
    ),
)


def event_tier(when: dict[str, str]) -> str | None:
    """The event ``service_tier`` value a genai-prices variant condition prices, or None when no event
    field can select it."""
    if when == {"processing": "batch"}:
        return "batch"
    if set(when) == {"service_tier"}:
        return when["service_tier"]
    return None


def price_context(tier: str) -> dict[str, str]:
    """genai-prices' request context for an event ``service_tier`` value (the inverse of ``event_tier``)."""
    return {"processing": "batch"} if tier == "batch" else {"service_tier": tier}


def rule_for(provider_id: str, tier: str, day: date) -> ProviderRule | None:
    for rule in PROVIDER_RULES:
        if rule.provider_id == provider_id and rule.service_tier == tier and day >= rule.since:
            return rule
    return None


def _scaled(value: Decimal | TieredPrices, multiplier: Decimal) -> Decimal | TieredPrices:
    if isinstance(value, TieredPrices):
        tiers = [Tier(start=tier.start, price=_exact(tier.price * multiplier)) for tier in value.tiers]
        return TieredPrices(base=_exact(value.base * multiplier), tiers=tiers)
    return _exact(value * multiplier)


def _exact(value: Decimal) -> Decimal:
    """The price book stores 18 decimals: a rule that would need more is refused, never rounded."""
    if value != value.quantize(EIGHTEEN_PLACES):
        raise ValueError(f"a provider rule gives {value}, which has more than 18 decimals")
    return value
