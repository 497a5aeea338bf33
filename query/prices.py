"""Prices from the store: ``unit_prices()`` in force for a model at a moment, and ``reprice()`` for a request.

``unit_prices()`` gives the unit prices the engine applies to a model at a moment, from the book in force.

Asks the engine itself rather than genai-prices: the name goes through the same resolver as events
(``usagemeter_resolve_name``) and the prices through the same function as repricing
(``usagemeter_unit_prices``: the book's grid, overrides included), so what this shows is what events are
charged. Prices are for the standard service tier and the base tier (input tokens 0).
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Final

from clickhouse_connect.driver.client import Client
from pydantic import BaseModel

from usagemeter.pricing import reprice as repricing
from usagemeter.pricing.columns import PRICE_COLUMNS
from usagemeter.query.price_models import RepriceRequest, RepriceResult
from usagemeter.schemas.clock import SYSTEM_CLOCK, utc_datetime

_SQL: Final = """
SELECT name[1], name[2], usagemeter_unit_prices(name[1], name[2], '', {at:DateTime64(6, 'UTC')}, 0),
       (SELECT max(book_version) FROM model_alias_source)
FROM (SELECT usagemeter_resolve_name({provider:String}, {model:String}) AS name)
"""


class UnitPrices(BaseModel):
    """Unit prices in USD: ``*_mtok`` per million tokens, ``*_kcount`` per thousand."""

    provider_raw: str
    model_raw: str
    provider: str | None
    """genai-prices' provider id (the owner of the prices); None when the name resolves to nothing."""
    model: str | None
    at: datetime
    book_version: int
    priced: bool
    overridden: bool
    approximate: bool
    prices: dict[str, Decimal | None]


def unit_prices(client: Client, model: str, *, provider: str = "", at: datetime | None = None) -> UnitPrices:
    moment = at if at is not None else utc_datetime(SYSTEM_CLOCK.now_us())
    row = client.query(_SQL, parameters={"provider": provider, "model": model, "at": moment}).result_rows[0]
    provider_id, model_id, prices, version = str(row[0]), str(row[1]), row[2], int(row[3])
    return UnitPrices(
        provider_raw=provider,
        model_raw=model,
        provider=provider_id or None,
        model=model_id or None,
        at=moment,
        book_version=version,
        priced=bool(prices[0]),
        overridden=bool(prices[1]),
        approximate=bool(prices[2]),
        prices=dict(zip(PRICE_COLUMNS, prices[3:], strict=True)),
    )


def reprice(client: Client, request: RepriceRequest) -> RepriceResult:
    """``pricing.reprice.reprice`` for a request of the API or the CLI."""
    selection = repricing.Selection(request.since, request.until, request.client_id, request.model)
    run = repricing.reprice(client, selection, dry_run=request.dry_run, reason=request.reason)
    return RepriceResult(run)
