"""The process's metrics: one registry for every part it runs, and the listener that serves it.

One ``CollectorRegistry`` per process, made here and handed to the worker, the alerter and the API, so each
process exposes exactly the series of the parts it runs (a fresh registry per command also keeps the
in-process tests from sharing prometheus_client's global one). The listener is prometheus_client's own
HTTP server in a daemon thread: blocked in ``accept`` while nobody scrapes, so an idle process stays idle.
"""

from __future__ import annotations

import logging
import threading
from wsgiref.simple_server import WSGIServer

from prometheus_client import CollectorRegistry, ProcessCollector, start_http_server

from usagemeter.consumers.settings import MetricsSettings
from usagemeter.schemas.errors import PortInUse

log = logging.getLogger("usagemeter.metrics")


def process_registry() -> CollectorRegistry:
    """A registry with the process's CPU, memory and file descriptors (read from /proc when scraped)."""
    registry = CollectorRegistry()
    ProcessCollector(namespace="usagemeter", registry=registry)
    return registry


class MetricsServer:
    """``GET /metrics`` on ``USAGEMETER_METRICS_HOST:_PORT``; a ``Stoppable`` for the command's supervisor."""

    def __init__(self, server: WSGIServer, thread: threading.Thread) -> None:
        self._server = server
        self._thread = thread

    @classmethod
    def start(cls, registry: CollectorRegistry, settings: MetricsSettings) -> MetricsServer | None:
        """Listening when a port is set, None otherwise; a port in use stops the command with one line."""
        if settings.port is None:
            return None
        try:
            server, thread = start_http_server(settings.port, settings.host, registry)
        except OSError as exc:
            raise PortInUse(
                f"the metrics endpoint cannot listen on {settings.host}:{settings.port}: {exc.strerror}; "
                "choose another with USAGEMETER_METRICS_PORT"
            ) from exc
        log.info("metrics on http://%s:%d/metrics", settings.host, settings.port)
        return cls(server, thread)

    def stop(self, timeout_s: float = 10.0) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout_s)

    @property
    def alive(self) -> bool:
        return self._thread.is_alive()
