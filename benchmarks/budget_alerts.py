"""Budgets and alerts, three figures, each beside a baseline of the same run:

* ``latency``: event produced -> alert on the alerts topic, at a steady ``--rate`` events/s into a
  4-partition topic, one worker with its alerter (as ``usagemeter worker`` runs them). One requests budget
  with a threshold every ``--step`` requests: the crossing of level k happens at the source when the k-th
  event is produced; its latency is the alert's arrival on the topic minus that moment. Crossings of the
  first ``--warmup-s`` seconds are reported apart (the engine's first inserts, the group's first fetches:
  ``benchmarks/freshness.py`` leaves the same seconds out). Beside it, the worker's flush interval
  (``max_batch_wait_s``), the floor of any design that alerts after a flush.
* ``evaluation``: ``--budgets`` active budgets over ``--clients`` clients (client, user, model, label and
  rolling kinds, several zones), aggregates filled from ``--events`` events; the cost of the per-flush
  evaluation (``Evaluator.evaluate("touched")`` after a flush touching ``--touched`` clients) and of a full
  sweep, against the insert of that flush's block itself (same run, same store).
* ``check``: ``POST /v1/budgets/check`` over HTTP (uvicorn on 127.0.0.1, one keep-alive client), cached and
  uncached (cache TTL 0), against ``GET /healthz`` on the same server: the HTTP floor.

    .venv/bin/python -m benchmarks.budget_alerts --part all
"""

from __future__ import annotations

import argparse
import io
import statistics
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import fastavro
import httpx
import uvicorn
from clickhouse_connect.driver.client import Client
from confluent_kafka import Consumer, Producer

from usagemeter.api import keys
from usagemeter.api.app import create_app
from usagemeter.api.local_admin import key_secret
from usagemeter.api.settings import ApiSettings
from usagemeter.budgets.evaluator import Evaluator
from usagemeter.budgets.model import BudgetSpec, KafkaChannel, Scope, Threshold
from usagemeter.budgets.settings import AlertSettings, BudgetCheckSettings
from usagemeter.budgets.store import BudgetStore
from usagemeter.budgets.watcher import BudgetWatcher
from usagemeter.consumers import migrations, pipeline
from usagemeter.consumers.settings import ClickHouseSettings, KafkaSettings, WorkerSettings
from usagemeter.consumers.store import connect
from usagemeter.consumers.writer import WriteResult
from usagemeter.local.kafka import LocalKafka, create_topic
from usagemeter.pricing import pricebook
from usagemeter.query.key_models import KeyRequest
from usagemeter.schemas import CURRENT
from usagemeter.schemas.clock import SYSTEM_CLOCK
from usagemeter.schemas.registry import alert_schema
from usagemeter.schemas.wire import HEADER_LEN, encode

ZONES = ("UTC", "Asia/Tokyo", "America/New_York", "Asia/Kathmandu", "Pacific/Kiritimati")
PACING_S = 0.01
MODELS = (("openai", "gpt-4o-mini"), ("anthropic", "claude-3-5-haiku-latest"), ("google", "gemini-1.5-flash"))


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))]


def summary(name: str, values: list[float], unit: str = "ms", scale: float = 1000.0) -> str:
    p50, p99 = percentile(values, 0.5) * scale, percentile(values, 0.99) * scale
    return f"{name:>34}: p50 {p50:8.2f} {unit}  p99 {p99:8.2f} {unit}  (n={len(values)})"


def fresh_store(dsn: str) -> tuple[ClickHouseSettings, Client]:
    settings = ClickHouseSettings(dsn=dsn, database=f"bench_{uuid.uuid4().hex[:10]}")
    client = connect(settings)
    migrations.apply(client)
    pricebook.load(client)
    return settings, client


def record(client_id: str, at_us: int, user: int, model: int) -> dict[str, Any]:
    provider, name = MODELS[model % len(MODELS)]
    return {
        "event_id": str(uuid.uuid4()), "event_time": at_us, "client_id": client_id, "user_id": f"u{user}",
        "provider": provider, "model": name, "input_tokens": 1_000 + user, "output_tokens": 200,
        "labels": {"team": f"t{user % 4}"},
    }  # fmt: skip


def latency(dsn: str, rate: int, seconds: float, step: int, wait_s: float, warmup_s: float) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        kafka = LocalKafka(data_dir=Path(tmp) / "kafka", port=0, controller_port=0)
        kafka.start()
        try:
            _latency(kafka.bootstrap_servers, dsn, rate, seconds, step, wait_s, warmup_s)
        finally:
            kafka.stop()


def _latency(bootstrap: str, dsn: str, rate: int, seconds: float, step: int, wait_s: float, warmup_s: float) -> None:
    topic, alerts = f"bench-{uuid.uuid4().hex[:8]}", f"alerts-{uuid.uuid4().hex[:8]}"
    create_topic(bootstrap, topic, partitions=4)
    create_topic(bootstrap, f"{topic}.dlq", partitions=1)
    create_topic(bootstrap, alerts, partitions=1)
    settings, client = fresh_store(dsn)
    total = int(rate * seconds)
    levels = list(range(step, total + 1, step))
    thresholds = tuple(Threshold(amount=Decimal(level)) for level in levels)
    BudgetStore(client).create(
        BudgetSpec(
            scope=Scope(client_id="bench"),
            unit="requests",
            limit=Decimal(total),
            period="rolling",
            rolling_days=1,
            thresholds=thresholds,
            channels=(KafkaChannel(),),
        )
    )
    kafka = KafkaSettings(bootstrap_servers=bootstrap, topic=topic, dlq_topic=f"{topic}.dlq", group_id="bench")
    watcher = BudgetWatcher(connect(settings), connect(settings), AlertSettings(topic=alerts), kafka).start()
    flushes: list[tuple[float, int]] = []  # (when, events in the aggregates by then)

    def flushed(result: WriteResult) -> None:
        flushes.append((time.perf_counter(), (flushes[-1][1] if flushes else 0) + result.inserted))
        watcher.flushed()

    worker = pipeline.build_worker(kafka, WorkerSettings(max_batch_wait_s=wait_s), connect(settings), on_flush=flushed)
    stop = threading.Event()
    running = threading.Thread(target=worker.run, args=(stop,), daemon=True)
    running.start()
    arrivals: dict[str, float] = {}
    reading = threading.Thread(target=_read_alerts, args=(bootstrap, alerts, len(levels), arrivals, stop), daemon=True)
    reading.start()
    time.sleep(5)  # group joins done before the clock starts
    produced = _produce_steadily(bootstrap, topic, total, rate)
    deadline = time.monotonic() + 60
    while len(arrivals) < len(levels) and time.monotonic() < deadline:
        time.sleep(0.2)
    stop.set()
    running.join(30)
    watcher.stop()
    alerted = [level for level in levels if f"abs:{level}" in arrivals]
    warm = produced[0] + warmup_s
    print(f"latency: {total:,} events at {rate:,}/s, {len(levels)} crossings, {len(alerted)} alerted; "
          f"max_batch_wait_s={wait_s}")  # fmt: skip
    for title, chosen in (
        (f"after the first {warmup_s:g} s", [level for level in alerted if produced[level - 1] >= warm]),
        (f"the first {warmup_s:g} s", [level for level in alerted if produced[level - 1] < warm]),
    ):
        print(f"crossings of {title}:")
        _split(chosen, produced, arrivals, flushes)
    print(f"{'flush interval (baseline)':>34}: {wait_s * 1000:8.2f} ms")


def _split(
    levels: list[int], produced: list[float], arrivals: dict[str, float], flushes: list[tuple[float, int]]
) -> None:
    """Prints each crossing's latency and its two parts, split at the commit that made level k visible."""
    if not levels:
        print("  none")
        return
    # (produced, committed, on the topic) of each crossing
    moments = [(produced[k - 1], next(at for at, count in flushes if count >= k), arrivals[f"abs:{k}"]) for k in levels]
    print(summary("event produced -> alert on topic", [on_topic - made for made, _, on_topic in moments]))
    print(summary("  of which produced -> committed", [committed - made for made, committed, _ in moments]))
    print(summary("  of which committed -> on topic", [on_topic - committed for _, committed, on_topic in moments]))


def _produce_steadily(bootstrap: str, topic: str, total: int, rate: int) -> list[float]:
    """Sends ``total`` events at ``rate``/s, those of each ``PACING_S`` tick together (a wake-up per event would
    take the GIL from the worker in this process thousands of times a second); returns when each was handed
    to the producer (perf_counter)."""
    producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 5, "enable.idempotence": True})
    now_us = time.time_ns() // 1000
    encoded = [encode(CURRENT, record("bench", now_us, i % 25, i)) for i in range(total)]
    sent: list[float] = []
    started = time.perf_counter()
    per_tick = max(1, round(rate * PACING_S))
    for tick, first in enumerate(range(0, total, per_tick)):
        time.sleep(max(0.0, started + tick * per_tick / rate - time.perf_counter()))
        for i in range(first, min(first + per_tick, total)):
            producer.produce(topic, encoded[i], str(i).encode())
            sent.append(time.perf_counter())
        producer.poll(0)
    producer.flush(30)
    return sent


def _read_alerts(bootstrap: str, topic: str, expected: int, arrivals: dict[str, float], stop: threading.Event) -> None:
    config = {"bootstrap.servers": bootstrap, "group.id": f"r-{uuid.uuid4()}", "auto.offset.reset": "earliest"}
    consumer = Consumer({**config, "fetch.wait.max.ms": 10})
    consumer.subscribe([topic])
    schema = alert_schema().plain
    while len(arrivals) < expected and not stop.is_set():
        message = consumer.poll(0.05)
        if message is None or message.error():
            continue
        at = time.perf_counter()
        value = message.value() or b""
        alert = fastavro.schemaless_reader(io.BytesIO(value[HEADER_LEN:]), schema, None)
        assert isinstance(alert, dict)
        for threshold in alert["thresholds"]:
            arrivals.setdefault(threshold, at)
    consumer.close()


def evaluation(dsn: str, budgets: int, clients: int, events: int, touched: int, rounds: int) -> None:
    _, client = fresh_store(dsn)
    now = datetime.now(UTC)
    now_us = int(now.timestamp() * 1_000_000)
    _stage(client, [record(f"c{i % clients}", now_us - (i % 500) * 60_000_000, i % 40, i) for i in range(events)])
    store = BudgetStore(client)
    kinds = ("client", "user", "model", "label", "rolling")
    for i in range(budgets):
        kind, who = kinds[i % len(kinds)], f"c{(i // len(kinds)) % clients}"
        scope = {
            "client": Scope(client_id=who), "user": Scope(client_id=who, user_id=f"u{i % 40}"),
            "model": Scope(client_id=who, model=MODELS[i % 3][1]),
            "label": Scope(client_id=who, label_key="team", label_value=f"t{i % 4}"),
            "rolling": Scope(client_id=who),
        }[kind]  # fmt: skip
        period = {"period": "rolling", "rolling_days": 7} if kind == "rolling" else {"period": "month"}
        store.create(BudgetSpec(scope=scope, limit=Decimal(10_000_000), tz=ZONES[i % len(ZONES)], **period))
    evaluator = Evaluator(client)
    evaluator.reload()
    evaluator.evaluate("all")
    flush_times, touched_times, sweep_times, counts = [], [], [], []
    for r in range(rounds):
        block = [record(f"c{(r * touched + j % touched) % clients}", now_us, j % 40, j) for j in range(5_000)]
        started = time.perf_counter()
        _stage(client, block)
        flush_times.append(time.perf_counter() - started)
        started = time.perf_counter()
        counts.append(evaluator.evaluate("touched").budgets)
        touched_times.append(time.perf_counter() - started)
        if r % 5 == 0:
            sweep_times.append(_timed(lambda: evaluator.evaluate("all")))
    print(f"evaluation: {budgets:,} budgets over {clients:,} clients, {events:,} events; flushes of 5,000 events "
          f"touching ~{touched} clients ({statistics.median(counts):.0f} budgets evaluated each)")  # fmt: skip
    print(summary("flush insert (baseline)", flush_times))
    print(summary("evaluate touched (per flush)", touched_times))
    print(summary("evaluate all (sweep)", sweep_times))
    print(f"{'touched / flush (p50)':>34}: {percentile(touched_times, 0.5) / percentile(flush_times, 0.5):.2f}x")


def _stage(client: Client, rows: list[dict[str, Any]]) -> None:
    block = io.BytesIO()
    fastavro.writer(block, CURRENT.plain, rows)
    client.raw_insert("usage_staging", None, block.getvalue(), fmt="Avro",
                      settings={"input_format_avro_allow_missing_fields": 1, "async_insert": 0})  # fmt: skip


def _timed(call: Callable[[], object]) -> float:
    started = time.perf_counter()
    call()
    return time.perf_counter() - started


def check(dsn: str, requests: int) -> None:
    _, client = fresh_store(dsn)
    now_us = int(datetime.now(UTC).timestamp() * 1_000_000)
    _stage(client, [record("acme", now_us - i * 1_000_000, i % 10, i) for i in range(10_000)])
    for user in range(50):
        BudgetStore(client).create(BudgetSpec(scope=Scope(client_id="acme", user_id=f"u{user}"), limit=Decimal(1)))
    BudgetStore(client).create(BudgetSpec(scope=Scope(client_id="acme"), limit=Decimal(1_000_000), mode="hard"))
    body = {"client_id": "acme", "user_id": "u3", "model": "gpt-4o-mini"}
    figures = {}
    for name, ttl in (("cached", 60.0), ("uncached", 0.0)):
        with (
            _serving(client, BudgetCheckSettings(check_cache_ttl_s=ttl)) as (url, key),
            httpx.Client(base_url=url, headers={"authorization": f"Bearer {key}"}) as http,
        ):
            for _ in range(20):
                http.post("/v1/budgets/check", json=body).raise_for_status()
            figures[name] = [_timed(lambda: http.post("/v1/budgets/check", json=body)) for _ in range(requests)]
            figures["healthz"] = [_timed(lambda: http.get("/healthz")) for _ in range(requests)]
    print(f"check: {requests} requests each, 51 budgets of the client, 2 covering the call")
    for name, values in figures.items():
        print(summary(f"{name} over HTTP", values))


@contextmanager
def _serving(client: Client, settings: BudgetCheckSettings) -> Iterator[tuple[str, str]]:
    """The API over ``client`` in a thread, and a key of acme's for it (each request's key check included)."""
    api_settings = ApiSettings()
    app = create_app(lambda: client, check_settings=settings, settings=api_settings)
    key = keys.create(client, key_secret(api_settings), KeyRequest(clients=["acme"]), SYSTEM_CLOCK).key
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_level="error"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{server.servers[0].sockets[0].getsockname()[1]}", key
    finally:
        server.should_exit = True
        thread.join(10)


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--part", choices=("latency", "evaluation", "check", "all"), default="all")
    parser.add_argument("--rate", type=int, default=5_000)
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--warmup-s", type=float, default=10.0)
    parser.add_argument("--step", type=int, default=1_000)
    parser.add_argument("--max-batch-wait-s", type=float, default=WorkerSettings().max_batch_wait_s)
    parser.add_argument("--budgets", type=int, default=10_000)
    parser.add_argument("--clients", type=int, default=2_000)
    parser.add_argument("--events", type=int, default=500_000)
    parser.add_argument("--touched", type=int, default=50)
    parser.add_argument("--rounds", type=int, default=100)
    parser.add_argument("--requests", type=int, default=2_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        dsn = f"chdb:///{tmp}/chdb"
        if args.part in ("latency", "all"):
            latency(dsn, args.rate, args.seconds, args.step, args.max_batch_wait_s, args.warmup_s)
        if args.part in ("evaluation", "all"):
            evaluation(dsn, args.budgets, args.clients, args.events, args.touched, args.rounds)
        if args.part in ("check", "all"):
            check(dsn, args.requests)


if __name__ == "__main__":
    main()
