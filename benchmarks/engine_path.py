"""The engine's share of an insert: the same Avro block of realistic events through the whole view chain
(validate, price, enrich, write ``usage_events`` and every aggregate) against Avro parsing alone, into a
Null table with the staging table's columns and no views, alternated in one run. A one-event block through
the chain gives the fixed cost every insert pays whatever its size (the views' queries analysed and
planned), which a worker pays once per partition slice of a batch.

    .venv/bin/python -m benchmarks.engine_path --events 100000 --rounds 5

``--setting name=value`` (repeatable) adds a query setting to a third design, the chain with those
settings, so a candidate setting is judged against the shipped chain in the same run.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
import uuid
from collections.abc import Callable
from datetime import timedelta

from clickhouse_connect.driver.client import Client

from benchmarks.records import simulated_records
from usagemeter.consumers import migrations
from usagemeter.consumers.avro_block import container
from usagemeter.consumers.settings import ClickHouseSettings
from usagemeter.consumers.sink import INSERT_SETTINGS, STAGING_TABLE
from usagemeter.consumers.store import connect
from usagemeter.pricing import pricebook
from usagemeter.schemas import CURRENT
from usagemeter.schemas.wire import HEADER_LEN, encode

PARSE_ONLY = "parse_only"


def bodies(events: int, seed: int) -> list[bytes]:
    """Plain Avro encodings of ``events`` simulated calls of the last 10 minutes, as the worker cuts them."""
    return [encode(CURRENT, r)[HEADER_LEN:] for r in simulated_records(seed, events, spread=timedelta(minutes=10))]


def timed_insert(client: Client, table: str, data: list[bytes], extra: dict[str, str]) -> float:
    token = f"bench|{uuid.uuid4()}"
    block = container(CURRENT, data, token)
    settings = {**INSERT_SETTINGS, "insert_deduplication_token": token, **extra}
    began = time.perf_counter()
    client.raw_insert(table, None, block, fmt="Avro", settings=settings)
    return time.perf_counter() - began


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--setting", action="append", default=[], metavar="NAME=VALUE")
    args = parser.parse_args()
    candidate = dict(item.split("=", 1) for item in args.setting)
    dsn = f"chdb:///{tempfile.mkdtemp(prefix='engine-path-')}"
    client = connect(ClickHouseSettings(dsn=dsn, database="bench"))
    migrations.apply(client)
    pricebook.load(client)
    client.command(f"CREATE TABLE {PARSE_ONLY} AS {STAGING_TABLE} ENGINE = Null")
    one = bodies(1, seed=0)
    designs: dict[str, Callable[[list[bytes]], float]] = {
        "parse only": lambda data: timed_insert(client, PARSE_ONLY, data, {}),
        "full chain": lambda data: timed_insert(client, STAGING_TABLE, data, {}),
        "one-event block, full chain": lambda _data: timed_insert(client, STAGING_TABLE, one, {}),
    }
    if candidate:
        designs["full chain + " + ",".join(args.setting)] = lambda data: timed_insert(
            client, STAGING_TABLE, data, candidate
        )
    timed_insert(client, STAGING_TABLE, bodies(1000, seed=1), {})  # warm the dictionaries and caches
    times: dict[str, list[float]] = {name: [] for name in designs}
    for round_ in range(args.rounds):
        data = bodies(args.events, seed=100 + round_)
        order = list(designs.items())
        for name, design in order[:: 1 if round_ % 2 else -1]:
            times[name].append(design(data))
    median = {name: statistics.median(values) for name, values in times.items()}
    print(f"events={args.events:,} rounds={args.rounds}")
    for name, values in times.items():
        print(f"{name:>30}: median {median[name]:.3f} s  (runs: {', '.join(f'{v:.3f}' for v in values)})")
    print(f"full chain / parse only = {median['full chain'] / median['parse only']:.2f}x")
    fixed = median["one-event block, full chain"]
    print(f"full chain less the fixed cost / parse only = {(median['full chain'] - fixed) / median['parse only']:.2f}x")
    for name in designs:
        if name.startswith("full chain + "):
            print(f"{name} / full chain = {median[name] / median['full chain']:.2f}x")


if __name__ == "__main__":
    main()
