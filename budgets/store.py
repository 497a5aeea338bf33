"""Budgets in ClickHouse, versioned: ``create``, ``update`` and ``delete`` each add a row; nothing is rewritten.

The current version of a budget is its highest one (``LIMIT 1 BY``); a deleted budget's last row says
so and its history stays readable with ``history``. Run changes one at a time per budget: two updates of
one budget at the same instant would both take the next version number (the later read wins).
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any, Final

from clickhouse_connect.driver.client import Client

from usagemeter.budgets.model import Budget, BudgetPatch, BudgetSpec
from usagemeter.schemas.clock import SYSTEM_CLOCK, Clock, utc_datetime
from usagemeter.schemas.errors import BudgetNotFound

_COLUMNS: Final = (
    "budget_id", "version", "changed_at", "deleted", "scope", "client_id", "user_id", "provider", "model",
    "label_key", "label_value", "spec_key", "definition",
)  # fmt: skip

_CURRENT_SQL: Final = """
SELECT budget_id, version, changed_at, deleted, definition
FROM budget_versions
WHERE {budget_id:String} = '' OR budget_id = {budget_id:String}
ORDER BY budget_id, version DESC
LIMIT 1 BY budget_id
"""

_HISTORY_SQL: Final = """
SELECT budget_id, version, changed_at, deleted, definition
FROM budget_versions
WHERE budget_id = {budget_id:String}
ORDER BY version
"""


class BudgetStore:
    def __init__(self, client: Client, *, clock: Clock = SYSTEM_CLOCK) -> None:
        self._client = client
        self._clock = clock

    def create(self, spec: BudgetSpec) -> Budget:
        """A new budget; a name, when given, must not be another current budget's (names stand in for ids)."""
        if spec.name and any(b.spec.name == spec.name for b in self.current()):
            raise ValueError(f"name: a budget named {spec.name!r} exists already")
        budget = Budget(budget_id=f"b_{uuid.uuid4().hex[:12]}", version=1, changed_at=self._now(), spec=spec)
        self._write(budget)
        return budget

    def update(self, budget_id: str, patch: BudgetPatch) -> Budget:
        current = self.get(budget_id)
        if patch.name and any(b.spec.name == patch.name and b.budget_id != current.budget_id for b in self.current()):
            raise ValueError(f"name: a budget named {patch.name!r} exists already")
        budget = Budget(
            budget_id=current.budget_id,
            version=current.version + 1,
            changed_at=self._now(),
            spec=patch.apply(current.spec),
        )
        self._write(budget)
        return budget

    def delete(self, budget_id: str) -> Budget:
        current = self.get(budget_id)
        budget = current.model_copy(update={"version": current.version + 1, "changed_at": self._now(), "deleted": True})
        self._write(budget)
        return budget

    def get(self, budget_id: str) -> Budget:
        """The current version of the budget with this id or name; ``BudgetNotFound`` when there is none."""
        found = self._read(_CURRENT_SQL, budget_id)
        if found and not found[0].deleted:
            return found[0]
        named = [b for b in self.current() if b.spec.name == budget_id]
        if not named:
            raise BudgetNotFound(f"no budget {budget_id!r}: `usagemeter budgets list` shows the budgets")
        return named[0]

    def history(self, budget_id: str) -> list[Budget]:
        """Every version, the deleted budgets' included (by id; by name for a current budget)."""
        versions = self._read(_HISTORY_SQL, budget_id) or self._read(_HISTORY_SQL, self.get(budget_id).budget_id)
        if not versions:
            raise BudgetNotFound(f"no budget {budget_id!r}: `usagemeter budgets list` shows the budgets")
        return versions

    def current(self, *, client_id: str | None = None) -> list[Budget]:
        """Every budget not deleted (of one client when given), by id."""
        budgets = [b for b in self._read(_CURRENT_SQL, "") if not b.deleted]
        return [b for b in budgets if client_id is None or b.spec.scope.client_id == client_id]

    def _read(self, sql: str, budget_id: str) -> list[Budget]:
        rows = self._client.query(sql, parameters={"budget_id": budget_id}).result_rows
        return [_budget(row) for row in rows]

    def _write(self, budget: Budget) -> None:
        scope = budget.spec.scope
        row: Sequence[Any] = (
            budget.budget_id,
            budget.version,
            budget.changed_at,
            int(budget.deleted),
            scope.kind,
            scope.client_id,
            scope.user_id or "",
            scope.provider or "",
            scope.model or "",
            scope.label_key or "",
            scope.label_value or "",
            budget.spec.spec_key,
            budget.spec.model_dump_json(),
        )
        self._client.insert("budget_versions", [row], column_names=list(_COLUMNS), settings={"async_insert": 0})

    def _now(self) -> datetime:
        return utc_datetime(self._clock.now_us())


def _budget(row: Sequence[Any]) -> Budget:
    budget_id, version, changed_at, deleted, definition = row
    return Budget(
        budget_id=str(budget_id),
        version=int(version),
        changed_at=utc_datetime_of(changed_at),
        deleted=bool(deleted),
        spec=BudgetSpec.model_validate_json(definition),
    )


def utc_datetime_of(value: datetime) -> datetime:
    """ClickHouse's DateTime64('UTC') as an aware datetime (the driver may return it naive)."""
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)
