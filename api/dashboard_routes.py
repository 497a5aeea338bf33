"""The dashboard's routes: its pages (``usagemeter.dashboard`` renders them), the sign-in, and its static files.

    GET  /dashboard                 the overview (range, zone, client and filters in the query string)
    GET  /dashboard/prices          the book in force, contracts, book versions
    GET  /dashboard/login           the key form (public; also the body of any 401 under /dashboard)
    POST /dashboard/session         the key in the Authorization header -> the HttpOnly session cookie
    GET  /dashboard/logout          clears the cookie (public)
    GET  /dashboard/static/{name}   uPlot (vendored, MIT), the page's script and style (public)

The pages are ``Access.CLIENT`` routes: the guard accepts the session cookie for them (``api/auth.py``),
and the caller's scope is passed down, so a client key's page holds its own clients' rows only. The cookie
is set by a JSON POST that carries the key in a header, like every other write, so no form of another
site can sign a browser in with a key of its choosing.
"""

from __future__ import annotations

from datetime import datetime
from importlib import resources
from typing import Annotated, Final

from fastapi import Depends, FastAPI, HTTPException, Query, Request
from fastapi.exception_handlers import http_exception_handler
from fastapi.responses import HTMLResponse, Response
from pydantic import ValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException

from usagemeter.api.auth import COOKIE_PATH, SESSION_COOKIE, Access, Caller, Principal, access
from usagemeter.api.store_session import StoreSession
from usagemeter.dashboard import PriceView, Scope, View, render_overview, render_prices
from usagemeter.dashboard.overview import DeadLetterCounts, dead_letters_for
from usagemeter.dashboard.pages import render_error, render_login
from usagemeter.query.spec import explain
from usagemeter.schemas.clock import Clock, utc_datetime

SESSION_MAX_AGE_S: Final = 8 * 3600
_STATIC: Final = {
    "uplot.min.js": "text/javascript",
    "uplot.min.css": "text/css",
    "uplot.LICENSE": "text/plain",
    "dashboard.js": "text/javascript",
    "dashboard.css": "text/css",
    "favicon.svg": "image/svg+xml",
}
_HEADERS: Final = {
    # the page runs only its own files: data reaches the script as JSON blocks, never as inline code
    "Content-Security-Policy": "default-src 'self'; style-src 'self' 'unsafe-inline'; frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}


def add_dashboard_routes(
    app: FastAPI, store: StoreSession, clock: Clock, dead_letters: DeadLetterCounts | None = None
) -> None:
    def html(body: str, status: int = 200) -> HTMLResponse:
        return HTMLResponse(body, status_code=status, headers=_HEADERS)

    @app.get("/dashboard", openapi_extra=access(Access.CLIENT), response_class=HTMLResponse)
    def dashboard(principal: Caller, view: Annotated[View, Depends(_view)]) -> HTMLResponse:
        scope = _scope(principal)
        letters = dead_letters_for(scope, dead_letters)  # Kafka, read before taking the store's session
        with store() as client:
            try:
                body = render_overview(client, view, scope, _now(clock), letters)
            except PermissionError as exc:
                return html(render_error(403, str(exc)), 403)
        return html(body)

    @app.get("/dashboard/prices", openapi_extra=access(Access.CLIENT), response_class=HTMLResponse)
    def prices(principal: Caller, view: Annotated[PriceView, Depends(_price_view)]) -> HTMLResponse:
        with store() as client:
            return html(render_prices(client, view, _scope(principal), _now(clock)))

    @app.get("/dashboard/login", openapi_extra=access(Access.PUBLIC), response_class=HTMLResponse)
    def login() -> HTMLResponse:
        return html(render_login())

    @app.post("/dashboard/session", status_code=204, openapi_extra=access(Access.ANY_KEY))
    def session(principal: Caller, request: Request) -> Response:
        """The guard has checked the key of the Authorization header; the cookie repeats it for page reads."""
        response = Response(status_code=204)
        key = request.headers["authorization"].partition(" ")[2].strip()
        response.set_cookie(
            SESSION_COOKIE,
            key,
            max_age=SESSION_MAX_AGE_S,
            path=COOKIE_PATH,
            httponly=True,
            samesite="strict",
            secure=request.url.scheme == "https",
        )
        return response

    @app.get("/dashboard/logout", openapi_extra=access(Access.PUBLIC), response_class=HTMLResponse)
    def logout() -> HTMLResponse:
        response = html(render_login("Signed out."))
        response.delete_cookie(SESSION_COOKIE, path=COOKIE_PATH, httponly=True, samesite="strict")
        return response

    @app.get("/dashboard/static/{name}", openapi_extra=access(Access.PUBLIC))
    def static(name: str) -> Response:
        media = _STATIC.get(name)
        if media is None:
            raise HTTPException(status_code=404, detail=f"no static file {name!r}")
        content = resources.files("usagemeter.dashboard").joinpath("static", name).read_bytes()
        return Response(
            content, media_type=media, headers={"Cache-Control": "max-age=3600", "X-Content-Type-Options": "nosniff"}
        )

    @app.exception_handler(StarletteHTTPException)
    async def pages_answer_in_html(request: Request, exc: StarletteHTTPException) -> Response:
        """Under /dashboard a browser gets a page: the key form for a 401 (same status and challenge), the
        reason for other refusals; every other path keeps FastAPI's JSON."""
        path = request.url.path
        if request.method == "GET" and (path == COOKIE_PATH or path.startswith(COOKIE_PATH + "/")):
            if path.startswith(COOKIE_PATH + "/static/"):
                return await http_exception_handler(request, exc)
            body = (
                render_login(str(exc.detail))
                if exc.status_code == 401
                else render_error(exc.status_code, str(exc.detail))
            )
            return HTMLResponse(body, status_code=exc.status_code, headers={**_HEADERS, **(exc.headers or {})})
        return await http_exception_handler(request, exc)


def _view(
    *,
    client: str = "",
    range: str = "7d",
    tz: str = "UTC",
    provider: str = "",
    model: str = "",
    user: str = "",
    service: str = "",
    label: str = "",
) -> View:
    try:
        return View.model_validate(
            {"client": client, "range": range, "tz": tz, "provider": provider, "model": model, "user": user,
             "service": service, "label": label}
        )  # fmt: skip
    except ValidationError as exc:
        raise HTTPException(status_code=422, detail=explain(exc)) from exc


def _price_view(
    search: str = "", at: Annotated[str, Query(description="A moment, ISO 8601; UTC without offset.")] = ""
) -> PriceView:
    try:
        return PriceView(search=search, at=datetime.fromisoformat(at) if at else None)
    except (ValueError, ValidationError) as exc:
        raise HTTPException(status_code=422, detail=explain(exc)) from exc


def _scope(principal: Principal) -> Scope:
    return Scope(admin=principal.admin, clients=principal.clients)


def _now(clock: Clock) -> datetime:
    return utc_datetime(clock.now_us())
