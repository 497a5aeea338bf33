"""The alerter beside a worker: two daemon threads, one evaluating budgets, one delivering alerts.

The evaluating thread sleeps until the worker reports a flush (``flushed``: the touched budgets are
evaluated), a budget changes (``changed``: reload, then every budget), or ``sweep_interval_s`` passes
(reload, then every budget: period roll-overs, reprices, inserts a flush did not report). It starts
with a reload and a sweep, so a crossing whose flush was committed just before a crash still alerts.
Flushes that arrive while it evaluates are folded into one next evaluation. The delivering thread sleeps
until alerts arrive or a retry is due, and starts by queueing what a previous process left undelivered.

A failing store is logged and tried again at the next wake; the threads end only when stopped.
"""

from __future__ import annotations

import logging
import threading

from clickhouse_connect.driver.client import Client

from usagemeter.budgets.alerts import Alert
from usagemeter.budgets.channels import Senders
from usagemeter.budgets.dispatch import Dispatcher
from usagemeter.budgets.evaluator import Evaluator
from usagemeter.budgets.ledger import AlertLedger
from usagemeter.budgets.metrics import AlertMetrics
from usagemeter.budgets.settings import AlertSettings
from usagemeter.budgets.spend import Selection
from usagemeter.budgets.store import BudgetStore
from usagemeter.consumers.settings import KafkaSettings
from usagemeter.schemas.clock import SYSTEM_CLOCK, Clock

log = logging.getLogger("usagemeter.alerts")


class BudgetWatcher:
    def __init__(
        self,
        evaluator_client: Client,
        dispatcher_client: Client,
        settings: AlertSettings,
        kafka: KafkaSettings,
        *,
        clock: Clock = SYSTEM_CLOCK,
        metrics: AlertMetrics | None = None,
    ) -> None:
        self._settings = settings
        self._metrics = metrics
        self._clock = clock
        self.evaluator = Evaluator(evaluator_client, clock=clock)
        self._senders = Senders(settings, kafka, clock=clock)
        self._dispatcher = Dispatcher(
            AlertLedger(dispatcher_client), BudgetStore(dispatcher_client, clock=clock), self._senders, settings,
            clock=clock, metrics=metrics,
        )  # fmt: skip
        self._wake = threading.Condition()
        self._flushed = self._changed = False
        self._stopping = False
        self._outbox: list[Alert] = []
        self._deliver = threading.Condition()
        self._threads = [
            threading.Thread(target=self._evaluate_loop, name="usagemeter-budgets", daemon=True),
            threading.Thread(target=self._deliver_loop, name="usagemeter-alerts", daemon=True),
        ]

    def start(self) -> BudgetWatcher:
        for thread in self._threads:
            thread.start()
        return self

    def flushed(self) -> None:
        """A batch was committed: evaluate the budgets it touched (called from the worker's loop)."""
        with self._wake:
            self._flushed = True
            self._wake.notify()

    def changed(self) -> None:
        """A budget was created, changed or deleted, or spend was repriced: evaluate every budget."""
        with self._wake:
            self._changed = True
            self._wake.notify()

    def stop(self, timeout_s: float = 10.0) -> None:
        with self._wake:
            self._stopping = True
            self._wake.notify()
        with self._deliver:
            self._deliver.notify()
        for thread in self._threads:
            thread.join(timeout_s / 2)
        self._senders.close()

    @property
    def alive(self) -> bool:
        return any(thread.is_alive() for thread in self._threads)

    def _evaluate_loop(self) -> None:
        first = True
        while True:
            with self._wake:
                if not first:
                    self._wake.wait_for(lambda: self._stopping or self._flushed or self._changed,
                                        self._settings.sweep_interval_s)  # fmt: skip
                if self._stopping:
                    return
                flushed, changed = self._flushed, self._changed
                self._flushed = self._changed = False
            started = self._clock.monotonic()
            mode: Selection = "all" if first or changed or not flushed else "touched"
            try:
                if mode == "all":
                    self.evaluator.reload()
                alerts = self.evaluator.evaluate(mode).alerts
                first = False
            except Exception:  # the store failed: the next wake tries again
                if self._metrics is not None:
                    self._metrics.evaluation_failures.inc()
                log.exception("budget evaluation failed; trying again at the next flush or sweep")
                continue
            if self._metrics is not None:
                self._metrics.evaluations.labels(mode).observe(self._clock.monotonic() - started)
            if alerts:
                with self._deliver:
                    self._outbox.extend(alerts)
                    self._deliver.notify()

    def _deliver_loop(self) -> None:
        recovered = False
        wait: float | None = None
        while True:
            with self._deliver:
                if recovered:
                    self._deliver.wait_for(lambda: self._stopping or bool(self._outbox), wait)
                if self._stopping:
                    return
                arrived, self._outbox = self._outbox, []
            try:
                if not recovered:
                    self._dispatcher.recover()
                    recovered = True
                self._dispatcher.add(arrived)
                wait = self._dispatcher.run_due()
            except Exception:
                log.exception("alert delivery failed; trying again shortly")
                with self._deliver:
                    self._outbox = arrived + self._outbox
                wait = self._settings.backoff_initial_s
