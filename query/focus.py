"""A FOCUS 1.2 export (the FinOps Open Cost and Usage Specification) of a query's usage.

One row per charge period (a bucket of the query: 15 minutes to a month), client, user, provider, model
and token kind, with the 21 mandatory columns, the conditional ones our data fills (SkuId, SkuPriceId,
ChargeFrequency, ConsumedQuantity/Unit) and custom columns prefixed ``x_`` (client, user, model, token
kind, events). Billing periods are the local months of the query's zone; every date-time is UTC in the
spec's ``YYYY-MM-DDTHH:mm:ssZ`` form. Costs are exact decimals. List, contracted, effective and billed
cost are all the priced cost: usagemeter prices at list price (with per-client overrides applied) and
knows no commitment discounts or invoices.

A caller-given cost has no components, so what the components do not explain is one more row of kind
``unitemised`` priced per request.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal
from typing import Final

from usagemeter.query.answer import UsageAnswer, UsageRow
from usagemeter.query.models import decimal_text
from usagemeter.query.periods import period_bounds

FOCUS_VERSION: Final = "1.2"
MANDATORY: Final = (
    "BilledCost", "BillingAccountId", "BillingAccountName", "BillingCurrency", "BillingPeriodEnd",
    "BillingPeriodStart", "ChargeCategory", "ChargeClass", "ChargeDescription", "ChargePeriodEnd",
    "ChargePeriodStart", "ContractedCost", "EffectiveCost", "InvoiceIssuerName", "ListCost", "PricingQuantity",
    "PricingUnit", "ProviderName", "PublisherName", "ServiceCategory", "ServiceName",
)  # fmt: skip
CONDITIONAL: Final = ("ChargeFrequency", "ConsumedQuantity", "ConsumedUnit", "SkuId", "SkuPriceId")
CUSTOM: Final = ("x_ClientId", "x_UserId", "x_Model", "x_TokenKind", "x_Events")
COLUMNS: Final = (*MANDATORY, *CONDITIONAL, *CUSTOM)
FOCUS_GROUPS: Final = ("client", "user", "provider", "model")
"""What a FOCUS export's query must group by: a row is one model's usage by one client's user."""
FOCUS_BUCKETS: Final = ("15m", "hour", "day", "month")
"""Charge periods that never straddle a billing period (a local month); weeks can."""


def _kinds(row: UsageRow) -> list[tuple[str, int, Decimal, str]]:
    """(token kind, quantity, cost, unit) of a row; the components are those of ``CostBreakdown``."""
    t, c = row.tokens, row.cost
    kinds = [
        ("input", t.input - t.cache_read - t.cache_write - t.input_audio, c.input, "Tokens"),
        ("cache_read", t.cache_read, c.cache_read, "Tokens"),
        ("cache_write", t.cache_write, c.cache_write, "Tokens"),
        ("output", t.output - t.reasoning - t.output_audio, c.output, "Tokens"),
        ("reasoning", t.reasoning, c.reasoning, "Tokens"),
        ("audio", t.input_audio + t.output_audio, c.audio, "Tokens"),
        ("web_search", row.web_searches, c.web_search, "Searches"),
        ("request", row.requests, c.request, "Requests"),
    ]
    unitemised = c.total - sum((cost for _, _, cost, _ in kinds), Decimal(0))
    kinds.append(("unitemised", row.requests, unitemised, "Requests"))
    return [kind for kind in kinds if kind[1] or kind[2]]


def focus_rows(answer: UsageAnswer, rows: list[UsageRow]) -> Iterator[dict[str, str]]:
    """FOCUS records of ``rows`` (of ``answer``, whose query is grouped by ``FOCUS_GROUPS`` with a bucket)."""
    check_focus_query(answer)
    tz = answer.query.tz
    for row in rows:
        assert row.start is not None and row.end is not None  # a bucketed query's rows have both
        billing = period_bounds("month", tz, row.start)
        client, user, provider, model = (row.group[name] for name in FOCUS_GROUPS)
        for kind, quantity, cost, unit in _kinds(row):
            amount = decimal_text(cost)
            yield {
                "BilledCost": amount,
                "BillingAccountId": client,
                "BillingAccountName": client,
                "BillingCurrency": "USD",
                "BillingPeriodEnd": _utc_text(billing.end),
                "BillingPeriodStart": _utc_text(billing.start),
                "ChargeCategory": "Usage",
                "ChargeClass": "",
                "ChargeDescription": f"{provider} {model}: {kind.replace('_', ' ')} ({unit.lower()})",
                "ChargePeriodEnd": _utc_text(row.end),
                "ChargePeriodStart": _utc_text(row.start),
                "ContractedCost": amount,
                "EffectiveCost": amount,
                "InvoiceIssuerName": provider,
                "ListCost": amount,
                "PricingQuantity": str(quantity),
                "PricingUnit": unit,
                "ProviderName": provider,
                "PublisherName": provider,
                "ServiceCategory": "AI and Machine Learning",
                "ServiceName": model,
                "ChargeFrequency": "Usage-Based",
                "ConsumedQuantity": str(quantity),
                "ConsumedUnit": unit,
                "SkuId": f"{provider}/{model}",
                "SkuPriceId": f"{provider}/{model}/{kind}",
                "x_ClientId": client,
                "x_UserId": user,
                "x_Model": model,
                "x_TokenKind": kind,
                "x_Events": str(row.events),
            }


def check_focus_query(answer: UsageAnswer) -> None:
    """A ``ValueError`` unless the query can be exported: grouped by ``FOCUS_GROUPS``, bucketed by months or less."""
    query = answer.query
    if tuple(query.group_by) != FOCUS_GROUPS or query.bucket not in FOCUS_BUCKETS or query.top is not None:
        raise ValueError(
            f"a FOCUS export groups by {', '.join(FOCUS_GROUPS)} with a bucket of {', '.join(FOCUS_BUCKETS)} "
            "and no top N"
        )


def _utc_text(instant: datetime) -> str:
    return instant.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
