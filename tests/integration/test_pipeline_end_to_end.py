"""Emit → Kafka → worker → ClickHouse, on the real broker and the real engine: the aggregates equal
exactly what was emitted, per client and per model, and every bad message is in the dead-letter topic
with the right reason."""

from __future__ import annotations

import random
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any, cast

import pytest
from clickhouse_connect.driver.client import Client
from confluent_kafka import Consumer, Producer
from genai_prices import Usage, calc_price

from tests.bad_inputs import one_of_each
from tests.fixtures.workers import run_until
from usagemeter.consumers.pipeline import build_worker
from usagemeter.consumers.settings import KafkaSettings, WorkerSettings
from usagemeter.pricing import pricebook
from usagemeter.producers import EventFields, UsageEmitter
from usagemeter.schemas import by_version
from usagemeter.schemas.wire import encode

pytestmark = [pytest.mark.kafka, pytest.mark.clickhouse]

MODELS = [
    ("openai", "gpt-4o-mini"),
    ("openai", "gpt-4o"),
    ("openai", "o3-mini"),
    ("anthropic", "claude-3-5-haiku-latest"),
    ("anthropic", "claude-sonnet-4-0"),
    ("mistral", "mistral-large"),
]
CLIENTS = ["acme", "globex", "initech", "umbrella"]
GOOD_EVENTS = 10_200
OLD_SCHEMA_EVENTS = 300


def _usage(rng: random.Random, provider: str) -> dict[str, int]:
    inp = rng.randint(1, 20_000)
    out = rng.randint(0, 4_000)
    fields = {"input_tokens": inp, "output_tokens": out}
    if rng.random() < 0.4:
        fields["cache_read_tokens"] = rng.randint(0, inp // 2)
    if provider == "anthropic" and rng.random() < 0.3:
        fields["cache_write_tokens"] = rng.randint(0, inp // 3)
    return fields


def _expected_cost(provider: str | None, model: str, usage: dict[str, int], at: datetime) -> Decimal:
    """genai-prices' own price; without a provider, genai-prices resolves it from the model as the engine must."""
    priced = calc_price(Usage(**usage), model, provider_id=provider, genai_request_timestamp=at)
    return priced.total_price


def test_emitted_events_equal_aggregates_and_bad_ones_are_dead_lettered(
    clickhouse: Client, kafka_broker: Any, kafka_topic: Callable[..., str], tmp_path: Path
) -> None:
    rng = random.Random(6)
    topic, dlq_topic = kafka_topic(partitions=4), kafka_topic(partitions=1)
    pricebook.load(clickhouse)
    expected: dict[tuple[str, str, str], Counter[str]] = defaultdict(Counter)
    expected_cost: dict[tuple[str, str, str], Decimal] = defaultdict(Decimal)
    now = datetime.now(UTC)

    def account(
        client: str, provider: str, model: str, usage: dict[str, int], at: datetime, given: bool = True
    ) -> None:
        key = (client, provider, model)
        expected[key]["events"] += 1
        expected[key].update(usage)
        expected_cost[key] += _expected_cost(provider if given else None, model, usage, at)

    with UsageEmitter(
        kafka_broker.bootstrap_servers, topic=topic, service="test", spool_dir=tmp_path / "spool"
    ) as meter:
        for _ in range(GOOD_EVENTS):
            client, (provider, model) = rng.choice(CLIENTS), rng.choice(MODELS)
            at = now - timedelta(seconds=rng.randint(0, 30 * 86_400))
            usage = _usage(rng, provider)
            given = rng.random() > 0.1  # one event in ten leaves the provider to the pipeline
            fields = cast(EventFields, {"user_id": f"u{rng.randint(1, 12)}", "event_time": at, **usage})
            if given:
                fields["provider"] = provider
            meter.emit(model, client_id=client, **fields)
            account(client, provider, model, usage, at, given)
        assert meter.flush(30) == 0
        assert meter.stats().failed == 0

    raw = Producer({"bootstrap.servers": kafka_broker.bootstrap_servers, "enable.idempotence": True})
    v1 = by_version(1)
    for _ in range(OLD_SCHEMA_EVENTS):
        client, (provider, model) = rng.choice(CLIENTS), rng.choice(MODELS)
        usage = _usage(rng, provider)
        event_id = str(uuid.uuid4())
        record = {
            "event_id": event_id,
            "event_time": time.time_ns() // 1000,
            "client_id": client,
            "model": model,
            "provider": provider,
            **usage,
        }
        raw.produce(topic, encode(v1, record), event_id.encode())
        account(client, provider, model, usage, datetime.now(UTC))
    bad = one_of_each(time.time_ns() // 1000)
    for value, _reason in bad:
        raw.produce(topic, value, uuid.uuid4().bytes)
    assert raw.flush(30) == 0

    total = GOOD_EVENTS + OLD_SCHEMA_EVENTS + len(bad)
    worker = build_worker(
        KafkaSettings(
            bootstrap_servers=kafka_broker.bootstrap_servers, topic=topic, dlq_topic=dlq_topic, group_id=f"g-{topic}"
        ),
        WorkerSettings(max_batch_rows=4_000, max_batch_wait_s=0.5),
        clickhouse,
    )
    run_until(worker, lambda: worker.totals["inserted"] + worker.totals["dead_lettered"] >= total, 120, join_s=60)
    assert worker.totals == {**worker.totals, "inserted": GOOD_EVENTS + OLD_SCHEMA_EVENTS, "dead_lettered": len(bad)}

    rows = clickhouse.query(
        "SELECT client_id, provider, model, sum(events), sum(input_tokens), sum(output_tokens), "
        "sum(cache_read_tokens), sum(cache_write_tokens), sum(cost_total) "
        "FROM usage_15m_by_model GROUP BY client_id, provider, model"
    ).result_rows
    actual = {
        (c, p, m): (
            Counter(
                {"events": n, "input_tokens": i, "output_tokens": o, "cache_read_tokens": cr, "cache_write_tokens": cw}
            ),
            cost,
        )
        for c, p, m, n, i, o, cr, cw, cost in rows
    }
    assert set(actual) == set(expected)
    for key, counts in expected.items():
        got_counts, got_cost = actual[key]
        assert +got_counts == +counts, key
        assert got_cost == expected_cost[key], key

    by_user = clickhouse.query("SELECT sum(events), sum(cost_total) FROM usage_15m_by_user").result_rows[0]
    assert by_user == (GOOD_EVENTS + OLD_SCHEMA_EVENTS, sum(expected_cost.values()))

    consumer = Consumer(
        {
            "bootstrap.servers": kafka_broker.bootstrap_servers,
            "group.id": f"dlq-{dlq_topic}",
            "auto.offset.reset": "earliest",
        }
    )
    consumer.subscribe([dlq_topic])
    dead: dict[bytes, str] = {}
    deadline = time.monotonic() + 30
    while len(dead) < len(bad) and time.monotonic() < deadline:
        for msg in consumer.consume(100, timeout=1):
            if msg.error() is None:
                headers = dict(cast(list[tuple[str, bytes]], msg.headers() or []))
                assert headers["usagemeter.topic"] == topic.encode()
                assert int(headers["usagemeter.offset"]) >= 0
                dead[cast(bytes, msg.value())] = headers["usagemeter.reason"].decode()
    consumer.close()
    assert dead == {value: reason for value, reason in bad}
