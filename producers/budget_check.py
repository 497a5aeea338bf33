"""The pre-flight budget check from a service, over the HTTP API: no ClickHouse access, no extra dependency.

``BudgetCheck(api_url).check_budget("acme", user_id="alice", model="gpt-4o", estimate={...})`` asks
``POST /v1/budgets/check`` and raises ``BudgetExceeded`` (current cost, limit, period end, budget id)
when a hard budget refuses the call. It uses the standard library's HTTP client with a timeout, so the
producer's base install is enough, and a service never hangs on it: when the API cannot answer in
``timeout_s`` the check follows ``fail_open`` (True: the call goes ahead; False: ``BudgetCheckUnavailable``)
and logs one line saying so. The API caches spend briefly and bounds how stale it is: each answer gives
``freshness_s`` and, per budget, the ``worst_case_overshoot`` that staleness allows.
"""

from __future__ import annotations

import json
import logging
import os
import urllib.error
import urllib.request
from collections.abc import Mapping
from datetime import datetime
from decimal import Decimal
from typing import Any

from usagemeter.schemas.errors import BudgetCheckUnavailable, BudgetExceeded

log = logging.getLogger("usagemeter.budgets")


class BudgetCheck:
    def __init__(
        self,
        api_url: str = "http://127.0.0.1:8765",
        *,
        timeout_s: float = 0.5,
        fail_open: bool = True,
        api_key: str | None = None,
    ) -> None:
        if not api_url.startswith(("http://", "https://")):
            raise ValueError(f"api_url must be an http:// or https:// URL, got {api_url!r}")
        self._url = api_url.rstrip("/") + "/v1/budgets/check"
        self._timeout_s = timeout_s
        self._fail_open = fail_open
        self._headers = {"Content-Type": "application/json"}
        key = api_key or os.environ.get("USAGEMETER_API_KEY")  # a key of the client checked, or admin
        if key:
            self._headers["Authorization"] = f"Bearer {key}"

    def check_budget(
        self,
        client_id: str,
        *,
        user_id: str | None = None,
        provider: str | None = None,
        model: str | None = None,
        labels: Mapping[str, str] | None = None,
        estimate: Mapping[str, Any] | None = None,
    ) -> dict[str, Any]:
        """The API's answer (``allowed``, ``budgets`` with spend, limit and period end of each); raises
        ``BudgetExceeded`` when a hard budget refuses. ``estimate`` is the call's expected usage (``model``,
        ``provider``, token counts as in ``emit``): the call is refused when it would pass the limit."""
        body: dict[str, Any] = {"client_id": client_id, "labels": dict(labels or {})}
        optional = {"user_id": user_id, "provider": provider, "model": model, "estimate": estimate}
        body.update({k: dict(v) if isinstance(v, Mapping) else v for k, v in optional.items() if v is not None})
        answer = self._ask(body)
        if answer is None:
            return {"allowed": True, "budgets": [], "unchecked": True}
        refused = next((b for b in answer.get("budgets", []) if b["budget_id"] == answer.get("refused_by")), None)
        if refused is not None:
            raise BudgetExceeded.of_budget(
                refused["name"] or refused["budget_id"],
                spend=Decimal(refused["spend"]),
                estimate=Decimal(refused["estimate"]),
                limit=Decimal(refused["limit"]),
                unit=refused["unit"],
                period_end=datetime.fromisoformat(refused["period_end"]),
                budget_id=refused["budget_id"],
            )
        return answer

    def _ask(self, body: dict[str, Any]) -> dict[str, Any] | None:
        """The answer, or None when the check fails open; ``BudgetCheckUnavailable`` when it fails closed."""
        request = urllib.request.Request(self._url, json.dumps(body).encode(), self._headers, method="POST")  # noqa: S310 -- checked http(s) in __init__
        try:
            with urllib.request.urlopen(request, timeout=self._timeout_s) as response:  # noqa: S310 -- http(s) only
                answer: dict[str, Any] = json.loads(response.read())
                return answer
        except urllib.error.HTTPError as exc:
            reason = f"the budget API answered {exc.code}: {exc.read()[:300].decode(errors='replace')}"
            if exc.code in (401, 403):  # a wrong key is a setup error, not an outage: never skip the check for it
                raise ValueError(f"{reason}; give api_key= (or USAGEMETER_API_KEY) a key of this client") from exc
            if exc.code == 422:
                raise ValueError(reason) from exc
        except (OSError, ValueError) as exc:
            reason = f"the budget API at {self._url} did not answer within {self._timeout_s} s ({exc})"
        if self._fail_open:
            log.warning("budget check skipped (fail-open): %s", reason)
            return None
        raise BudgetCheckUnavailable(f"budget check failed closed: {reason}")
