"""Events/s from Kafka to priced, aggregated rows for one worker process, against two baselines measured
in the same run on the same topic, tables and views:

* ``consume-only``: the ceiling, consuming the topic in large batches and doing nothing else;
* ``decode-and-insert``: a straightforward worker that decodes every event with fastavro and inserts
  columns (clickhouse-connect's column-oriented insert) into the same staging table, so the same views
  price and aggregate;
* ``usagemeter``: the real worker (``consumers/worker.py``): bodies joined into Avro blocks that
  ClickHouse decodes, dedup by key, insert tokens, commit after insert.

Each design reads the whole topic with its own consumer group into its own freshly migrated database.
``--sweep-partitions`` and ``--sweep-batch-rows`` run the real worker again, in the same rounds, on topics
of those partition counts and at those batch sizes: a worker inserts once per partition slice of a batch,
so the engine's fixed cost per insert grows with the partitions it owns.
Each is timed from its first consumed message (group joins excluded). Designs run
interleaved for ``--rounds`` rounds, so a noisy neighbour hurts all of them alike; the
report gives each design's median and the ratios of the medians.

    .venv/bin/python -m benchmarks.worker_throughput --events 400000 --rounds 3
    .venv/bin/python -m benchmarks.worker_throughput --events 400000 --rounds 3 \
        --sweep-partitions 4,16,64 --sweep-batch-rows 20000,100000
"""

from __future__ import annotations

import argparse
import functools
import io
import json
import statistics
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any, cast

from clickhouse_connect.driver.client import Client
from confluent_kafka import Consumer, Producer, TopicPartition
from fastavro import parse_schema, schemaless_reader

from benchmarks.records import simulated_records
from usagemeter.consumers import migrations
from usagemeter.consumers.batch import value_of
from usagemeter.consumers.pipeline import build_worker
from usagemeter.consumers.settings import ClickHouseSettings, KafkaSettings, WorkerSettings
from usagemeter.consumers.store import connect
from usagemeter.local.kafka import LocalKafka, create_topic
from usagemeter.pricing import pricebook
from usagemeter.schemas import CURRENT
from usagemeter.schemas.wire import HEADER_LEN, encode

BATCH = WorkerSettings().max_batch_rows  # the shipped default, for every design
_CONSUMER = {
    "enable.auto.commit": False,
    "auto.offset.reset": "earliest",
    "fetch.max.bytes": 64 << 20,
    "max.partition.fetch.bytes": 16 << 20,
    "queued.max.messages.kbytes": 256 << 10,
}


def produce(bootstrap: str, topic: str, events: int) -> None:
    producer = Producer(
        {
            "bootstrap.servers": bootstrap,
            "linger.ms": 50,
            "batch.num.messages": 10_000,
            "queue.buffering.max.messages": 500_000,
            "compression.type": "lz4",
        }
    )
    # Event times within the last 10 minutes, as a worker keeping up with live traffic sees them.
    for record in simulated_records(1, events, spread=timedelta(minutes=10)):
        producer.produce(topic, encode(CURRENT, record), record["event_id"].encode())
        producer.poll(0)
    assert producer.flush(60) == 0


def consume_only(bootstrap: str, topic: str, events: int, _client: Client) -> float:
    consumer = Consumer({**_CONSUMER, "bootstrap.servers": bootstrap, "group.id": f"ceiling-{uuid.uuid4()}"})
    consumer.subscribe([topic])
    seen, started = 0, 0.0
    while seen < events:
        got = sum(1 for m in consumer.consume(20_000, timeout=1) if m.error() is None)
        if got and not seen:
            started = time.perf_counter()
        seen += got
    elapsed = time.perf_counter() - started
    consumer.close()
    return elapsed


def decode_and_insert(bootstrap: str, topic: str, events: int, client: Client) -> float:
    schema = cast(dict[str, Any], parse_schema(json.loads(CURRENT.json_text)))
    names: list[str] = [f["name"] for f in schema["fields"]]
    consumer = Consumer({**_CONSUMER, "bootstrap.servers": bootstrap, "group.id": f"naive-{uuid.uuid4()}"})
    consumer.subscribe([topic])
    seen, started = 0, 0.0
    while seen < events:
        messages = [m for m in consumer.consume(BATCH, timeout=1) if m.error() is None]
        if not messages:
            continue
        if not seen:
            started = time.perf_counter()
        columns: list[list[Any]] = [[] for _ in names]
        for msg in messages:
            record: Any = schemaless_reader(io.BytesIO(value_of(msg)[HEADER_LEN:]), schema, None)
            for column, name in zip(columns, names, strict=True):
                column.append(record[name])
        client.insert("usage_staging", columns, column_names=names, column_oriented=True, settings={"async_insert": 0})
        last = {cast(int, msg.partition()): cast(int, msg.offset()) for msg in messages}
        consumer.commit(offsets=[TopicPartition(topic, p, o + 1) for p, o in last.items()], asynchronous=False)
        seen += len(messages)
    elapsed = time.perf_counter() - started
    consumer.close()
    return elapsed


def usagemeter_worker(bootstrap: str, topic: str, events: int, client: Client, batch_rows: int = BATCH) -> float:
    settings = KafkaSettings(
        bootstrap_servers=bootstrap, topic=topic, dlq_topic=f"{topic}.dlq", group_id=f"um-{uuid.uuid4()}"
    )
    worker = build_worker(settings, WorkerSettings(max_batch_rows=batch_rows), client)
    stop = threading.Event()
    thread = threading.Thread(target=worker.run, args=(stop,))
    thread.start()
    while not worker.totals["consumed"]:
        time.sleep(0.001)
    started = time.perf_counter()
    while worker.totals["inserted"] < events:
        time.sleep(0.001)
    elapsed = time.perf_counter() - started
    stop.set()
    thread.join()
    return elapsed


DESIGNS: dict[str, Callable[[str, str, int, Client], float]] = {
    "consume-only": consume_only,
    "decode-and-insert": decode_and_insert,
    "usagemeter": usagemeter_worker,
}


def fresh_database(dsn: str) -> Client:
    client = connect(ClickHouseSettings(dsn=dsn, database=f"bench_{uuid.uuid4().hex[:10]}"))
    migrations.apply(client)
    pricebook.load(client)
    return client


def _counts(text: str) -> list[int]:
    return [int(item) for item in text.split(",") if item]


def topic_of(bootstrap: str, partitions: int, events: int) -> str:
    topic = f"bench.events.p{partitions}"
    create_topic(bootstrap, topic, partitions=partitions)
    create_topic(bootstrap, f"{topic}.dlq", partitions=1)
    produce(bootstrap, topic, events)
    return topic


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=400_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--sweep-partitions", type=_counts, default=[], help="e.g. 4,16,64")
    parser.add_argument("--sweep-batch-rows", type=_counts, default=[], help="e.g. 20000,100000")
    parser.add_argument("--designs", default=",".join(DESIGNS), help="a subset, e.g. usagemeter (to profile it)")
    args = parser.parse_args()
    sweep = []
    if args.sweep_partitions or args.sweep_batch_rows:
        sweep = [(p, b) for p in args.sweep_partitions or [4] for b in args.sweep_batch_rows or [BATCH]]
    with tempfile.TemporaryDirectory() as tmp:
        kafka = LocalKafka(data_dir=Path(tmp) / "kafka", port=0, controller_port=0)
        kafka.start()
        try:
            bootstrap = kafka.bootstrap_servers
            topics = {p: topic_of(bootstrap, p, args.events) for p in sorted({4, *(p for p, _ in sweep)})}
            dsn = f"chdb:///{tmp}/chdb"
            runs: dict[str, Callable[[Client], float]] = {
                name: functools.partial(DESIGNS[name], bootstrap, topics[4], args.events)
                for name in args.designs.split(",")
            }
            for partitions, batch_rows in sweep:
                run = functools.partial(usagemeter_worker, bootstrap, topics[partitions], args.events)
                runs[f"usagemeter p={partitions} batch={batch_rows}"] = functools.partial(run, batch_rows=batch_rows)
            rates: dict[str, list[float]] = {name: [] for name in runs}
            for _ in range(args.rounds):
                for name, timed in runs.items():
                    client = fresh_database(dsn)
                    rates[name].append(args.events / timed(client))
                    if name != "consume-only":
                        got = client.query("SELECT sum(events) FROM usage_15m_by_model").result_rows[0][0]
                        assert got == args.events, (name, got)
                    client.command("DROP DATABASE {db:Identifier} SYNC", parameters={"db": client.database})
        finally:
            kafka.stop()
    median = {name: statistics.median(values) for name, values in rates.items()}
    print(f"events={args.events} rounds={args.rounds}")
    for name, values in rates.items():
        print(f"{name:>34}: median {median[name]:>10,.0f} events/s  (runs: {', '.join(f'{v:,.0f}' for v in values)})")
    if set(DESIGNS) <= set(median):
        print(f"usagemeter / decode-and-insert = {median['usagemeter'] / median['decode-and-insert']:.2f}x")
        print(f"usagemeter / consume-only      = {median['usagemeter'] / median['consume-only']:.0%}")
    for partitions, batch_rows in sweep:
        name = f"usagemeter p={partitions} batch={batch_rows}"
        print(f"{name} / usagemeter (p=4, batch={BATCH}) = {median[name] / median['usagemeter']:.0%}")


if __name__ == "__main__":
    main()
