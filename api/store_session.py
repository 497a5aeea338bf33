"""One query at a time on the API's client, with the store's errors as HTTP answers.

A clickhouse-connect client is not meant for concurrent queries (an HTTP client's session would refuse
the second one), so every route of the API takes the same lock. Refused input (``ValueError``) is 422, a
budget or alert that does not exist 404, a store that cannot be reached 503.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager

from clickhouse_connect.driver.client import Client
from clickhouse_connect.driver.exceptions import OperationalError
from fastapi import HTTPException

from usagemeter.schemas.errors import BudgetNotFound

ClientProvider = Callable[[], Client]
"""Returns the ClickHouse client to query with; called once per request."""

StoreSession = Callable[[], AbstractContextManager[Client]]


def store_session(client_provider: ClientProvider, lock: threading.Lock) -> StoreSession:
    @contextmanager
    def session() -> Iterator[Client]:
        with lock:
            try:
                yield client_provider()
            except BudgetNotFound as exc:
                raise HTTPException(status_code=404, detail=str(exc)) from exc
            except ValueError as exc:
                raise HTTPException(status_code=422, detail=str(exc)) from exc
            except OperationalError as exc:
                raise HTTPException(status_code=503, detail=f"the usage store is unavailable: {exc}") from exc

    return session
