"""What an alert says, and its id.

An alert reports one change of a budget in one period: thresholds ``crossed`` (every threshold one
evaluation found crossed, in one alert), thresholds ``resolved`` (spend fell below them again, after a
raised limit or a reprice; they re-arm), or a ``projected`` overrun. ``carried`` rows are never
delivered: they record that a new version of a budget took over thresholds already crossed under the
previous one, so that a change of a channel or a name does not alert again.

The id is a hash of (budget, version, period start, kind, lowest threshold listed, its crossing number):
two evaluators that report the same crossing give the same id, the ledger keeps one (the id is the
insert's deduplication token), and every channel carries it so a receiver can drop a repeat.
"""

from __future__ import annotations

import hashlib
from datetime import datetime
from decimal import Decimal

from pydantic import AwareDatetime, BaseModel, ConfigDict

from usagemeter.budgets.model import Scope, Unit
from usagemeter.budgets.transitions import AlertKind, Change
from usagemeter.query.models import Money


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True)


class Contributor(_Frozen):
    name: str
    spend: Money


class Alert(_Frozen):
    """The payload every channel delivers (JSON on a webhook, Avro on the topic, a line in the log)."""

    alert_id: str
    kind: AlertKind
    budget_id: str
    version: int
    name: str
    scope: Scope
    period_start: AwareDatetime
    period_end: AwareDatetime
    next_reset: AwareDatetime | None
    tz: str
    unit: Unit
    spend: Money
    limit: Money
    percent: Money
    thresholds: tuple[str, ...]
    """The thresholds this alert is about (``pct:80``, ``abs:25``), lowest first."""
    crossings: tuple[int, ...]
    """For each threshold, how many times it was crossed before in this period and version."""
    projected_at: AwareDatetime | None = None
    """For ``projected``: when the period's spend reaches the limit at its trailing run rate."""
    run_rate_per_hour: Money | None = None
    top_models: tuple[Contributor, ...] = ()
    top_users: tuple[Contributor, ...] = ()
    as_of: AwareDatetime
    """The numbers include every event inserted before this instant."""
    created_at: AwareDatetime

    def summary(self) -> str:
        what = {
            "crossed": f"crossed {', '.join(self.thresholds)}",
            "resolved": f"back below {', '.join(self.thresholds)}",
            "projected": f"projected to reach its limit at {self.projected_at}",
            "carried": "thresholds carried to a new version",
        }[self.kind]
        return (
            f"budget {self.name or self.budget_id} ({self.scope.describe()}): {what}; spend {self.spend} of "
            f"{self.limit} {self.unit} ({self.percent}%) in {self.period_start.isoformat()} .. "
            f"{self.period_end.isoformat()} [{self.tz}]"
        )


def alert_id(budget_id: str, version: int, period_key: datetime, change: Change) -> str:
    first = f"{change.thresholds[0]}|{change.crossings[0]}"
    key = f"{budget_id}|{version}|{period_key.isoformat()}|{change.kind}|{first}"
    return "al_" + hashlib.sha256(key.encode()).hexdigest()[:29]


def percent_of(spend: Decimal, limit: Decimal) -> Decimal:
    return (spend * 100 / limit).quantize(Decimal("0.01"))
