"""The migrations rendered for a cluster (consumers/cluster.py): every statement parses on the real engine
(``formatQuery`` in chDB: a server's parser), runs on every node (``ON CLUSTER``), stores rows only in
replicated tables with the deduplication window exactly-once needs, gives each of them a Distributed table under
the original name, and builds the materialized views on the local tables, where ClickHouse runs them.

Parsing is what can be proven here: no ClickHouse server or Keeper runs on these machines, so the statements are
not executed (docs/deploy-cluster.md says what a user with a cluster should check).
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator

import pytest
from clickhouse_connect.driver.client import Client

from usagemeter.consumers.cluster import DEDUP_WINDOW, ClusterRenderer
from usagemeter.consumers.migrations import available, cluster_statements
from usagemeter.consumers.settings import ClickHouseSettings
from usagemeter.consumers.store import connect

CLUSTER = "usagemeter_cluster"
STATEMENTS = cluster_statements(CLUSTER)


@pytest.fixture(scope="module")
def engine(store_dsn: str) -> Iterator[Client]:
    settings = ClickHouseSettings(dsn=store_dsn, database=f"t_{uuid.uuid4().hex[:12]}")
    client = connect(settings)
    yield client
    client.command("DROP DATABASE IF EXISTS {db:Identifier} SYNC", parameters={"db": settings.database})


@pytest.mark.clickhouse
def test_every_cluster_statement_parses_on_the_engine(engine: Client) -> None:
    failures = []
    for statement in STATEMENTS:
        try:
            formatted = engine.query("SELECT formatQuery({q:String})", parameters={"q": statement}).result_rows[0][0]
        except Exception as exc:
            failures.append(f"{statement[:200]}\n  -> {str(exc).splitlines()[0][:300]}")
            continue
        assert f"ON CLUSTER {CLUSTER}" in formatted, formatted[:200]
    assert failures == [], "\n".join(failures)


def test_every_statement_runs_on_every_node() -> None:
    assert [s[:80] for s in STATEMENTS if f"ON CLUSTER {CLUSTER}" not in s] == []


def test_rows_live_only_in_replicated_tables_with_the_exactly_once_window() -> None:
    engines = [s for s in STATEMENTS if re.search(r"ENGINE\s*=\s*\w*MergeTree", s)]
    assert len(engines) >= 20
    for statement in engines:
        assert re.search(r"ENGINE\s*=\s*Replicated\w*MergeTree", statement), statement[:200]
        if not statement.startswith("CREATE TABLE IF NOT EXISTS schema_migrations"):
            assert f"replicated_deduplication_window = {DEDUP_WINDOW}" in statement, statement[:200]
    assert not any("non_replicated_deduplication_window" in s for s in STATEMENTS)


def test_each_local_table_has_a_distributed_table_under_the_original_name() -> None:
    local = set(re.findall(r"^CREATE TABLE IF NOT EXISTS (\w+)_local ON CLUSTER", "\n".join(STATEMENTS), re.M))
    distributed = dict(
        re.findall(r"^CREATE TABLE IF NOT EXISTS (\w+) ON CLUSTER \S+ AS \w+_local ENGINE = Distributed\(\S+, "
                   r"currentDatabase\(\), \w+_local, (.+)\)$", "\n".join(STATEMENTS), re.M)
    )  # fmt: skip
    assert local == set(distributed)
    assert {"usage_staging", "usage_events", "usage_15m_by_user", "ingest_ledger", "api_keys"} <= local
    for name in ("usage_staging", "usage_events", "usage_15m_by_user", "usage_15m_by_model", "budget_activity"):
        assert distributed[name] == "cityHash64(client_id)", name
    assert distributed["ingest_ledger"] == "cityHash64(topic, partition, first_offset)", "its sorting key"


def test_materialized_views_read_and_write_the_local_tables() -> None:
    renderer = ClusterRenderer(CLUSTER)
    views = []
    for migration in available():
        for statement in migration.statements():
            rendered = renderer.render(statement)
            if "MATERIALIZED VIEW" in statement:
                views += rendered
    assert len(views) >= 10
    for view in views:
        target, *sources = re.findall(r"\b(?:TO|FROM|JOIN)\s+([A-Za-z_]\w*)", view)
        assert target.endswith("_local"), view[:120]
        assert [s for s in sources if s in renderer.tables] == [], f"a view reading a Distributed table: {view[:160]}"


def test_an_unknown_statement_shape_is_refused_not_sent_to_one_node() -> None:
    with pytest.raises(ValueError, match="no cluster rule"):
        ClusterRenderer(CLUSTER).render("RENAME TABLE a TO b")
    with pytest.raises(ValueError, match="not an identifier"):
        ClusterRenderer("two words")
