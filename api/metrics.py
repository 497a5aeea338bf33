"""The API's Prometheus series and ``GET /metrics``, which serves every series of the process.

``/metrics`` is public, like ``/healthz``: by design no series carries a client, user or key label (per-client
numbers are ClickHouse's, behind a key), so a scrape reveals request rates and process health only, and a
Prometheus server should not hold a usagemeter key (a client key reads that client's usage; an admin key
everything). Keep the port off the public internet as you would any metrics port.

Requests are counted by route template (``/v1/budgets/{budget_id}``, never the id), method and status, so
the label values are bounded by the routes; a path no route matches is ``route="unmatched"``.
"""

from __future__ import annotations

import time

from fastapi import FastAPI, Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from usagemeter.api.auth import Access, access

_SECONDS_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)


class ApiMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.requests = Counter(
            "usagemeter_api_requests", "HTTP requests answered.", ["route", "method", "status"], registry=registry
        )
        self.duration = Histogram(
            "usagemeter_api_request_duration_seconds",
            "Time from a request's arrival to the start of its answer.",
            ["route", "method"],
            buckets=_SECONDS_BUCKETS,
            registry=registry,
        )


class RequestMetrics:
    """ASGI middleware: one count and one observation per request, labelled by the route that matched."""

    def __init__(self, app: ASGIApp, *, metrics: ApiMetrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.monotonic()
        status = 500

        async def observed(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, observed)
        finally:
            route = getattr(scope.get("route"), "path", "unmatched")
            method = str(scope["method"])
            self.metrics.requests.labels(route, method, str(status)).inc()
            self.metrics.duration.labels(route, method).observe(time.monotonic() - started)


def add_metrics_route(app: FastAPI, registry: CollectorRegistry) -> None:
    """``GET /metrics``: the registry in Prometheus' text format, and request metrics for every route.

    Added before the hardening middleware, so that it runs inside the Host check and body cap: refused
    requests are counted with their 400/413 only if they reach it (a foreign Host is not counted)."""
    metrics = ApiMetrics(registry)

    @app.get("/metrics", openapi_extra=access(Access.PUBLIC), include_in_schema=False)
    def scrape() -> Response:
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)

    app.add_middleware(RequestMetrics, metrics=metrics)
