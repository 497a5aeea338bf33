"""The emitter's counters as Prometheus series for its host process: read from ``stats()`` at scrape time, summed
per topic, and prometheus_client imported only when a host asks for them (the producer's base install lacks it)."""

from __future__ import annotations

import gc
import subprocess
import sys
from pathlib import Path

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from usagemeter.producers import UsageEmitter
from usagemeter.producers.metrics import COUNTERS, GAUGES, register

NO_BROKER = "127.0.0.1:1"
KAFKA_CONFIG = {"message.timeout.ms": 1000, "log_level": 0}


def _samples(registry: CollectorRegistry) -> dict[tuple[str, str], float]:
    text = generate_latest(registry).decode()
    return {
        (sample.name, sample.labels.get("topic", "")): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def test_counters_are_read_at_scrape_time_and_summed_per_topic(tmp_path: Path) -> None:
    registry = CollectorRegistry()
    emitters = [
        UsageEmitter(NO_BROKER, topic=topic, client_id="acme", kafka_config=KAFKA_CONFIG, spool_dir=tmp_path / str(i))
        for i, topic in enumerate(["usage.events", "usage.events", "other"])
    ]
    try:
        for emitter in emitters:
            register(emitter, registry)
        for emitter, count in zip(emitters, (2, 3, 1), strict=True):
            for _ in range(count):
                emitter.emit("gpt-4o")
        emitters[2].emit("gpt-4o", imput_tokens=1)  # type: ignore[call-arg]  # refused: counted in failed
        samples = _samples(registry)
    finally:
        for emitter in emitters:
            emitter.close(timeout_s=0.1)
    assert samples[("usagemeter_emitter_emitted_total", "usage.events")] == 5
    assert samples[("usagemeter_emitter_emitted_total", "other")] == 1
    assert samples[("usagemeter_emitter_refused_total", "other")] == 1
    assert samples[("usagemeter_emitter_failed_total", "other")] == 1
    listed = {f"usagemeter_emitter_{name}_total" for name in COUNTERS} | {f"usagemeter_emitter_{n}" for n in GAUGES}
    assert {name for name, topic in samples if topic == "other"} == listed


def test_a_dropped_emitter_is_no_longer_scraped(tmp_path: Path) -> None:
    registry = CollectorRegistry()
    emitter = UsageEmitter(NO_BROKER, topic="gone", kafka_config=KAFKA_CONFIG, spool_dir=tmp_path)
    register(emitter, registry)
    assert ("usagemeter_emitter_emitted_total", "gone") in _samples(registry)
    emitter.close(timeout_s=0.1)
    del emitter
    gc.collect()
    assert ("usagemeter_emitter_emitted_total", "gone") not in _samples(registry)


def test_the_producer_imports_prometheus_client_only_when_asked() -> None:
    script = (
        "import sys\n"
        "import usagemeter.producers, usagemeter.producers.metrics\n"
        "print('prometheus_client' in sys.modules)\n"
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True, timeout=120)
    assert result.stdout.strip() == "False"
