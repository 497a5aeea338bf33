"""The emitter's counters as Prometheus series, for the service that hosts it: opt-in, imported by name.

``usagemeter.producers`` does not import this module, and this module imports ``prometheus_client`` only
when ``register`` is called, so the base install (confluent-kafka, fastavro, pydantic) stays enough to emit;
a host that wants the series installs ``usagemeter[metrics]`` (or already has prometheus-client)::

    from usagemeter.producers.metrics import register
    register(meter)  # the default registry, which the host's /metrics already serves

The series are read from ``stats()`` at scrape time, so emitting does no metric work at all. Labelled by
topic only: one process may host emitters for several topics; clients and users are never labels.
"""

from __future__ import annotations

import weakref
from collections.abc import Iterator
from typing import TYPE_CHECKING

from usagemeter.producers.emitter import UsageEmitter

if TYPE_CHECKING:
    from prometheus_client import CollectorRegistry
    from prometheus_client.metrics_core import Metric

COUNTERS = {
    "emitted": "emit() calls that produced a message.",
    "delivered": "Messages the broker acknowledged on their first send.",
    "spooled": "Messages written to the on-disk spool (broker down, slow, or closing).",
    "replayed": "Spooled messages sent again and acknowledged.",
    "failed": "Events lost because of what they are (refused at emit(), or refused for good by Kafka).",
    "refused": "Of failed, the events emit() refused before sending.",
    "dropped": "Messages thrown away (spool full, disabled or unwritable, memory queue full, after close()).",
    "spool_corrupt": "Torn or corrupt spool segment tails skipped on replay.",
}
GAUGES = {
    "queued": "Messages waiting in memory for the Kafka client's queue or a spool write.",
    "spool_bytes": "Bytes in the spool directory's segments.",
}


class EmitterCollector:
    """Reads each emitter's ``stats()`` when scraped (``usagemeter_emitter_<counter>_total``, gauges without)."""

    def __init__(self) -> None:
        self._emitters: list[weakref.ref[UsageEmitter]] = []
        """Weak: an emitter the host dropped is no longer scraped, and not kept alive by its metrics."""

    def add(self, emitter: UsageEmitter) -> None:
        self._emitters.append(weakref.ref(emitter))

    def collect(self) -> Iterator[Metric]:
        from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily  # noqa: PLC0415

        alive = [emitter for ref in self._emitters if (emitter := ref()) is not None]
        self._emitters = [weakref.ref(emitter) for emitter in alive]
        totals: dict[str, dict[str, int]] = {}
        for emitter in alive:  # emitters of one topic add up: one series per topic
            stats, per_topic = emitter.stats(), totals.setdefault(emitter.topic, {})
            for name in (*COUNTERS, *GAUGES):
                per_topic[name] = per_topic.get(name, 0) + getattr(stats, name)
        for name, help_text in COUNTERS.items():
            counter = CounterMetricFamily(f"usagemeter_emitter_{name}", help_text, labels=["topic"])
            for topic, values in totals.items():
                counter.add_metric([topic], values[name])
            yield counter
        for name, help_text in GAUGES.items():
            gauge = GaugeMetricFamily(f"usagemeter_emitter_{name}", help_text, labels=["topic"])
            for topic, values in totals.items():
                gauge.add_metric([topic], values[name])
            yield gauge


_collectors: weakref.WeakKeyDictionary[CollectorRegistry, EmitterCollector] = weakref.WeakKeyDictionary()
"""One collector per registry, so several emitters in a process share each series name."""


def register(emitter: UsageEmitter, registry: CollectorRegistry | None = None) -> None:
    """Exposes ``emitter``'s counters on ``registry`` (prometheus_client's default registry when None)."""
    from prometheus_client import REGISTRY  # noqa: PLC0415

    target = registry if registry is not None else REGISTRY
    collector = _collectors.get(target)
    if collector is None:
        collector = _collectors[target] = EmitterCollector()
        target.register(collector)
    collector.add(emitter)

