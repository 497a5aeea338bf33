"""The aggregate tables a query can read, and which one it reads: the narrowest that holds its dimensions.

All are SummingMergeTrees of the same measures in UTC 15-minute buckets, read with ``sum() ... GROUP BY``:

    usage_15m_by_model   client, provider, model                          (0004)
    usage_15m_by_user    client, user, provider, model                    (0004)
    usage_15m_by_label   client, provider, model, one label key's values  (0013; one row per label of an event)
    usage_15m_by_dims    client, user, service, provider, model, operation, status, service tier (0015)

A label query reads ``usage_15m_by_label``, so it can group or filter by provider and model only besides
the label: the sum over one key's values is the usage of the events that carry that key.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from usagemeter.query.spec import UsageQuery, label_key

LABEL_VALUE_COLUMN: Final = "label_value"
COLUMN_OF: Final = {
    "client": "client_id",
    "user": "user_id",
    "provider": "provider",
    "model": "model",
    "service": "service",
    "operation": "operation",
    "status": "status",
    "service_tier": "service_tier",
}
"""Each fixed dimension's column, the same in every table that has it (and in usage_events)."""


@dataclass(frozen=True, slots=True)
class AggregateTable:
    name: str
    dimensions: frozenset[str]
    labels: bool = False


TABLES: Final = (
    AggregateTable("usage_15m_by_model", frozenset({"client", "provider", "model"})),
    AggregateTable("usage_15m_by_user", frozenset({"client", "user", "provider", "model"})),
    AggregateTable("usage_15m_by_label", frozenset({"client", "provider", "model"}), labels=True),
    AggregateTable("usage_15m_by_dims", frozenset(COLUMN_OF)),
)


def table_for(query: UsageQuery) -> AggregateTable:
    """The first (narrowest) table holding every dimension of ``query``; a ``ValueError`` naming what to drop."""
    fixed = {name for name in query.dimensions if label_key(name) is None}
    wants_label = query.label is not None
    for table in TABLES:
        if fixed <= table.dimensions and table.labels == wants_label:
            return table
    labelled = next(table for table in TABLES if table.labels)
    extra = ", ".join(sorted(fixed - labelled.dimensions))
    raise ValueError(
        f"a label query can also group or filter by {', '.join(sorted(labelled.dimensions))} only, not {extra}"
    )


def column(dimension: str) -> str:
    """The aggregate column of a dimension (``label_value`` for a label)."""
    return LABEL_VALUE_COLUMN if label_key(dimension) is not None else COLUMN_OF[dimension]
