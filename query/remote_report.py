"""``fetch_answer()``: a ``UsageQuery`` answered by a running query API (``usagemeter serve``) over HTTP.

The query travels as JSON (``POST /v1/reports/query``, a read), so filter values may hold any character.
Errors as ``fetch_usage``'s: ``UsageApiUnreachableError`` when nothing answers, ``UsageApiError`` with
the API's reason otherwise.
"""

from __future__ import annotations

from usagemeter.query.answer import UsageAnswer
from usagemeter.query.remote import request_api
from usagemeter.query.spec import UsageQuery


def fetch_answer(
    base_url: str, query: UsageQuery, *, timeout_s: float = 60.0, api_key: str | None = None
) -> UsageAnswer:
    """The answer of ``query``; ``api_key`` as ``fetch_usage``'s (default: USAGEMETER_API_KEY, then the local
    admin key file for a loopback address)."""
    body = query.model_dump_json().encode()
    return request_api(
        UsageAnswer, base_url, "POST", "/v1/reports/query", content=body, timeout_s=timeout_s, api_key=api_key
    )
