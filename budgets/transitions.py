"""What one evaluation of one budget decides, from its spend and the ledger's state: pure, no I/O.

Edge-triggered, per threshold: a threshold whose level the spend reached and that is armed fires (all
such thresholds in one ``crossed`` change); a fired threshold whose level the spend fell below again
(a raised limit, a reprice) is ``resolved`` and re-arms with the next crossing number. A new version of a
budget first takes over the previous version's state in the same period (``carried``), so that only a
real move of spend against a level alerts.

Projection (calendar periods only): the trailing run rate is the spend since ``recent_start`` (the last
hour of the period, in whole 15-minute buckets, the current one included) divided by the time since it.
With at least an hour of the period behind and a positive rate, if spend + rate x the time left reaches
the limit before the period ends, one ``projected`` change per period says when.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Final, Literal

from usagemeter.budgets.model import BudgetSpec
from usagemeter.budgets.periods import Window

AlertKind = Literal["crossed", "resolved", "projected", "carried"]
PROJECTED: Final = "projected"
MIN_PROJECTION_SAMPLE: Final = timedelta(hours=1)


@dataclass(slots=True)
class ThresholdState:
    fired: bool = False
    crossing: int = 0
    """The crossing a fire would be, or the one that fired."""


@dataclass(slots=True)
class PeriodState:
    """One (budget, version, period)'s thresholds as the ledger's rows leave them, applied in order."""

    thresholds: dict[str, ThresholdState] = field(default_factory=dict)
    projected: bool = False
    seen: bool = False

    def apply(self, kind: AlertKind, keys: tuple[str, ...], crossings: tuple[int, ...]) -> None:
        self.seen = True
        for key, crossing in zip(keys, crossings, strict=True):
            if key == PROJECTED:
                self.projected = True
            elif kind == "resolved":
                self.thresholds[key] = ThresholdState(False, crossing + 1)
            else:
                self.thresholds[key] = ThresholdState(True, crossing)

    def of(self, key: str) -> ThresholdState:
        return self.thresholds.get(key, ThresholdState())


Levels = tuple[tuple[str, Decimal], ...]
"""A budget's thresholds as (ledger key, spend that crosses it), lowest first."""


def threshold_levels(spec: BudgetSpec) -> Levels:
    """The thresholds' keys and levels: a function of the spec alone, so an evaluator computes it once per
    budget version rather than at every evaluation (the keys' formatting was most of a decision's cost)."""
    return tuple((t.key, t.level(spec.limit)) for t in spec.ordered_thresholds())


@dataclass(frozen=True, slots=True)
class Change:
    kind: AlertKind
    thresholds: tuple[str, ...]
    crossings: tuple[int, ...]
    projected_at: datetime | None = None
    rate_per_hour: Decimal | None = None


def decide(
    spec: BudgetSpec,
    window: Window,
    *,
    spend: Decimal,
    recent: tuple[Decimal, datetime],
    now: datetime,
    state: PeriodState,
    prior: PeriodState | None,
    levels: Levels | None = None,
) -> list[Change]:
    """The changes, in the order to record them; ``recent`` is (spend since, since), ``prior`` the previous
    version's state in this period (None when this version has rows of its own or none came before),
    ``levels`` the spec's ``threshold_levels`` when the caller holds them."""
    changes: list[Change] = []
    if levels is None:
        levels = threshold_levels(spec)
    if prior is not None and not state.seen:
        carried = [(k, prior.of(k).crossing) for k, level in levels if prior.of(k).fired and spend >= level]
        carried += [(PROJECTED, 0)] if prior.projected and spend < spec.limit else []
        undone = [(k, prior.of(k).crossing) for k, level in levels if prior.of(k).fired and spend < level]
        taken_over = [_change("carried", carried)] if carried else []
        taken_over += [_change("resolved", undone)] if undone else []
        for change in taken_over:
            state.apply(change.kind, change.thresholds, change.crossings)
        changes += taken_over
    resolved = [(k, state.of(k).crossing) for k, level in levels if state.of(k).fired and spend < level]
    crossed = [(k, state.of(k).crossing) for k, level in levels if not state.of(k).fired and spend >= level]
    if resolved:
        changes.append(_change("resolved", resolved))
    if crossed:
        changes.append(_change("crossed", crossed))
    projection = _projection(spec, window, spend, recent, now) if not state.projected else None
    if projection is not None:
        changes.append(Change("projected", (PROJECTED,), (0,), *projection))
    return changes


def _change(kind: AlertKind, pairs: list[tuple[str, int]]) -> Change:
    return Change(kind, tuple(k for k, _ in pairs), tuple(c for _, c in pairs))


def _projection(
    spec: BudgetSpec, window: Window, spend: Decimal, recent: tuple[Decimal, datetime], now: datetime
) -> tuple[datetime, Decimal] | None:
    """(when the limit is reached, the rate per hour), or None when it is not reached in this period."""
    recent_spend, since = recent
    if window.next_reset is None or spend >= spec.limit or recent_spend <= 0:
        return None
    if now - window.start < MIN_PROJECTION_SAMPLE or now <= since:
        return None
    per_second = recent_spend / Decimal((now - since).total_seconds())
    seconds_to_limit = (spec.limit - spend) / per_second
    if seconds_to_limit >= Decimal((window.end - now).total_seconds()):
        return None
    return now + timedelta(seconds=float(seconds_to_limit)), (per_second * 3600).quantize(Decimal("0.000001"))
