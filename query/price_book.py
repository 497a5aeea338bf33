"""The price book as a list: the rows in force at a moment (searchable by model), their overrides, the client
contracts, and the book's versions; what the dashboard's prices page shows.

``prices.unit_prices()`` answers for one model through the engine's resolver; this lists the book itself
(``price_cell_current``: the newest version, standard variant, base cell), so a reader can browse it. An
override in force for a row marks it; contracts are listed for the clients asked for only, since a
contract is a client's own data.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from decimal import Decimal
from typing import Final

from clickhouse_connect.driver.client import Client
from pydantic import BaseModel, ConfigDict

from usagemeter.pricing.columns import PRICE_COLUMNS

MAX_BOOK_ROWS: Final = 500
"""Rows a search returns at most: enough for one provider, small enough for one page."""

_BOOK_SQL: Final = """
SELECT provider_id, model_id, valid_from, valid_to, approximate,
       (provider_id, model_id) IN (
           SELECT provider_id, model_id FROM price_override_current
           WHERE valid_from <= {at:DateTime('UTC')} AND {at:DateTime('UTC')} < valid_to
       ) AS overridden,
       input_mtok, cache_read_mtok, cache_write_mtok, cache_write_1h_mtok, output_mtok, output_reasoning_mtok,
       input_audio_mtok, output_audio_mtok, web_searches_kcount, requests_kcount
FROM price_cell_current
WHERE variant = '' AND cell = 1
  AND valid_from <= {at:DateTime('UTC')} AND {at:DateTime('UTC')} < valid_to
  AND (positionCaseInsensitive(model_id, {search:String}) > 0
       OR positionCaseInsensitive(provider_id, {search:String}) > 0)
ORDER BY provider_id, model_id
LIMIT {limit:UInt32}
"""

_CONTRACTS_SQL: Final = """
SELECT client_id, provider_id, model_id, valid_from, valid_to, multiplier
FROM contract_current
WHERE ({every:Bool} OR client_id IN {clients:Array(String)})
  AND valid_from <= {at:DateTime('UTC')} AND {at:DateTime('UTC')} < valid_to
ORDER BY client_id, provider_id, model_id
"""

_VERSIONS_SQL: Final = """
SELECT book_version, count(), uniqExact(provider_id, model_id), countIf(approximate = 1)
FROM price_cell_source
WHERE variant = '' AND cell = 1
GROUP BY book_version
ORDER BY book_version DESC
"""

_CLIENTS_SQL: Final = "SELECT DISTINCT client_id FROM usage_15m_by_model ORDER BY client_id"


class _Row(BaseModel):
    model_config = ConfigDict(frozen=True)


class BookRow(_Row):
    """A model's unit prices in force (USD per million tokens, per thousand searches or requests)."""

    provider: str
    model: str
    valid_from: datetime
    valid_to: datetime
    approximate: bool
    overridden: bool
    """An override of the overrides file replaces some of these prices for every client."""
    prices: dict[str, Decimal | None]


class Contract(_Row):
    """A client's multiplier on a provider's or model's prices (``*``: all of them)."""

    client_id: str
    provider: str
    model: str
    valid_from: datetime
    valid_to: datetime
    multiplier: Decimal


class BookVersion(_Row):
    book_version: int
    rows: int
    models: int
    approximate: int


def book_in_force(client: Client, at: datetime, *, search: str = "", limit: int = MAX_BOOK_ROWS) -> list[BookRow]:
    """The newest book's rows in force at ``at`` whose model or provider contains ``search`` (any case)."""
    rows = client.query(_BOOK_SQL, parameters={"at": at, "search": search, "limit": limit}).result_rows
    return [
        BookRow(
            provider=row[0],
            model=row[1],
            valid_from=row[2],
            valid_to=row[3],
            approximate=bool(row[4]),
            overridden=bool(row[5]),
            prices=dict(zip(PRICE_COLUMNS, row[6:], strict=True)),
        )
        for row in rows
    ]


def contracts_in_force(client: Client, at: datetime, clients: Sequence[str] | None) -> list[Contract]:
    """Contracts in force at ``at`` of ``clients`` (None: of every client, for an admin)."""
    parameters = {"at": at, "clients": list(clients or []), "every": clients is None}
    rows = client.query(_CONTRACTS_SQL, parameters=parameters).result_rows
    fields = Contract.model_fields
    return [Contract.model_validate(dict(zip(fields, row, strict=True))) for row in rows]


def book_versions(client: Client) -> list[BookVersion]:
    """Every version of the book, newest first, with its size."""
    fields = BookVersion.model_fields
    return [
        BookVersion.model_validate(dict(zip(fields, row, strict=True)))
        for row in client.query(_VERSIONS_SQL).result_rows
    ]


def known_clients(client: Client) -> list[str]:
    """Every client with usage at any time: the choices an admin gets."""
    return [str(row[0]) for row in client.query(_CLIENTS_SQL).result_rows]


__all__ = [
    "BookRow",
    "BookVersion",
    "Contract",
    "book_in_force",
    "book_versions",
    "contracts_in_force",
    "known_clients",
]
