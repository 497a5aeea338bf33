"""The FOCUS 1.2 column rules a cost-and-usage export must meet, encoded from the specification's column
pages (FinOps-Open-Cost-and-Usage-Spec/FOCUS_Spec, specification/datasets/cost_and_usage/columns).

PyPI's ``focus-validator`` is published here only up to 1.0.0 (FOCUS 1.0 rules), so the 1.2 rules our
export relies on are checked here instead. ``problems(rows)`` lists every broken rule; [] means conformant
for the columns and rules below.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Final

MANDATORY: Final = frozenset(
    {
        "BilledCost", "BillingAccountId", "BillingAccountName", "BillingCurrency", "BillingPeriodEnd",
        "BillingPeriodStart", "ChargeCategory", "ChargeClass", "ChargeDescription", "ChargePeriodEnd",
        "ChargePeriodStart", "ContractedCost", "EffectiveCost", "InvoiceIssuerName", "ListCost",
        "PricingQuantity", "PricingUnit", "ProviderName", "PublisherName", "ServiceCategory", "ServiceName",
    }
)  # fmt: skip
KNOWN_OPTIONAL: Final = frozenset({"ChargeFrequency", "ConsumedQuantity", "ConsumedUnit", "SkuId", "SkuPriceId"})
NOT_NULL: Final = MANDATORY - {"ChargeClass", "ChargeDescription", "PricingQuantity", "PricingUnit"}
DECIMALS: Final = ("BilledCost", "ContractedCost", "EffectiveCost", "ListCost", "PricingQuantity", "ConsumedQuantity")
DATETIMES: Final = ("BillingPeriodStart", "BillingPeriodEnd", "ChargePeriodStart", "ChargePeriodEnd")
CHARGE_CATEGORIES: Final = frozenset({"Usage", "Purchase", "Tax", "Credit", "Adjustment"})
CHARGE_FREQUENCIES: Final = frozenset({"One-Time", "Recurring", "Usage-Based"})
SERVICE_CATEGORIES: Final = frozenset(
    {
        "AI and Machine Learning", "Analytics", "Business Applications", "Compute", "Databases",
        "Developer Tools", "Multicloud", "Identity", "Integration", "Internet of Things", "Management and Governance",
        "Media", "Migration", "Mobile", "Networking", "Security", "Storage", "Web", "Other",
    }
)  # fmt: skip
_UTC_DATETIME: Final = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$")  # DateTimeFormat: ISO 8601, UTC
_CURRENCY: Final = re.compile(r"^[A-Z]{3}$")  # ISO 4217
_COLUMN_ID: Final = re.compile(r"^[A-Z][A-Za-z0-9]*$")  # ColumnNamingAndOrdering: PascalCase, alphanumeric
_CUSTOM: Final = re.compile(r"^x_[A-Za-z0-9_]+$")  # custom columns are prefixed x_


def problems(header: Iterable[str], rows: Iterable[Mapping[str, str]]) -> list[str]:
    columns = list(header)
    found = [f"missing mandatory column {name}" for name in sorted(MANDATORY - set(columns))]
    for name in columns:
        if not (_CUSTOM.match(name) or (_COLUMN_ID.match(name) and name in MANDATORY | KNOWN_OPTIONAL)):
            found.append(f"column {name!r} is neither a FOCUS column nor prefixed x_")
    for at, row in enumerate(rows):
        found += [f"row {at}: {issue}" for issue in _row_problems(row)]
    return found


def _row_problems(row: Mapping[str, str]) -> list[str]:
    found = [f"{name} is null" for name in sorted(NOT_NULL) if not row.get(name)]
    for name in DECIMALS:
        if row.get(name):
            try:
                Decimal(row[name])
            except InvalidOperation:
                found.append(f"{name} {row[name]!r} is not a decimal")
            if "e" in row[name].lower():
                found.append(f"{name} {row[name]!r} uses an exponent (NumericFormat)")
    for name in DATETIMES:
        if not _UTC_DATETIME.match(row.get(name, "")):
            found.append(f"{name} {row.get(name)!r} is not YYYY-MM-DDTHH:mm:ssZ")
    if found:
        return found
    if not _CURRENCY.match(row["BillingCurrency"]):
        found.append("BillingCurrency is not an ISO 4217 code")
    if row["ChargeCategory"] not in CHARGE_CATEGORIES:
        found.append(f"ChargeCategory {row['ChargeCategory']!r} is not allowed")
    if row["ChargeClass"] not in ("", "Correction"):
        found.append("ChargeClass must be null or Correction")
    if row.get("ChargeFrequency", "") not in CHARGE_FREQUENCIES | {""}:
        found.append("ChargeFrequency is not allowed")
    if row["ServiceCategory"] not in SERVICE_CATEGORIES:
        found.append(f"ServiceCategory {row['ServiceCategory']!r} is not allowed")
    usage = row["ChargeCategory"] in ("Usage", "Purchase") and row["ChargeClass"] != "Correction"
    if usage and not row["PricingQuantity"]:
        found.append("PricingQuantity must not be null for Usage")
    if row["PricingQuantity"] and not row["PricingUnit"]:
        found.append("PricingUnit must not be null when PricingQuantity is not")
    if row["PricingQuantity"] and not row.get("SkuPriceId"):
        found.append("PricingQuantity must be null when SkuPriceId is null")
    if row["ChargeCategory"] == "Usage" and row.get("ConsumedQuantity") == "":
        found.append("ConsumedQuantity must not be null for Usage")
    times = {name: datetime.fromisoformat(row[name].replace("Z", "+00:00")) for name in DATETIMES}
    if not times["BillingPeriodStart"] < times["BillingPeriodEnd"]:
        found.append("BillingPeriodStart must be before BillingPeriodEnd")
    if not times["ChargePeriodStart"] < times["ChargePeriodEnd"]:
        found.append("ChargePeriodStart must be before ChargePeriodEnd")
    if (
        not times["BillingPeriodStart"]
        <= times["ChargePeriodStart"]
        < times["ChargePeriodEnd"]
        <= times["BillingPeriodEnd"]
    ):
        found.append("the charge period is not inside the billing period")
    return found
