"""``post_rebuild()``: ``usagemeter views rebuild`` through a running query API (``usagemeter serve``).

Errors as ``fetch_usage``'s: ``UsageApiUnreachableError`` when nothing answers (the CLI then opens the
store itself), ``UsageApiError`` with the API's reason otherwise (409: another rebuild holds the lock).
"""

from __future__ import annotations

from usagemeter.query.rebuild import RebuildRequest, RebuildResult
from usagemeter.query.remote import request_api


def post_rebuild(
    base_url: str, request: RebuildRequest, *, timeout_s: float = 3600.0, api_key: str | None = None
) -> RebuildResult:
    body = request.model_dump_json().encode()
    return request_api(
        RebuildResult, base_url, "POST", "/v1/views/rebuild", content=body, timeout_s=timeout_s, api_key=api_key
    )
