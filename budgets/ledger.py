"""The alert ledger (``budget_alerts``) and the delivery log (``alert_deliveries``).

An alert is written here before any channel sees it, in one insert whose deduplication token is its id,
then read back: when another evaluator wrote an alert with the same id first (the same crossing, seen
at the same time), the row stored is the other one, and the reader takes the thresholds that row lists
as recorded, so no threshold is reported by two alerts. A crash after the write and before a delivery
leaves the alert without a ``delivered`` row: the dispatcher sends it at the next start, with the same id.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final, Literal

from clickhouse_connect.driver.client import Client

from usagemeter.budgets.alerts import Alert
from usagemeter.budgets.store import utc_datetime_of
from usagemeter.budgets.transitions import AlertKind

DeliveryStatus = Literal["delivered", "failed", "dead"]

_ALERT_COLUMNS: Final = (
    "alert_id", "budget_id", "version", "period_start", "kind", "thresholds", "crossings", "created_at", "written_by",
    "payload",
)  # fmt: skip

_STATES_SQL: Final = """
SELECT budget_id, version, period_start, kind, thresholds, crossings
FROM budget_alerts
WHERE period_start >= {since:DateTime('UTC')} OR period_start = toDateTime(0, 'UTC')
ORDER BY budget_id, version, period_start, created_at, alert_id
LIMIT 1 BY alert_id
"""

_ONE_SQL: Final = """
SELECT payload, written_by FROM budget_alerts WHERE alert_id = {alert_id:String} ORDER BY created_at LIMIT 1
"""

_LIST_SQL: Final = """
SELECT payload
FROM budget_alerts
WHERE kind != 'carried'
  AND ({budget_id:String} = '' OR budget_id = {budget_id:String})
  AND ({every_client:Bool} OR JSONExtractString(payload, 'scope', 'client_id') IN {clients:Array(String)})
  AND created_at >= {since:DateTime64(6, 'UTC')}
ORDER BY created_at DESC, alert_id
LIMIT 1 BY alert_id
LIMIT {limit:UInt32}
"""

_DELIVERIES_SQL: Final = """
SELECT alert_id, channel, attempt, status, error, at
FROM alert_deliveries
WHERE has({alert_ids:Array(String)}, alert_id)
ORDER BY alert_id, channel, attempt, at
"""


@dataclass(frozen=True, slots=True)
class LedgerRow:
    budget_id: str
    version: int
    period_start: datetime
    kind: AlertKind
    thresholds: tuple[str, ...]
    crossings: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class Delivery:
    alert_id: str
    channel: str
    attempt: int
    status: DeliveryStatus
    error: str
    at: datetime


class AlertLedger:
    def __init__(self, client: Client) -> None:
        self._client = client

    def record(self, alert: Alert, period_key: datetime, writer: str) -> tuple[Alert, bool]:
        """Writes ``alert`` unless its id is stored already; returns the alert stored under its id and
        whether ``writer``'s insert is the one kept (then it delivers the alert; otherwise the writer kept
        does). ``period_key`` is the period's identity in the ledger (``budgets.periods.Window.key``)."""
        row: Sequence[Any] = (
            alert.alert_id,
            alert.budget_id,
            alert.version,
            period_key,
            alert.kind,
            list(alert.thresholds),
            list(alert.crossings),
            alert.created_at,
            writer,
            alert.model_dump_json(),
        )
        self._client.insert(
            "budget_alerts",
            [row],
            column_names=list(_ALERT_COLUMNS),
            settings={"async_insert": 0, "insert_deduplication_token": alert.alert_id},
        )
        rows = self._client.query(_ONE_SQL, parameters={"alert_id": alert.alert_id}).result_rows
        if not rows:  # not readable yet (a replica behind): ours was acknowledged, so treat it as kept
            return alert, True
        return Alert.model_validate_json(rows[0][0]), rows[0][1] == writer

    def get(self, alert_id: str) -> Alert | None:
        rows = self._client.query(_ONE_SQL, parameters={"alert_id": alert_id}).result_rows
        return Alert.model_validate_json(rows[0][0]) if rows else None

    def rows_since(self, since: datetime) -> list[LedgerRow]:
        """Every ledger row of periods starting at ``since`` or later, and of rolling periods, in write order."""
        rows = self._client.query(_STATES_SQL, parameters={"since": since}).result_rows
        return [
            LedgerRow(str(b), int(v), utc_datetime_of(p), k, tuple(t), tuple(int(c) for c in cs))
            for b, v, p, k, t, cs in rows
        ]

    def recent(
        self, *, since: datetime, budget_id: str = "", limit: int = 100, clients: Collection[str] | None = None
    ) -> list[Alert]:
        """Delivered kinds of alerts (not ``carried``), newest first; of budgets of ``clients`` when given."""
        parameters = {"since": since, "budget_id": budget_id, "limit": limit, "every_client": clients is None,
                      "clients": list(clients or ())}  # fmt: skip
        return [
            Alert.model_validate_json(row[0])
            for row in self._client.query(_LIST_SQL, parameters=parameters).result_rows
        ]

    def deliveries(self, alert_ids: Sequence[str]) -> list[Delivery]:
        if not alert_ids:
            return []
        rows = self._client.query(_DELIVERIES_SQL, parameters={"alert_ids": list(alert_ids)}).result_rows
        return [Delivery(str(a), str(c), int(n), s, str(e), utc_datetime_of(at)) for a, c, n, s, e, at in rows]

    def record_delivery(self, delivery: Delivery) -> None:
        row = (delivery.alert_id, delivery.channel, delivery.attempt, delivery.status, delivery.error, delivery.at)
        columns = ["alert_id", "channel", "attempt", "status", "error", "at"]
        self._client.insert("alert_deliveries", [row], column_names=columns, settings={"async_insert": 0})
