"""``fetch_answer()``: a ``UsageQuery`` answered by a running query API (``usagemeter serve``) over HTTP.

The query travels as JSON (``POST /v1/reports/query``, a read), so filter values may hold any character.
Errors as ``fetch_usage``'s: ``UsageApiUnreachableError`` when nothing answers, ``UsageApiError`` with
the API's reason otherwise.
"""

from __future__ import annotations

import httpx

from usagemeter.query.answer import UsageAnswer
from usagemeter.query.remote import ResponseLike, call_api
from usagemeter.query.spec import UsageQuery


def fetch_answer(base_url: str, query: UsageQuery, *, timeout_s: float = 60.0) -> UsageAnswer:
    body = query.model_dump_json().encode()

    def send(url: str) -> ResponseLike:
        with httpx.Client(timeout=timeout_s) as client:
            return client.post(url, content=body, headers={"content-type": "application/json"})

    return call_api(UsageAnswer, base_url, "/v1/reports/query", send)
