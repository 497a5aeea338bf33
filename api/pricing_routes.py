"""The query API's pricing routes: unit prices in force, a new price snapshot, repricing, unknown models.

In embedded mode ``usagemeter serve`` owns the store, so ``usagemeter prices`` and ``usagemeter reprice``
come through here. Prices in force are for any key (they hold nothing of a client: contracts are not
applied); the rest is admin only, the default of ``api/auth.py``.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Annotated

from fastapi import FastAPI, Query, Request
from fastapi.concurrency import run_in_threadpool

from usagemeter.api.auth import Access, access
from usagemeter.api.store_session import StoreSession
from usagemeter.pricing import price_updates
from usagemeter.query.price_models import BookLoaded, RepriceRequest, RepriceResult
from usagemeter.query.prices import UnitPrices, reprice, unit_prices
from usagemeter.query.unknown import UnknownModel
from usagemeter.query.unknown import unknown_models as read_unknown_models


def add_pricing_routes(app: FastAPI, store: StoreSession, on_repriced: Callable[[], None]) -> None:
    """``on_repriced`` runs after a reprice wrote adjustments (the alerter evaluates every budget again)."""

    @app.get("/v1/prices", openapi_extra=access(Access.ANY_KEY))
    def prices(
        model: Annotated[str, Query(min_length=1, description="The model as events name it.")],
        provider: Annotated[str, Query(description="The provider as events name it; may be empty.")] = "",
        at: Annotated[datetime | None, Query(description="The moment (default: now).")] = None,
    ) -> UnitPrices:
        with store() as client:
            return unit_prices(client, model, provider=provider, at=at)

    def load(content: bytes) -> BookLoaded:
        with store() as client:
            snapshot = price_updates.read_snapshot(content, source="the snapshot sent")
            stats = price_updates.apply(client, snapshot)
            return BookLoaded(book_version=stats.book_version, price_rows=stats.price_rows, alias_rows=stats.alias_rows)

    @app.post("/v1/prices/snapshot")
    async def load_snapshot(request: Request) -> BookLoaded:
        """A genai-prices data snapshot (its data.json, as the body) becomes the new book version, or 422."""
        return await run_in_threadpool(load, await request.body())

    @app.post("/v1/reprice")
    def reprice_route(request: RepriceRequest) -> RepriceResult:
        with store() as client:
            result = reprice(client, request)
        if not request.dry_run:
            on_repriced()
        return result

    @app.get("/v1/unknown-models")
    def unknown_models() -> list[UnknownModel]:
        with store() as client:
            return read_unknown_models(client)
