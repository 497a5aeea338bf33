"""Freshness: how long after an event is produced it is visible in ``usage_15m_by_model``, at a steady rate.

A producer thread sends ``--rate`` events a second in ticks of 100 ms, each tick's events under a client
id of their own (``fresh-<tick>``), encoded before the run so that the rate holds. The real worker
(``consumers/worker.py``, shipped settings unless ``--max-batch-wait-s`` says otherwise) runs in this
process, and the main thread asks the aggregate every 20 ms which ticks are complete. A tick's latency is
from the moment its last event was handed to the producer to the first answer that holds all of it.
Ticks of the first ``--warmup-s`` seconds are left out (group join, first insert).

    .venv/bin/python -m benchmarks.freshness --rate 10000 --seconds 60
"""

from __future__ import annotations

import argparse
import itertools
import statistics
import tempfile
import threading
import time
from datetime import timedelta
from pathlib import Path

from confluent_kafka import Producer

from benchmarks.records import simulated_records
from benchmarks.worker_throughput import fresh_database
from usagemeter.consumers.pipeline import build_worker
from usagemeter.consumers.settings import KafkaSettings, WorkerSettings
from usagemeter.local.kafka import LocalKafka, create_topic
from usagemeter.schemas import CURRENT
from usagemeter.schemas.wire import encode

TICK_S = 0.1


def ticks(rate: int, seconds: int) -> list[list[tuple[bytes, bytes]]]:
    """(key, value) of every event, tick by tick; event times are now (the run starts right after)."""
    per_tick = int(rate * TICK_S)
    records = simulated_records(4, per_tick * int(seconds / TICK_S), spread=timedelta(0))
    out: list[list[tuple[bytes, bytes]]] = []
    for tick in range(int(seconds / TICK_S)):
        messages = []
        for record in itertools.islice(records, per_tick):
            record["client_id"] = f"fresh-{tick:06d}"
            messages.append((record["event_id"].encode(), encode(CURRENT, record)))
        out.append(messages)
    return out


def produce(bootstrap: str, topic: str, planned: list[list[tuple[bytes, bytes]]], sent_at: list[float]) -> None:
    # The emitter's own producer settings (producers/emitter.py) where they matter for latency.
    producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 20, "batch.num.messages": 10_000,
                         "compression.type": "lz4"})  # fmt: skip
    began = time.perf_counter()
    for tick, messages in enumerate(planned):
        for key, value in messages:
            producer.produce(topic, value, key)
        producer.poll(0)
        sent_at.append(time.perf_counter())
        time.sleep(max(0.0, began + (tick + 1) * TICK_S - time.perf_counter()))
    producer.flush(30)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rate", type=int, default=10_000, help="events a second")
    parser.add_argument("--seconds", type=int, default=60)
    parser.add_argument("--warmup-s", type=float, default=10.0)
    parser.add_argument("--max-batch-wait-s", type=float, default=WorkerSettings().max_batch_wait_s)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        kafka = LocalKafka(data_dir=Path(tmp) / "kafka", port=0, controller_port=0)
        kafka.start()
        try:
            topic = "bench.fresh"
            create_topic(kafka.bootstrap_servers, topic, partitions=4)
            create_topic(kafka.bootstrap_servers, f"{topic}.dlq", partitions=1)
            client = fresh_database(f"chdb:///{tmp}/chdb")
            settings = KafkaSettings(bootstrap_servers=kafka.bootstrap_servers, topic=topic,
                                     dlq_topic=f"{topic}.dlq", group_id="fresh")  # fmt: skip
            worker = build_worker(settings, WorkerSettings(max_batch_wait_s=args.max_batch_wait_s), client)
            stop = threading.Event()
            running = threading.Thread(target=worker.run, args=(stop,))
            running.start()
            planned = ticks(args.rate, args.seconds)
            sent_at: list[float] = []
            producing = threading.Thread(target=produce, args=(kafka.bootstrap_servers, topic, planned, sent_at))
            producing.start()
            per_tick = len(planned[0])
            seen: dict[int, float] = {}
            deadline = time.perf_counter() + args.seconds + 60
            while len(seen) < len(planned) and time.perf_counter() < deadline:
                rows = client.query(
                    "SELECT client_id, sum(events) FROM usage_15m_by_model WHERE startsWith(client_id, 'fresh-') "
                    "GROUP BY client_id"
                ).result_rows
                now = time.perf_counter()
                for name, count in rows:
                    tick = int(name.removeprefix("fresh-"))
                    if tick not in seen and count == per_tick:
                        seen[tick] = now
                time.sleep(0.02)
            producing.join()
            stop.set()
            running.join()
        finally:
            kafka.stop()
    skip = int(args.warmup_s / TICK_S)
    latencies = sorted(seen[t] - sent_at[t] for t in range(skip, len(planned)) if t in seen)
    missing = len(planned) - skip - len(latencies)
    produced_rate = per_tick * len(sent_at) / (sent_at[-1] - sent_at[0] + TICK_S)
    print(f"rate={args.rate:,}/s (held {produced_rate:,.0f}/s) seconds={args.seconds} "
          f"max_batch_wait_s={args.max_batch_wait_s}")  # fmt: skip
    print(f"ticks measured={len(latencies)} never visible={missing}")
    if latencies:
        p99 = latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))]
        print(f"produce -> visible in usage_15m_by_model: p50 {statistics.median(latencies):.3f} s, "
              f"p99 {p99:.3f} s, max {latencies[-1]:.3f} s")  # fmt: skip


if __name__ == "__main__":
    main()
