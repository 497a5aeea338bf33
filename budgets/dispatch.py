"""Delivers ledger alerts to their budgets' channels, retrying with exponential back-off, logging every attempt.

An attempt is recorded in ``alert_deliveries`` after the channel answered: ``delivered``, ``failed`` (with
the reason, tried again after ``backoff_initial_s`` x 2^(attempt - 1), at most ``backoff_max_s``) or
``dead`` after ``max_attempts``. A crash between a channel's answer and its record re-sends that alert at
the next start (``recover``) with the same id, which is what a receiver de-duplicates by; nothing else
is ever sent twice. The channels of an alert are those of the budget version that wrote it.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Final

from usagemeter.budgets.alerts import Alert
from usagemeter.budgets.channels import DeliveryFailed, Senders, channel_name
from usagemeter.budgets.ledger import AlertLedger, Delivery, DeliveryStatus
from usagemeter.budgets.metrics import AlertMetrics
from usagemeter.budgets.model import Channel
from usagemeter.budgets.settings import AlertSettings
from usagemeter.budgets.store import BudgetStore
from usagemeter.schemas.clock import SYSTEM_CLOCK, Clock, utc_datetime
from usagemeter.schemas.errors import BudgetNotFound

log = logging.getLogger("usagemeter.alerts")

RECOVERY_WINDOW: Final = timedelta(days=7)


@dataclass(slots=True)
class _Pending:
    alert: Alert
    name: str
    channel: Channel
    attempts: int
    due: datetime


class Dispatcher:
    def __init__(
        self,
        ledger: AlertLedger,
        store: BudgetStore,
        senders: Senders,
        settings: AlertSettings,
        *,
        clock: Clock = SYSTEM_CLOCK,
        metrics: AlertMetrics | None = None,
    ) -> None:
        self._metrics = metrics
        self._ledger = ledger
        self._store = store
        self._senders = senders
        self._settings = settings
        self._clock = clock
        self._pending: dict[tuple[str, str], _Pending] = {}

    def add(self, alerts: list[Alert]) -> None:
        """Queues every channel of each alert not delivered yet (as the delivery log says)."""
        if not alerts:
            return
        done: dict[tuple[str, str], Delivery] = {}
        for delivery in self._ledger.deliveries([a.alert_id for a in alerts]):
            done[(delivery.alert_id, delivery.channel)] = delivery  # the last attempt of each
        now = self._now()
        for alert in alerts:
            for index, channel in enumerate(self._channels(alert)):
                key = (alert.alert_id, channel_name(index, channel))
                last = done.get(key)
                if key in self._pending or (last is not None and last.status != "failed"):
                    continue
                attempts = last.attempt if last is not None else 0
                self._pending[key] = _Pending(alert, key[1], channel, attempts, now)

    def recover(self) -> None:
        """Queues what a previous process wrote to the ledger but did not finish delivering."""
        self.add(self._ledger.recent(since=self._now() - RECOVERY_WINDOW, limit=100_000))

    def run_due(self) -> float | None:
        """Attempts every delivery that is due; returns the seconds until the next one, None when none waits."""
        now = self._now()
        for key, item in sorted(self._pending.items(), key=lambda kv: kv[1].due):
            if item.due <= now:
                self._attempt(key, item)
        if not self._pending:
            return None
        return max(0.0, (min(p.due for p in self._pending.values()) - self._now()).total_seconds())

    @property
    def waiting(self) -> int:
        return len(self._pending)

    def _attempt(self, key: tuple[str, str], item: _Pending) -> None:
        item.attempts += 1
        try:
            self._senders.send(item.channel, item.alert)
        except DeliveryFailed as exc:
            dead = item.attempts >= self._settings.max_attempts
            self._record(item, "dead" if dead else "failed", str(exc))
            if dead:
                log.error("budget alert %s: %s dead after %d attempts: %s", key[0], key[1], item.attempts, exc)
                del self._pending[key]
            else:
                delay = self._settings.backoff_initial_s * 2 ** (item.attempts - 1)
                item.due = self._now() + timedelta(seconds=min(delay, self._settings.backoff_max_s))
            return
        self._record(item, "delivered", "")
        del self._pending[key]

    def _record(self, item: _Pending, status: DeliveryStatus, error: str) -> None:
        if self._metrics is not None:
            outcome = {"delivered": self._metrics.sent, "failed": self._metrics.failed, "dead": self._metrics.dead}
            outcome[status].labels(item.channel.type).inc()
        self._ledger.record_delivery(
            Delivery(item.alert.alert_id, item.name, item.attempts, status, error, self._now())
        )

    def _channels(self, alert: Alert) -> tuple[Channel, ...]:
        try:
            versions = self._store.history(alert.budget_id)
        except BudgetNotFound:
            return ()
        return next((v.spec.channels for v in versions if v.version == alert.version), ())

    def _now(self) -> datetime:
        return utc_datetime(self._clock.now_us())
