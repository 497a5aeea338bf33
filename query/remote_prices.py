"""The pricing routes of a running query API (``usagemeter serve``) over HTTP, for the CLI.

Errors as ``fetch_usage``'s: ``UsageApiUnreachableError`` when nothing answers (the CLI then opens the
store itself), ``UsageApiError`` with the API's reason otherwise. ``api_key``: as ``fetch_usage``'s.
"""

from __future__ import annotations

from datetime import datetime

from usagemeter.query.price_models import BookLoaded, RepriceRequest, RepriceResult
from usagemeter.query.prices import UnitPrices
from usagemeter.query.remote import request_api


def fetch_prices(
    base_url: str, model: str, *, provider: str = "", at: datetime | None = None, api_key: str | None = None
) -> UnitPrices:
    params = {"model": model, "provider": provider, **({"at": at.isoformat()} if at else {})}
    return request_api(UnitPrices, base_url, "GET", "/v1/prices", params=params, api_key=api_key)


def post_snapshot(base_url: str, content: bytes, *, timeout_s: float = 120.0, api_key: str | None = None) -> BookLoaded:
    return request_api(
        BookLoaded, base_url, "POST", "/v1/prices/snapshot", content=content, timeout_s=timeout_s, api_key=api_key
    )


def post_reprice(
    base_url: str, request: RepriceRequest, *, timeout_s: float = 600.0, api_key: str | None = None
) -> RepriceResult:
    body = request.model_dump_json().encode()
    return request_api(
        RepriceResult, base_url, "POST", "/v1/reprice", content=body, timeout_s=timeout_s, api_key=api_key
    )
