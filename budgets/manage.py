"""The operations behind ``usagemeter budgets|alerts`` and the budget routes of the API, on one store.

The API and the CLI's direct mode call these, so both answer the same. A budget naming a client, user,
model or label the aggregates have never seen is accepted with a warning (it may be set up before the
first call), never refused.
"""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime, timedelta
from typing import Final

from clickhouse_connect.driver.client import Client
from pydantic import AwareDatetime, BaseModel, ConfigDict

from usagemeter.budgets.alerts import Alert
from usagemeter.budgets.ledger import AlertLedger
from usagemeter.budgets.model import Budget, BudgetPatch, BudgetSpec, Scope
from usagemeter.budgets.status import BudgetStatus, budget_status
from usagemeter.budgets.store import BudgetStore
from usagemeter.schemas.clock import SYSTEM_CLOCK, Clock, utc_datetime

_SEEN_SQL: Final = """
SELECT
    (SELECT count() > 0 FROM usage_15m_by_model WHERE client_id = {client_id:String}),
    {user_id:String} = '' OR (SELECT count() > 0 FROM usage_15m_by_user
                              WHERE client_id = {client_id:String} AND user_id = {user_id:String}),
    {provider:String} = '' OR (SELECT count() > 0 FROM usage_15m_by_model
                               WHERE client_id = {client_id:String} AND provider = {provider:String}),
    {model:String} = '' OR (SELECT count() > 0 FROM usage_15m_by_model
                            WHERE client_id = {client_id:String} AND model = {model:String}),
    {label_key:String} = '' OR (SELECT count() > 0 FROM usage_15m_by_label
                                WHERE client_id = {client_id:String} AND label_key = {label_key:String}
                                  AND label_value = {label_value:String})
"""


class _Answer(BaseModel):
    model_config = ConfigDict(frozen=True)


class Saved(_Answer):
    budget: Budget
    warnings: list[str]


class Shown(_Answer):
    status: BudgetStatus
    history: list[Budget]


class DeliveryRecord(_Answer):
    channel: str
    attempt: int
    status: str
    error: str
    at: AwareDatetime


class AlertRecord(_Answer):
    alert: Alert
    deliveries: list[DeliveryRecord]
    """Every attempt, per channel in order; the last one of a channel is its state."""


def create(client: Client, spec: BudgetSpec, *, clock: Clock = SYSTEM_CLOCK) -> Saved:
    return Saved(budget=BudgetStore(client, clock=clock).create(spec), warnings=unseen(client, spec.scope))


def update(client: Client, budget_id: str, patch: BudgetPatch, *, clock: Clock = SYSTEM_CLOCK) -> Saved:
    budget = BudgetStore(client, clock=clock).update(budget_id, patch)
    return Saved(budget=budget, warnings=unseen(client, budget.spec.scope))


def delete(client: Client, budget_id: str, *, clock: Clock = SYSTEM_CLOCK) -> Budget:
    return BudgetStore(client, clock=clock).delete(budget_id)


def listed(client: Client, *, client_id: str | None = None) -> list[Budget]:
    return BudgetStore(client).current(client_id=client_id)


def show(client: Client, budget_id: str, *, at: datetime | None = None, clock: Clock = SYSTEM_CLOCK) -> Shown:
    """The budget's period containing ``at`` (default now) with its spend, and every version."""
    store = BudgetStore(client, clock=clock)
    moment = at if at is not None else utc_datetime(clock.now_us())
    return Shown(status=budget_status(client, store.get(budget_id), moment), history=store.history(budget_id))


def alerts(
    client: Client,
    *,
    budget_id: str = "",
    days: float = 30,
    limit: int = 100,
    clients: Collection[str] | None = None,
    clock: Clock = SYSTEM_CLOCK,
) -> list[AlertRecord]:
    """The newest ``limit`` alerts of the last ``days``; of the budgets of ``clients`` only, when given."""
    ledger = AlertLedger(client)
    since = utc_datetime(clock.now_us()) - timedelta(days=days)
    found = ledger.recent(since=since, budget_id=budget_id, limit=limit, clients=clients)
    return _with_deliveries(ledger, found)


def alert(client: Client, alert_id: str) -> AlertRecord | None:
    ledger = AlertLedger(client)
    found = ledger.get(alert_id)
    return None if found is None else _with_deliveries(ledger, [found])[0]


def _with_deliveries(ledger: AlertLedger, found: list[Alert]) -> list[AlertRecord]:
    by_alert: dict[str, list[DeliveryRecord]] = {}
    for d in ledger.deliveries([a.alert_id for a in found]):
        record = DeliveryRecord(channel=d.channel, attempt=d.attempt, status=d.status, error=d.error, at=d.at)
        by_alert.setdefault(d.alert_id, []).append(record)
    return [AlertRecord(alert=a, deliveries=by_alert.get(a.alert_id, [])) for a in found]


def unseen(client: Client, scope: Scope) -> list[str]:
    """A warning for each name of the scope no usage has carried yet."""
    parameters = {
        "client_id": scope.client_id,
        "user_id": scope.user_id or "",
        "provider": scope.provider or "",
        "model": scope.model or "",
        "label_key": scope.label_key or "",
        "label_value": scope.label_value or "",
    }
    seen = client.query(_SEEN_SQL, parameters=parameters).result_rows[0]
    names = (
        f"client {scope.client_id!r}",
        f"user {scope.user_id!r}",
        f"provider {scope.provider!r}",
        f"model {scope.model!r}",
        f"label {scope.label_key}={scope.label_value!r}",
    )
    return [f"no usage of {name} has been seen yet" for name, known in zip(names, seen, strict=True) if not known]
