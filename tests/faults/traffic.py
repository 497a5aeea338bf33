"""Traffic for the fault suite: unique usage events, some sent twice, and the aggregates they must give.

Events are encoded as producers encode them (``wire.encode`` with the current writer schema, keyed by
``event_id``). The expected aggregates are computed twice, independently of the run under test: token
and event counts in Python, and costs by the same engine pricing each unique event exactly once
(``reference_aggregates``), so that any loss or double count shows as a difference.
"""

from __future__ import annotations

import heapq
import json
import logging
import random
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

from clickhouse_connect.driver.client import Client
from confluent_kafka import Consumer, KafkaException, Producer, TopicPartition

from usagemeter.consumers.sink import ClickHouseSink
from usagemeter.schemas import CURRENT
from usagemeter.schemas.wire import HEADER_LEN, encode

log = logging.getLogger(__name__)
_REPO = Path(__file__).resolve().parents[2]
CLIENTS = ("acme", "globex", "initech", "umbrella")
MODELS = (("openai", "gpt-4o-mini"), ("anthropic", "claude-3-5-haiku-latest"), ("google", "gemini-1.5-flash"))
TOKEN_KINDS = ("input_tokens", "output_tokens", "cache_read_tokens", "cache_write_tokens", "reasoning_tokens")

AGGREGATES_SQL = (
    "SELECT client_id, model, sum(events), sum(requests), sum(input_tokens), sum(output_tokens),"
    " sum(cache_read_tokens), sum(cache_write_tokens), sum(reasoning_tokens), toString(sum(cost_total))"
    " FROM {table:Identifier} GROUP BY client_id, model ORDER BY client_id, model"
)
"""Per (client, model): every count the invoice depends on; the cost as an exact decimal string."""


@dataclass(frozen=True, slots=True)
class Event:
    key: bytes
    value: bytes
    client: str
    model: str
    tokens: tuple[int, ...]


def events(count: int, seed: int) -> list[Event]:
    rng = random.Random(seed)
    now_us = time.time_ns() // 1000
    made = []
    for _ in range(count):
        client, (provider, model) = rng.choice(CLIENTS), rng.choice(MODELS)
        input_tokens = rng.randint(1, 20_000)
        cache_read = rng.randint(0, input_tokens // 2)
        output = rng.randint(1, 4_000)
        record = {
            "event_id": str(uuid.uuid4()),
            "event_time": now_us - rng.randint(0, 3 * 86_400_000_000),
            "client_id": client,
            "user_id": f"u{rng.randint(1, 20)}",
            "provider": provider,
            "model": model,
            "input_tokens": input_tokens,
            "cache_read_tokens": cache_read,
            "cache_write_tokens": rng.choice((0, 0, 0, min(500, input_tokens - cache_read))),
            "output_tokens": output,
            "reasoning_tokens": rng.choice((0, output // 3)),
        }
        made.append(
            Event(
                str(record["event_id"]).encode(),
                encode(CURRENT, record),
                client,
                model,
                tuple(int(record[kind]) for kind in TOKEN_KINDS),  # type: ignore[call-overload]
            )
        )
    return made


def with_resends(unique: list[Event], share: float, seed: int) -> list[Event]:
    """The stream producers send: every event once, in order, and ``share`` of them again a little later
    (the same bytes and key, as a producer retrying after a timeout or an application re-emitting)."""
    rng = random.Random(seed)
    stream: list[Event] = []
    later: list[tuple[int, int, Event]] = []  # a heap of (due position, tie-break, event)
    for i, event in enumerate(unique):
        stream.append(event)
        if rng.random() < share:
            heapq.heappush(later, (i + rng.randint(1, 50_000), i, event))
        while later and later[0][0] <= i:
            stream.append(heapq.heappop(later)[2])
    stream.extend(heapq.heappop(later)[2] for _ in range(len(later)))
    return stream


def produce(bootstrap: str, topic: str, stream: list[Event], duration_s: float) -> None:
    """Sends ``stream`` spread evenly over about ``duration_s``, so that faults land while it flows."""
    producer = Producer(
        {"bootstrap.servers": bootstrap, "enable.idempotence": True, "linger.ms": 20, "log.connection.close": False}
    )
    started = time.monotonic()
    step = max(1, len(stream) // 200)
    for i in range(0, len(stream), step):
        for event in stream[i : i + step]:
            while True:
                try:
                    producer.produce(topic, event.value, event.key)
                    break
                except BufferError:
                    producer.poll(0.05)
        producer.poll(0)
        ahead = started + duration_s * (i + step) / len(stream) - time.monotonic()
        if ahead > 0:
            time.sleep(ahead)
    if producer.flush(60):
        raise RuntimeError("the producer could not deliver every event")


def expected_counts(unique: list[Event]) -> dict[tuple[str, str], list[int]]:
    """Per (client, model): events, requests, then each of TOKEN_KINDS, from the events themselves."""
    totals: dict[tuple[str, str], list[int]] = {}
    for event in unique:
        row = totals.setdefault((event.client, event.model), [0] * (2 + len(TOKEN_KINDS)))
        row[0] += 1
        row[1] += 1
        for i, count in enumerate(event.tokens):
            row[2 + i] += count
    return totals


def reference_aggregates(client: Client, unique: list[Event]) -> dict[tuple[str, str], list[Any]]:
    """Aggregates of ``unique`` inserted once each into a fresh store (``client``, price book loaded)."""
    chunk = 100_000
    for start in range(0, len(unique), chunk):
        bodies = [event.value[HEADER_LEN:] for event in unique[start : start + chunk]]
        ClickHouseSink(client).insert(CURRENT, bodies, f"reference|{start}")
    return aggregates(client, "usage_15m_by_user")


def aggregates(client: Client, table: str) -> dict[tuple[str, str], list[Any]]:
    rows = client.query(AGGREGATES_SQL, parameters={"table": table}).result_rows
    return {(str(r[0]), str(r[1])): [*(int(x) for x in r[2:9]), Decimal(r[9])] for r in rows}


def aggregates_in_process(dsn: str, database: str) -> dict[str, Any]:
    """Reads a chDB directory in a new process (chDB allows one data directory per process)."""
    script = f"""
import json, sys
from usagemeter.consumers.settings import ClickHouseSettings
from usagemeter.consumers.store import connect
from tests.faults.traffic import aggregates
client = connect(ClickHouseSettings(dsn={dsn!r}, database={database!r}))
out = {{}}
for table in ("usage_15m_by_user", "usage_15m_by_model"):
    out[table] = [[*k, *(str(x) for x in v)] for k, v in aggregates(client, table).items()]
counted = client.query("SELECT count(), uniqExact(event_id) FROM usage_events").result_rows[0]
out["events"], out["distinct_ids"] = counted
json.dump(out, sys.stdout)
"""
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=300, check=False, cwd=_REPO
    )
    if done.returncode:
        raise RuntimeError(done.stderr[-3000:])
    return dict(json.loads(done.stdout))


def as_rows(table: dict[tuple[str, str], list[Any]]) -> list[list[str]]:
    return [[*k, *(str(x) for x in v)] for k, v in table.items()]


def lag(bootstrap: str, topic: str, group: str, partitions: int) -> int:
    """Messages ``group`` has not committed yet, over every partition (read without joining the group)."""
    for _ in range(30):
        try:
            return _lag(bootstrap, topic, group, partitions)
        except KafkaException as exc:  # the group coordinator moving or loading: ask again
            log.info("lag: %s", exc)
            time.sleep(1.0)
    return _lag(bootstrap, topic, group, partitions)


def _lag(bootstrap: str, topic: str, group: str, partitions: int) -> int:
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": group, "enable.auto.commit": False})
    try:
        committed = consumer.committed([TopicPartition(topic, p) for p in range(partitions)], timeout=10)
        behind = 0
        for tp in committed:
            low, high = consumer.get_watermark_offsets(TopicPartition(topic, tp.partition), timeout=10)
            behind += high - max(tp.offset, low)
        return behind
    finally:
        consumer.close()
