"""The dashboard: server-rendered HTML pages of spend, budgets, freshness and prices, over the aggregates.

Where it sits: between the API and the budgets (``cli > api > dashboard > budgets > query``). The API's
routes (``api/dashboard_routes.py``) authenticate the request and hand these modules the caller's scope as
plain data (``Scope``: admin, or the clients a key may read); the pages read the store only through
``query/`` and ``budgets/`` functions and return HTML strings. Kept below the API and free of any web
framework, so no cycle can form (the app factory imports it, it imports nothing of the API) and a page
can be rendered and tested from a ClickHouse client alone.
"""

from usagemeter.dashboard.pages import render_overview, render_prices
from usagemeter.dashboard.view import PriceView, Scope, View

__all__ = ["PriceView", "Scope", "View", "render_overview", "render_prices"]
