"""A block retried by another process is stored once in every table of the view chain, whoever migrated.

Measured on chDB 26.9: a process that ran ``ALTER TABLE usage_events_from_staging
MODIFY QUERY`` computes other deduplication block ids than a process that loaded the view from disk, so
the same block with the same token, inserted by the migrating process and retried by the next, was
stored twice (a worker killed right after its first insert did exactly that). Each step here runs in a
process of its own, as a worker and its successor do, on one embedded store.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import pytest
from clickhouse_connect.driver.client import Client

from usagemeter.consumers import triage
from usagemeter.consumers.batch import Slice
from usagemeter.consumers.dedup import Deduplicator
from usagemeter.consumers.ledger import Ledger
from usagemeter.consumers.sink import ClickHouseSink
from usagemeter.schemas import CURRENT, check_record
from usagemeter.schemas.errors import BlockRejected
from usagemeter.schemas.wire import HEADER_LEN, encode

pytestmark = pytest.mark.clickhouse

TABLES = ("usage_events", "ingested_ids", "usage_15m_by_user", "usage_15m_by_model", "unknown_models")
_STEP = """
import json, sys, time, uuid
from usagemeter.consumers import migrations
from usagemeter.cli.service import prepare_store, reopen_engine
from usagemeter.consumers.settings import ClickHouseSettings
from usagemeter.consumers.sink import ClickHouseSink
from usagemeter.consumers.store import connect
from usagemeter.schemas import CURRENT, check_record
from usagemeter.schemas.wire import HEADER_LEN, encode

step, dsn, now_us = sys.argv[1], sys.argv[2], int(sys.argv[3])
settings = ClickHouseSettings(dsn=dsn)
if step == "prepare_store":
    client = prepare_store(settings)
else:
    client = connect(settings)
    migrations.apply(client)
if step.startswith("alter"):
    query = client.query("SELECT as_select FROM system.tables WHERE name = 'usage_events_from_staging'"
                         " AND database = currentDatabase()").result_rows[0][0]
    client.command("ALTER TABLE usage_events_from_staging MODIFY QUERY " + query)
if step == "alter_then_reopen":
    client = reopen_engine(client, settings)
models = [("openai", "gpt-4o-mini"), ("nobody", "model-nobody-prices")]
bodies = [
    encode(CURRENT, {"event_id": str(uuid.UUID(int=i + 1)), "event_time": now_us - 3_600_000_000,
                     "client_id": "acme", "provider": models[i % 2][0], "model": models[i % 2][1],
                     "input_tokens": 100 + i})[HEADER_LEN:]
    for i in range(10)
]
ClickHouseSink(client).insert(CURRENT, bodies, f"{CURRENT.fingerprint.hex()}|usage.events/0:0-9|t={now_us}")
counts = {t: client.query(f"SELECT {'sum(events)' if 'usage_15m' in t or t == 'unknown_models' else 'count()'}"
                          f" FROM {t}").result_rows[0][0] for t in sys.argv[4].split(",")}
print(json.dumps(counts))
"""


def _step(step: str, store: Path, now_us: int) -> dict[str, int]:
    done = subprocess.run(
        [sys.executable, "-c", _STEP, step, f"chdb:///{store}", str(now_us), ",".join(TABLES)],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return {table: int(count) for table, count in json.loads(done.stdout.strip().splitlines()[-1]).items()}


@pytest.mark.parametrize(
    ("first_step", "copies"),
    [
        pytest.param("prepare_store", 1, id="the worker's start-up migrates, then inserts"),
        pytest.param("alter_then_reopen", 1, id="a view changed in place, the engine reopened before inserting"),
        pytest.param("alter", 2, id="a view changed in place and no reopen: the engine's hazard, still there"),
    ],
)
def test_a_block_retried_by_a_fresh_process_is_stored_once(tmp_path: Path, first_step: str, copies: int) -> None:
    now_us = time.time_ns() // 1000
    store = tmp_path / f"store-{uuid.uuid4().hex[:6]}"
    first = _step(first_step, store, now_us)
    unknown = 5 if first_step == "prepare_store" else 10  # only prepare_store loads the price book
    assert first == {table: unknown if table == "unknown_models" else 10 for table in TABLES}
    retried = _step("insert", store, now_us)
    assert retried == {table: count * copies for table, count in first.items()}


def test_reopening_refuses_when_another_connection_holds_the_engine(tmp_path: Path) -> None:
    script = """
import sys
from usagemeter.cli.service import reopen_engine
from usagemeter.consumers.settings import ClickHouseSettings
from usagemeter.consumers.store import connect
from usagemeter.schemas.errors import StoreInUse
settings = ClickHouseSettings(dsn=sys.argv[1])
held, client = connect(settings), connect(settings)
try:
    reopen_engine(client, settings)
except StoreInUse as exc:
    print("refused:", exc)
"""
    done = subprocess.run(
        [sys.executable, "-c", script, f"chdb:///{tmp_path / 'store'}"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.startswith("refused: the store's engine stayed open after migrating")


DAY_US = 86_400_000_000


def test_the_view_judges_time_rules_by_the_slice_reference_time_in_the_token(clickhouse: Client) -> None:
    """A retry, hours later or by another worker, must get the first attempt's verdict: the time rules use
    the reference time the token carries, not the engine's clock."""
    now_us = time.time_ns() // 1000
    record = {"event_id": str(uuid.uuid4()), "event_time": now_us + 2 * DAY_US, "client_id": "a", "model": "m"}
    body = [encode(CURRENT, record)[HEADER_LEN:]]
    sink = ClickHouseSink(clickhouse)
    with pytest.raises(BlockRejected):
        sink.insert(CURRENT, body, f"f|t/0:0-0|t={now_us}")
    assert getattr(check_record(_decoded(record), now_us), "reason", None) == "event_time_future"
    later = now_us + DAY_US + DAY_US // 2
    sink.insert(CURRENT, body, f"f|t/0:1-1|t={later}")
    assert check_record(_decoded(record), later) is None, "triage judges by the same reference"
    assert clickhouse.query("SELECT count() FROM usage_events").result_rows[0][0] == 1


def _decoded(record: dict[str, Any]) -> dict[str, Any]:
    decoded = triage.decode(CURRENT, encode(CURRENT, record))
    assert isinstance(decoded, dict)
    return decoded


def test_a_pending_slice_is_cut_again_with_its_reference_time_and_a_completed_one_is_not(clickhouse: Client) -> None:
    ledger = Ledger(clickhouse)
    dedup = Deduplicator(ledger, 3_600)
    pending = Slice("events", 0, 10, 19, reference_us=1_700_000_000_123_456)
    ledger.record([pending])
    dedup.assign("events", {0: 10}, time.time())
    assert (dedup.cuts(), dedup.references()) == ({("events", 0): 19}, {("events", 0): 1_700_000_000_123_456})

    ledger.complete([pending])
    dedup.assign("events", {0: 10}, time.time())
    assert (dedup.cuts(), dedup.references()) == ({}, {}), "all of it is in the store: the window drops it"
