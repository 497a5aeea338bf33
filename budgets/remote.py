"""The budget routes of a running API (``usagemeter serve``) over HTTP, for the CLI and other processes.

Errors as ``fetch_usage``'s: ``UsageApiUnreachableError`` when nothing answers (the CLI then opens the
store itself), ``UsageApiError`` with the API's reason otherwise (404 for an unknown budget or alert).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import RootModel

from usagemeter.budgets.check import CheckRequest, CheckResult
from usagemeter.budgets.manage import AlertRecord, Saved, Shown
from usagemeter.budgets.model import Budget, BudgetPatch, BudgetSpec
from usagemeter.query.remote import request_api

_JSON = {"content-type": "application/json"}


class Budgets(RootModel[list[Budget]]):
    pass


class AlertRecords(RootModel[list[AlertRecord]]):
    pass


def create(base_url: str, spec: BudgetSpec) -> Saved:
    return request_api(Saved, base_url, "POST", "/v1/budgets", content=spec.model_dump_json(), headers=_JSON)


def update(base_url: str, budget_id: str, patch: BudgetPatch) -> Saved:
    body = patch.model_dump_json(exclude_none=True)
    return request_api(Saved, base_url, "PATCH", f"/v1/budgets/{budget_id}", content=body, headers=_JSON)


def delete(base_url: str, budget_id: str) -> Budget:
    return request_api(Budget, base_url, "DELETE", f"/v1/budgets/{budget_id}")


def listed(base_url: str, *, client_id: str | None = None) -> list[Budget]:
    params = {"client_id": client_id} if client_id else {}
    return request_api(Budgets, base_url, "GET", "/v1/budgets", params=params).root


def show(base_url: str, budget_id: str, *, at: datetime | None = None) -> Shown:
    params = {"at": at.isoformat()} if at else {}
    return request_api(Shown, base_url, "GET", f"/v1/budgets/{budget_id}", params=params)


def alerts(base_url: str, *, budget_id: str = "", days: float = 30, limit: int = 100) -> list[AlertRecord]:
    params: dict[str, Any] = {"budget_id": budget_id, "days": days, "limit": limit}
    return request_api(AlertRecords, base_url, "GET", "/v1/alerts", params=params).root


def alert(base_url: str, alert_id: str) -> AlertRecord:
    return request_api(AlertRecord, base_url, "GET", f"/v1/alerts/{alert_id}")


def check(base_url: str, request: CheckRequest, *, timeout_s: float = 2.0) -> CheckResult:
    body = request.model_dump_json()
    return request_api(
        CheckResult, base_url, "POST", "/v1/budgets/check", content=body, headers=_JSON, timeout_s=timeout_s
    )
