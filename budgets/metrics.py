"""The alerter's Prometheus series: deliveries by channel type and outcome, evaluations and their time.

Labelled by channel type (``log``, ``kafka``, ``webhook``), never by budget, client or webhook URL:
which budget alerted is in ``alert_deliveries`` (``usagemeter alerts``), not in a time series.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Histogram

CHANNEL_TYPES = ("log", "kafka", "webhook")


class AlertMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.sent = Counter(
            "usagemeter_alerts_sent", "Alert deliveries a channel accepted.", ["channel"], registry=registry
        )
        self.failed = Counter(
            "usagemeter_alerts_failed",
            "Alert delivery attempts that failed (retried with back-off until the attempts run out).",
            ["channel"],
            registry=registry,
        )
        self.dead = Counter(
            "usagemeter_alerts_dead", "Alert deliveries given up after the last attempt.", ["channel"],
            registry=registry,
        )  # fmt: skip
        for channel in CHANNEL_TYPES:  # every series exists from the start, at 0
            self.sent.labels(channel)
            self.failed.labels(channel)
            self.dead.labels(channel)
        self.evaluations = Histogram(
            "usagemeter_budget_evaluation_duration_seconds",
            "Time of one budget evaluation (after a flush, a change, or a sweep).",
            ["mode"],
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
            registry=registry,
        )
        self.evaluation_failures = Counter(
            "usagemeter_budget_evaluation_failures", "Budget evaluations that failed (retried at the next wake).",
            registry=registry,
        )  # fmt: skip
