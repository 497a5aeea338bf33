"""``fetch_usage()``: the usage report from a running query API (``usagemeter serve``) over HTTP.

For processes that cannot open the store themselves, such as the CLI while ``usagemeter serve`` owns the
embedded engine's directory. Every call sends an API key: the one given, ``USAGEMETER_API_KEY``, or the
local admin key file for a loopback address (``query/credentials.py``). Errors:

    UsageApiError                 the API answered, but not with a report (status and reason attached)
    └── UsageApiUnreachableError  nothing answered at that address (refused, unknown host, connect timeout)
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any, Final, Protocol, TypeVar

import httpx
from pydantic import BaseModel, ValidationError

from usagemeter.query.credentials import api_key_for
from usagemeter.query.models import UsageReport
from usagemeter.query.periods import Period
from usagemeter.schemas.errors import UsageApiError, UsageApiUnreachableError

DEFAULT_API_URL: Final = "http://127.0.0.1:8765"
_KEY_HINT: Final = " (give an API key: USAGEMETER_API_KEY, or the local admin key file USAGEMETER_API_KEY_FILE)"
M = TypeVar("M", bound=BaseModel)


class ResponseLike(Protocol):
    """What ``fetch_usage`` reads of a response (httpx's, or a test client's)."""

    @property
    def status_code(self) -> int: ...
    @property
    def content(self) -> bytes: ...
    @property
    def text(self) -> str: ...
    def json(self) -> Any: ...


class HttpGetter(Protocol):
    """An HTTP client that can GET: an ``httpx.Client``, or FastAPI's ``TestClient`` in tests."""

    def get(self, url: str, *, params: dict[str, str], headers: dict[str, str]) -> ResponseLike: ...


def fetch_usage(
    base_url: str,
    client_id: str,
    *,
    user_id: str | None = None,
    period: Period = "month",
    tz: str = "UTC",
    since: datetime | None = None,
    include_users: bool = False,
    timeout_s: float = 10.0,
    http_client: HttpGetter | None = None,
    api_key: str | None = None,
) -> UsageReport:
    """The report ``GET {base_url}/v1/usage`` returns, parsed back into a ``UsageReport`` (costs exact).

    ``http_client`` lets a caller reuse a client (with its own timeouts) or pass a test client; otherwise
    one is made with ``timeout_s`` and closed. ``api_key``: see the module docstring.
    """
    params: dict[str, str] = {"client_id": client_id, "period": period, "tz": tz}
    if user_id is not None:
        params["user_id"] = user_id
    if since is not None:
        params["since"] = since.isoformat()
    if include_users:
        params["include_users"] = "true"

    def send(url: str, headers: dict[str, str]) -> ResponseLike:
        if http_client is not None:
            return http_client.get(url, params=params, headers=headers)
        with httpx.Client(timeout=timeout_s) as owned:
            return owned.get(url, params=params, headers=headers)

    return call_api(UsageReport, base_url, "/v1/usage", send, api_key=api_key)


def call_api(
    model: type[M],
    base_url: str,
    path: str,
    send: Callable[[str, dict[str, str]], ResponseLike],
    *,
    api_key: str | None = None,
) -> M:
    """``send(url, headers)``'s answer parsed as ``model``, every failure as a ``UsageApiError`` that says what
    to do: the one place the API clients (usage, prices, reprice, keys) turn HTTP into typed results."""
    url = base_url.rstrip("/") + path
    key = api_key_for(base_url, api_key)
    headers = {"authorization": f"Bearer {key}"} if key else {}
    try:
        response = send(url, headers)
    except (httpx.ConnectError, httpx.ConnectTimeout) as exc:
        raise UsageApiUnreachableError(f"no usage API answers at {base_url}: {exc}") from exc
    except httpx.HTTPError as exc:
        raise UsageApiError(f"usage API at {base_url} failed: {exc}") from exc
    if not 200 <= response.status_code < 300:
        hint = _KEY_HINT if response.status_code == 401 else ""
        raise UsageApiError(
            f"usage API at {base_url} answered {response.status_code}: {_detail(response)}{hint}",
            status_code=response.status_code,
        )
    try:
        return model.model_validate_json(response.content)
    except ValidationError as exc:
        raise UsageApiError(f"usage API at {base_url} sent something that is not a {model.__name__}: {exc}") from exc


def request_api(
    model: type[M],
    base_url: str,
    method: str,
    path: str,
    *,
    timeout_s: float = 30.0,
    api_key: str | None = None,
    **kwargs: Any,
) -> M:
    """``method path`` on a client of its own (``kwargs`` go to ``httpx.Client.request``), parsed as ``call_api``.

    A request other than GET or HEAD is sent as JSON (``Content-Type: application/json``, which the API
    requires of them) unless ``kwargs`` give headers that say otherwise.
    """
    given = kwargs.pop("headers", None) or {}
    typed = {} if method in {"GET", "HEAD"} else {"content-type": "application/json"}

    def send(url: str, headers: dict[str, str]) -> ResponseLike:
        with httpx.Client(timeout=timeout_s) as client:
            return client.request(method, url, headers={**typed, **given, **headers}, **kwargs)

    return call_api(model, base_url, path, send, api_key=api_key)


def _detail(response: ResponseLike) -> str:
    try:
        body = response.json()
    except ValueError:
        return response.text[:500]
    detail = body.get("detail", body) if isinstance(body, dict) else body
    if isinstance(detail, list):  # FastAPI's request validation errors
        return "; ".join(f"{'.'.join(map(str, e.get('loc', [])))}: {e.get('msg', '')}" for e in detail)
    return str(detail)
