"""What migration 0015's views cost each insert: the same Avro block into ``usage_staging`` with every view,
and with 0015's three views on ``usage_events`` dropped (wider aggregate, late events, watermarks), alternated
in one run so that both see the same machine. Events are under a minute old, as live traffic is (none late).

    .venv/bin/python -m benchmarks.dimension_cost --events 50000 --rounds 6
"""

from __future__ import annotations

import argparse
import io
import random
import statistics
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import fastavro
from clickhouse_connect.driver.client import Client

from usagemeter.consumers import migrations
from usagemeter.consumers.settings import ClickHouseSettings
from usagemeter.consumers.store import connect
from usagemeter.schemas import CURRENT

VIEWS_OF_0015 = ("usage_15m_by_dims_mv", "usage_late_events_mv", "ingest_watermarks_mv")


def block(events: int, seed: int) -> bytes:
    rng = random.Random(seed)
    now = datetime.now(UTC)
    records: list[dict[str, Any]] = [
        {
            "event_id": str(uuid.uuid4()),
            "event_time": int(
                (now - timedelta(seconds=rng.randrange(60)) - datetime(1970, 1, 1, tzinfo=UTC)).total_seconds() * 1e6
            ),
            "client_id": f"client-{rng.randrange(20)}",
            "user_id": f"user-{rng.randrange(500)}",
            "service": rng.choice(["chat-api", "batch", "search"]),
            "provider": "openai",
            "model": rng.choice(["gpt-4o", "gpt-4o-mini", "o3-mini"]),
            "status": rng.choice(["ok"] * 9 + ["error"]),
            "input_tokens": rng.randrange(1, 5000),
            "output_tokens": rng.randrange(0, 900),
        }
        for _ in range(events)
    ]
    out = io.BytesIO()
    fastavro.writer(out, CURRENT.plain, records)
    return out.getvalue()


def insert_s(client: Client, data: bytes) -> float:
    began = time.perf_counter()
    client.raw_insert("usage_staging", None, data, fmt="Avro",
                      settings={"input_format_avro_allow_missing_fields": 1, "async_insert": 0})  # fmt: skip
    return time.perf_counter() - began


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--events", type=int, default=50_000)
    parser.add_argument("--rounds", type=int, default=6)
    args = parser.parse_args()
    dsn = f"chdb:///{tempfile.mkdtemp(prefix='dimension-cost-')}"
    with_views, without = (
        connect(ClickHouseSettings(dsn=dsn, database=name)) for name in ("with_0015", "without_0015")
    )
    for client in (with_views, without):
        migrations.apply(client)
    for view in VIEWS_OF_0015:
        without.command("DROP VIEW {view:Identifier}", parameters={"view": view})
    times: dict[str, list[float]] = {"with 0015's views": [], "without them": []}
    for round_ in range(args.rounds):
        data = block(args.events, round_)
        for name, client in (("with 0015's views", with_views), ("without them", without))[:: 1 if round_ % 2 else -1]:
            times[name].append(insert_s(client, data))
    for name, measured in times.items():
        print(f"{name}: median {statistics.median(measured):.3f} s per {args.events:,}-event block "
              f"(min {min(measured):.3f}, max {max(measured):.3f}, {args.rounds} rounds)")  # fmt: skip
    ratio = statistics.median(times["with 0015's views"]) / statistics.median(times["without them"])
    print(f"0015 adds {ratio - 1:.1%} to an insert")


if __name__ == "__main__":
    main()
