"""``POST /v1/views/rebuild``: re-derive the aggregates from the events while ingestion runs (admin only).

In embedded mode ``usagemeter serve`` owns the store, so ``usagemeter views rebuild`` comes here. The
rebuild holds the API's store session while it runs (seconds per table; see ``query/rebuild.py``), so
other requests wait for it; the worker's inserts do not, they have their own session.
"""

from __future__ import annotations

from collections.abc import Callable

from fastapi import FastAPI, HTTPException

from usagemeter.api.auth import Access, access
from usagemeter.api.store_session import StoreSession
from usagemeter.query.rebuild import RebuildRequest, RebuildResult, rebuild
from usagemeter.schemas.errors import RebuildRefused


def add_view_routes(app: FastAPI, store: StoreSession, on_rebuilt: Callable[[], None]) -> None:
    """``on_rebuilt`` runs after a rebuild wrote corrections (budgets are evaluated again)."""

    @app.post("/v1/views/rebuild", openapi_extra=access(Access.ADMIN))
    def rebuild_route(request: RebuildRequest) -> RebuildResult:
        with store() as client:
            try:
                result = rebuild(client, request)
            except RebuildRefused as exc:
                raise HTTPException(status_code=409, detail=str(exc)) from exc
        if any(table.corrected_rows for table in result.tables):
            on_rebuilt()
        return result
