"""The caller's cost of ``UsageEmitter.emit()`` against raw ``Producer.produce()`` of the same events
pre-encoded, in the same run against a real broker, designs interleaved round by round:

* ``raw-produce``: the floor, confluent-kafka's ``produce(topic, value, key)`` of bytes encoded beforehand;
* ``emit``: ``UsageEmitter.emit(model, **fields)`` as shipped, its background thread running;
* ``encode-fastavro`` / ``encode-specialised``: the record → single-object bytes step alone, fastavro's
  generic ``schemaless_writer`` (the baseline, still the fallback) against ``schemas/encoder.py``;
* ``id-uuid4`` / ``id-pooled``: ``str(uuid.uuid4())`` (the baseline) against ``producers/ids.py``.

Per call: p50/p99/p99.9 of ``perf_counter_ns`` around each call; events/s from one thread (the timed
loop's wall time); CPU per event (process CPU time over the loop and the flush after it, so the
emitter's background thread and librdkafka's threads are included; the broker is another process).
The events are ``producers/simulation.py``'s, without ``event_time`` (a live service lets the emitter
stamp it).

    .venv/bin/python -m benchmarks.emit_latency --events 50000 --rounds 3
"""

from __future__ import annotations

import argparse
import random
import statistics
import tempfile
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from confluent_kafka import Producer

from usagemeter.local.kafka import LocalKafka, create_topic
from usagemeter.producers.emitter import _PRODUCER_DEFAULTS, UsageEmitter
from usagemeter.producers.ids import new_event_id
from usagemeter.producers.simulation import simulated_calls
from usagemeter.schemas import CURRENT
from usagemeter.schemas.encoder import encode_event
from usagemeter.schemas.wire import encode

TOPIC = "bench.emit"
Call = tuple[str, dict[str, Any]]


@dataclass
class Run:
    """One design's figures over the rounds."""

    latencies_ns: list[int] = field(default_factory=list)
    wall_s: float = 0.0
    cpu_s: float = 0.0
    events: int = 0


def calls(events: int) -> list[Call]:
    out = []
    for call in simulated_calls(random.Random(1), events):
        fields = {k: v for k, v in call.items() if k not in ("model", "event_time")}
        out.append((call["model"], fields))
    return out


def records(work: list[Call]) -> list[dict[str, Any]]:
    now_us = time.time_ns() // 1000
    return [{**fields, "model": model, "event_id": str(uuid.uuid4()), "event_time": now_us} for model, fields in work]


def timed(run: Run, n: int, step: Callable[[int], object], settle: Callable[[], object]) -> None:
    """Times ``step(i)`` for each i, then ``settle()`` untimed but inside the CPU figure."""
    lat = [0] * n
    clock = time.perf_counter_ns
    cpu0, wall0 = time.process_time(), time.perf_counter()
    for i in range(n):
        t0 = clock()
        step(i)
        lat[i] = clock() - t0
    run.wall_s += time.perf_counter() - wall0
    settle()
    run.cpu_s += time.process_time() - cpu0
    run.latencies_ns += lat
    run.events += n


def design_raw(bootstrap: str, work: list[Call], recs: list[dict[str, Any]], run: Run) -> None:
    producer = Producer({**_PRODUCER_DEFAULTS, "bootstrap.servers": bootstrap})
    keys = [r["event_id"].encode() for r in recs]
    values = [encode(CURRENT, r) for r in recs]
    produce = producer.produce
    producer.flush(10)  # connected before timing, as the emitter's producer is

    def settle() -> None:
        assert producer.flush(60) == 0

    timed(run, len(recs), lambda i: produce(TOPIC, values[i], keys[i]), settle)


def design_emit(bootstrap: str, work: list[Call], recs: list[dict[str, Any]], run: Run) -> None:
    with tempfile.TemporaryDirectory() as spool:
        meter = UsageEmitter(bootstrap, topic=TOPIC, client_id="bench", spool_dir=spool)
        meter.emit("warm-up", input_tokens=1)
        assert meter.flush(30) == 0
        emit = meter.emit

        def settle() -> None:
            assert meter.flush(60) == 0

        timed(run, len(work), lambda i: emit(work[i][0], **work[i][1]), settle)
        meter.close()
        stats = meter.stats()
        assert stats.delivered == stats.emitted and not stats.failed, stats


def design_encode_fastavro(bootstrap: str, work: list[Call], recs: list[dict[str, Any]], run: Run) -> None:
    timed(run, len(recs), lambda i: encode(CURRENT, recs[i]), lambda: None)


def design_encode_specialised(bootstrap: str, work: list[Call], recs: list[dict[str, Any]], run: Run) -> None:
    timed(run, len(recs), lambda i: encode_event(recs[i]), lambda: None)


def design_id_uuid4(bootstrap: str, work: list[Call], recs: list[dict[str, Any]], run: Run) -> None:
    uuid4 = uuid.uuid4
    timed(run, len(recs), lambda i: str(uuid4()), lambda: None)


def design_id_pooled(bootstrap: str, work: list[Call], recs: list[dict[str, Any]], run: Run) -> None:
    timed(run, len(recs), lambda i: new_event_id(), lambda: None)


DESIGNS: dict[str, Callable[[str, list[Call], list[dict[str, Any]], Run], None]] = {
    "raw-produce": design_raw,
    "emit": design_emit,
    "encode-fastavro": design_encode_fastavro,
    "encode-specialised": design_encode_specialised,
    "id-uuid4": design_id_uuid4,
    "id-pooled": design_id_pooled,
}


def quantile_us(values: list[int], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] / 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=50_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--designs", default=",".join(DESIGNS), help=f"comma-separated, of: {', '.join(DESIGNS)}")
    args = parser.parse_args()
    chosen = [name.strip() for name in args.designs.split(",")]
    work = calls(args.events)
    runs = {name: Run() for name in chosen}
    with tempfile.TemporaryDirectory() as tmp:
        kafka = LocalKafka(data_dir=Path(tmp) / "kafka", port=0, controller_port=0)
        kafka.start()
        try:
            create_topic(kafka.bootstrap_servers, TOPIC, partitions=4)
            for _ in range(args.rounds):
                recs = records(work)
                for name in chosen:
                    DESIGNS[name](kafka.bootstrap_servers, work, recs, runs[name])
        finally:
            kafka.stop()
    print(f"events={args.events} rounds={args.rounds}")
    print(f"{'design':>19} {'p50 µs':>8} {'p99 µs':>8} {'p99.9 µs':>9} {'events/s':>10} {'CPU µs/event':>13}")
    p50 = {}
    for name, run in runs.items():
        p50[name] = quantile_us(run.latencies_ns, 0.5)
        print(
            f"{name:>19} {p50[name]:>8.2f} {quantile_us(run.latencies_ns, 0.99):>8.2f}"
            f" {quantile_us(run.latencies_ns, 0.999):>9.2f} {run.events / run.wall_s:>10,.0f}"
            f" {run.cpu_s / run.events * 1e6:>13.2f}"
        )
    if "emit" in p50 and "raw-produce" in p50:
        print(f"emit / raw-produce p50 = {p50['emit'] / p50['raw-produce']:.2f}x")
    print(f"(statistics over {statistics.mean(r.events for r in runs.values()):,.0f} calls per design)")


if __name__ == "__main__":
    main()
