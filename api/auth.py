"""Who may call what: every route is admin-only unless it says otherwise, checked by one app-wide dependency.

``create_app`` installs ``guard`` as a dependency of the whole app, so a route added later is covered
without doing anything. For each request the guard reads the route's access level (``openapi_extra=
access(...)``, shown in the OpenAPI document as ``x-usagemeter-access``) and:

    PUBLIC    no key asked (liveness: /healthz); GET only
    ANY_KEY   any valid key; the route returns nothing of any client (prices in force)
    CLIENT    any valid key; the route calls ``authorize_client`` for every client it reads (403 otherwise),
              or, over several clients, reads only ``principal.clients`` when ``principal.admin`` is false
    ADMIN     the default, for a route that says nothing: an admin key

A key travels as ``Authorization: Bearer <key>``. Missing, unknown, revoked or expired: 401. A request whose
method is not GET or HEAD must also send ``Content-Type: application/json`` (415): with the key in a header
no web page can forge a request, and a JSON-only rule keeps it so with the dashboard's cookie.

The dashboard's cookie (``SESSION_COOKIE``, HttpOnly, SameSite=Strict, set by ``POST /dashboard/session``)
is read only for a GET or HEAD of a path under ``/dashboard``: it lets a browser read the pages, and can
never authorise a change or any ``/v1`` route, so a forged cross-site request gains nothing.

Route modules take the request's principal with ``principal: Caller`` and call ``authorize_client(principal,
client_id)`` or ``require_admin(principal)``; the guard has already refused what the route's level forbids.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Annotated, Any, Final

from fastapi import Depends, FastAPI, HTTPException, Request
from fastapi.routing import APIRoute
from starlette.concurrency import run_in_threadpool

from usagemeter.api import keys
from usagemeter.api.store_session import StoreSession
from usagemeter.schemas.clock import Clock, utc_datetime

_ACCESS: Final = "x-usagemeter-access"
_SAFE_METHODS: Final = frozenset({"GET", "HEAD"})
_CHALLENGE: Final = {"WWW-Authenticate": "Bearer"}
_MAX_CACHED: Final = 10_000
SESSION_COOKIE: Final = "usagemeter_key"
COOKIE_PATH: Final = "/dashboard"


class Access(StrEnum):
    PUBLIC = "public"
    ANY_KEY = "any-key"
    CLIENT = "client"
    ADMIN = "admin"


def access(level: Access) -> dict[str, Any]:
    """A route's ``openapi_extra`` for ``level``: ``@app.get(path, openapi_extra=access(Access.CLIENT))``."""
    return {_ACCESS: level.value}


@dataclass(frozen=True, slots=True)
class Principal:
    """Who a request's key is: an admin, or the holder of a key scoped to ``clients``."""

    key_id: str
    admin: bool
    clients: frozenset[str]

    def may_read(self, client_id: str) -> bool:
        return self.admin or client_id in self.clients


@dataclass(frozen=True, slots=True)
class Authenticator:
    """What the guard checks keys against; one per app, in ``app.state.authenticator``.

    A key's stored record is reused for ``cache_s`` (a lookup costs a query, ~5 ms on chDB, more than a
    cached budget check): a revoked key is refused within that time, an expired one at once (its expiry is
    judged on every request)."""

    store: StoreSession
    secret: bytes
    clock: Clock
    cache_s: float = 1.0
    _seen: dict[str, tuple[float, keys.StoredKey | None]] = field(default_factory=dict, repr=False)

    def principal(self, key: str) -> Principal:
        now = time.monotonic()
        hit = self._seen.get(key)
        if hit is not None and now - hit[0] <= self.cache_s:
            stored = hit[1]
        else:
            with self.store() as client:
                stored = keys.verify(client, self.secret, key)
            if len(self._seen) >= _MAX_CACHED:
                self._seen.clear()
            self._seen[key] = (now, stored)
        return self._judged(stored)

    def cached(self, key: str) -> Principal | None:
        """``principal`` when the key's record is cached (no query: the guard calls it on the event loop),
        None when it must be looked up."""
        hit = self._seen.get(key)
        if hit is None or time.monotonic() - hit[0] > self.cache_s:
            return None
        return self._judged(hit[1])

    def _judged(self, stored: keys.StoredKey | None) -> Principal:
        if stored is None:
            raise _unauthorized("invalid API key")
        status = stored.status(utc_datetime(self.clock.now_us()))
        if status != "active":
            raise _unauthorized(f"API key {stored.key_id} is {status}")
        return Principal(stored.key_id, stored.admin, frozenset(stored.clients))

    def forget(self) -> None:
        """After a revocation through this API: the next request of every key looks it up again."""
        self._seen.clear()


def install(app: FastAPI, authenticator: Authenticator) -> None:
    """Makes ``guard`` a dependency of every route added to ``app`` from now on: call before adding routes."""
    app.state.authenticator = authenticator
    app.router.dependencies.append(Depends(guard))


async def guard(request: Request) -> Principal | None:
    """The app-wide check (see the module docstring); the principal, or None on a public route.

    A coroutine, so a request whose key is cached is checked on the event loop: a synchronous dependency
    costs a hop to a worker thread and back, the largest part of a cached budget check under load. A key
    to look up (a query) is looked up on a worker thread."""
    level = _level(request)
    if level is Access.PUBLIC:
        return None
    authenticator = request.app.state.authenticator
    assert isinstance(authenticator, Authenticator)
    key = _bearer(request)
    principal = authenticator.cached(key)
    if principal is None:
        principal = await run_in_threadpool(authenticator.principal, key)
    if level is Access.ADMIN:
        require_admin(principal)
    if request.method not in _SAFE_METHODS and not _is_json(request.headers.get("content-type", "")):
        raise HTTPException(status_code=415, detail="send the body as JSON: Content-Type: application/json")
    return principal


async def current_principal(principal: Annotated[Principal | None, Depends(guard)]) -> Principal:
    """The request's principal (the guard's answer, computed once per request)."""
    if principal is None:
        raise RuntimeError("a public route has no principal: mark it Access.ANY_KEY or higher")
    return principal


Caller = Annotated[Principal, Depends(current_principal)]
"""A route parameter that receives the request's principal: ``def route(principal: Caller)``."""


def require_admin(principal: Principal) -> None:
    if not principal.admin:
        raise HTTPException(status_code=403, detail=f"API key {principal.key_id} is not an admin key")


def authorize_client(principal: Principal, client_id: str) -> None:
    """403 unless ``principal`` may read ``client_id``'s usage."""
    if not principal.may_read(client_id):
        raise HTTPException(status_code=403, detail=f"API key {principal.key_id} may not read client {client_id!r}")


def check_routes(app: FastAPI) -> None:
    """Refuses, at start, a public route that is not GET: a mutation always needs a key."""
    for route in app.routes:
        if not isinstance(route, APIRoute):
            continue  # the docs' own routes, outside the guard: public when the docs are on
        methods = route.methods or set()
        if methods - _SAFE_METHODS and _route_level(route) is Access.PUBLIC:
            raise RuntimeError(f"{route.path} is public but accepts {sorted(methods)}")


def _level(request: Request) -> Access:
    route = request.scope.get("route")
    return _route_level(route) if isinstance(route, APIRoute) else Access.ADMIN


def _route_level(route: APIRoute) -> Access:
    return Access((route.openapi_extra or {}).get(_ACCESS, Access.ADMIN))


def _bearer(request: Request) -> str:
    scheme, _, key = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not key.strip():
        cookie = request.cookies.get(SESSION_COOKIE, "").strip()
        if cookie and _reads_a_page(request):
            return cookie
        raise _unauthorized("an API key is required: Authorization: Bearer <key>")
    return key.strip()


def _reads_a_page(request: Request) -> bool:
    """A GET or HEAD of a dashboard page: the only requests the session cookie may authorise."""
    path = request.url.path
    return request.method in _SAFE_METHODS and (path == COOKIE_PATH or path.startswith(COOKIE_PATH + "/"))


def _is_json(content_type: str) -> bool:
    return content_type.split(";", 1)[0].strip().lower() == "application/json"


def _unauthorized(detail: str) -> HTTPException:
    return HTTPException(status_code=401, detail=detail, headers=_CHALLENGE)
