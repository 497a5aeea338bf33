"""What every request passes before any route: the Host-header check (400) and the body size cap (413).

Both are ASGI middleware, so they hold for every path, unknown ones and the docs included. The cap is
checked on the declared ``Content-Length`` before anything is read, and again on the bytes received, so a
chunked body without a length is cut at the limit too. The interactive docs are a setting of the app itself
(``create_app``: off unless ``USAGEMETER_API_DOCS=true``).
"""

from __future__ import annotations

from collections.abc import Mapping

from fastapi import FastAPI, HTTPException
from starlette.datastructures import Headers
from starlette.middleware.trustedhost import TrustedHostMiddleware
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from usagemeter.api.settings import ApiSettings


def harden(app: FastAPI, settings: ApiSettings, *, larger_bodies: Mapping[str, int]) -> None:
    """Adds the body cap (``larger_bodies``: paths allowed more than ``max_body_bytes``), then the Host check
    outside it, so a request for a foreign host is refused before its body is looked at."""
    app.add_middleware(BodyLimit, max_bytes=settings.max_body_bytes, larger=dict(larger_bodies))
    app.add_middleware(TrustedHostMiddleware, allowed_hosts=settings.hosts(), www_redirect=False)


class BodyLimit:
    """Refuses a request body over the path's limit with 413."""

    def __init__(self, app: ASGIApp, *, max_bytes: int, larger: dict[str, int]) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.larger = larger

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.larger.get(scope["path"], self.max_bytes)
        declared = Headers(scope=scope).get("content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > limit):
            status = 413 if declared.isdigit() else 400
            await JSONResponse({"detail": _too_large(limit) if status == 413 else "bad Content-Length"}, status)(
                scope, receive, send
            )
            return
        received = 0

        async def counted() -> Message:
            nonlocal received
            message = await receive()
            received += len(message.get("body", b""))
            if received > limit:
                raise HTTPException(status_code=413, detail=_too_large(limit))
            return message

        await self.app(scope, counted, send)


def _too_large(limit: int) -> str:
    return f"request body over {limit:,} bytes (USAGEMETER_API_MAX_BODY_BYTES, _MAX_SNAPSHOT_BYTES for snapshots)"
