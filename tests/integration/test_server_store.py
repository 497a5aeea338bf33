"""What only a ClickHouse server can show: the commands against it, and the cluster DDL applied for real.

Everything else that runs on a server (the data path, the fault suite, reports, budgets) runs there through
the shared fixtures when ``USAGEMETER_TEST_CLICKHOUSE_DSN`` is set (tests/fixtures/clickhouse.py); without it
this module is skipped and says why. ``USAGEMETER_TEST_CLICKHOUSE_CLUSTER`` names a cluster of that server's
``remote_servers`` for the cluster test.
"""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from tests.faults.traffic import aggregates, events, expected_counts
from tests.fixtures.clickhouse import SERVER_DSN, server_only, store_environment
from usagemeter.consumers import migrations
from usagemeter.consumers.settings import ClickHouseSettings
from usagemeter.consumers.sink import ClickHouseSink
from usagemeter.consumers.store import connect
from usagemeter.schemas import CURRENT
from usagemeter.schemas.wire import HEADER_LEN

pytestmark = [pytest.mark.clickhouse, server_only]
CLUSTER = os.environ.get("USAGEMETER_TEST_CLICKHOUSE_CLUSTER", "")


def _usagemeter(settings: ClickHouseSettings, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, **store_environment(settings)}
    if settings.cluster:
        env["USAGEMETER_CLICKHOUSE_CLUSTER"] = settings.cluster
    command = [sys.executable, "-m", "usagemeter.cli", *args]
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=300, check=False)


def test_migrate_and_its_check_against_the_server(worker_store: ClickHouseSettings) -> None:
    assert _usagemeter(worker_store, "migrate", "--check").returncode != 0, "an empty database is not migrated"
    done = _usagemeter(worker_store, "migrate")
    assert done.returncode == 0, done.stderr
    done = _usagemeter(worker_store, "migrate", "--check")
    assert done.returncode == 0, done.stderr


@pytest.mark.skipif(not CLUSTER, reason="USAGEMETER_TEST_CLICKHOUSE_CLUSTER is not set: no cluster to migrate on")
def test_cluster_migrations_store_and_aggregate_through_the_distributed_tables() -> None:
    settings = ClickHouseSettings(dsn=SERVER_DSN, database=f"t_cluster_{os.getpid()}", cluster=CLUSTER)
    client = connect(settings)
    try:
        migrations.apply(client)
        tables = client.query(
            "SELECT name, engine FROM system.tables WHERE database = {db:String}", parameters={"db": settings.database}
        )
        engines = {str(name): str(engine) for name, engine in tables.result_rows}
        assert engines["usage_events"] == "Distributed"
        assert engines["usage_events_local"].startswith("Replicated")
        unique = events(2_000, seed=90)
        ClickHouseSink(client).insert(CURRENT, [e.value[HEADER_LEN:] for e in unique], "cluster-test|0")
        got = aggregates(client, "usage_15m_by_user")
        assert {key: row[:7] for key, row in got.items()} == expected_counts(unique)
    finally:
        client.command(
            "DROP DATABASE IF EXISTS {db:Identifier} ON CLUSTER {cluster:Identifier} SYNC",
            parameters={"db": settings.database, "cluster": CLUSTER},
        )
