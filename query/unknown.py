"""Which clients and filtered values of a query have no usage at any time: why an answer is empty.

An empty answer for a misspelt model and one for a quiet month look alike; these probes tell them apart.
Each looks for the given values in the narrowest table holding the dimension, over all time, so they run
only when an answer is empty.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Final

from clickhouse_connect.driver.client import Client
from pydantic import BaseModel

from usagemeter.query.spec import UsageQuery, label_key
from usagemeter.query.tables import TABLES, column

_UNKNOWN_MODELS_SQL: Final = """
SELECT provider_raw, model_raw, sum(events), min(first_seen), max(last_seen)
FROM unknown_models GROUP BY provider_raw, model_raw HAVING sum(events) > 0 ORDER BY sum(events) DESC
"""
_CLIENTS_SQL: Final = "SELECT DISTINCT client_id FROM usage_15m_by_model WHERE client_id IN {clients:Array(String)}"
_VALUES_SQL: Final = """
SELECT DISTINCT {column:Identifier} FROM {table:Identifier}
WHERE client_id IN {clients:Array(String)} AND {column:Identifier} IN {values:Array(String)}
"""
_LABEL_VALUES_SQL: Final = """
SELECT DISTINCT label_value FROM usage_15m_by_label
WHERE client_id IN {clients:Array(String)} AND label_key = {label:String} AND label_value IN {values:Array(String)}
"""
_LABEL_KEY_SQL: Final = """
SELECT count() > 0 FROM usage_15m_by_label WHERE client_id IN {clients:Array(String)} AND label_key = {label:String}
"""


def unknown_values(client: Client, query: UsageQuery, settings: dict[str, Any]) -> list[str]:
    """One note per client, label key or ``eq``/``in`` filter value without any usage of the query's clients."""
    clients = list(query.client_ids)
    found_clients = client.query(_CLIENTS_SQL, parameters={"clients": clients}, settings=settings).result_rows
    known = {row[0] for row in found_clients}
    notes = [f"unknown client {name!r}: it has no usage at any time" for name in clients if name not in known]
    if query.label is not None:
        found = client.query(_LABEL_KEY_SQL, parameters={"clients": clients, "label": query.label}, settings=settings)
        if not found.result_rows[0][0]:
            return [*notes, f"unknown label {query.label!r}: no event of these clients carries it"]
    for condition in query.filters:
        if condition.op == "not_in" or condition.dimension == "client":
            continue
        key = label_key(condition.dimension)
        parameters: dict[str, Any] = {"clients": clients, "values": list(condition.values), "label": key or ""}
        if key is None:
            table = next(t for t in TABLES if not t.labels and condition.dimension in t.dimensions)
            parameters |= {"column": column(condition.dimension), "table": table.name}
        sql = _VALUES_SQL if key is None else _LABEL_VALUES_SQL
        present = {row[0] for row in client.query(sql, parameters=parameters, settings=settings).result_rows}
        what = condition.dimension if key is None else f"value of label {key!r}"
        notes += [
            f"unknown {what} {value!r}: these clients have no usage with it"
            for value in condition.values
            if value not in present
        ]
    return notes


class UnknownModel(BaseModel):
    """A (provider, model) name the price book could not resolve, waiting for a price or an alias."""

    provider_raw: str
    model_raw: str
    events: int
    first_seen: datetime
    last_seen: datetime


def unknown_models(client: Client) -> list[UnknownModel]:
    """Every unresolved name with events, the most frequent first; of all clients (the table has no client)."""
    rows = client.query(_UNKNOWN_MODELS_SQL).result_rows
    fields = UnknownModel.model_fields
    return [UnknownModel.model_validate(dict(zip(fields, row, strict=True))) for row in rows]
