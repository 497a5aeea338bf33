"""The overrides file reloads without a restart: a change is priced by the next insert."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from clickhouse_connect.driver.client import Client

from tests.integration.test_engine_pricing import _costs, _event, _insert
from usagemeter.consumers import pricebook
from usagemeter.consumers.overrides_watch import OverridesWatcher

pytestmark = pytest.mark.clickhouse

OVERRIDE = '[[model]]\nprovider = "openai"\nmodel = "gpt-4o"\neffective_from = 2020-01-01\ninput_mtok = "{price}"\n'


def test_a_changed_file_is_loaded_and_a_broken_one_keeps_the_last_good(clickhouse: Client, tmp_path: Path) -> None:
    pricebook.load(clickhouse)
    path = tmp_path / "overrides.toml"
    path.write_text(OVERRIDE.format(price="1.00"))
    watcher = OverridesWatcher(path, clickhouse)
    assert watcher.check()
    assert not watcher.check(), "unchanged: no reload"
    costs = [_priced(clickhouse)]
    path.write_text(OVERRIDE.format(price="3.00"))
    assert watcher.check()
    costs.append(_priced(clickhouse))
    path.write_text(OVERRIDE.format(price="-3.00"))
    assert not watcher.check(), "invalid: not loaded"
    costs.append(_priced(clickhouse))
    assert costs == [("0.001000000000000000", "override")] + [("0.003000000000000000", "override")] * 2


def _priced(client: Client) -> tuple[str, str]:
    event = _event("openai", "gpt-4o", datetime.now(UTC) - timedelta(hours=1), input_tokens=1_000)
    event["event_id"] = str(uuid.uuid4())
    _insert(client, [event])
    cost, _ = _costs(client)[event["event_id"]]
    source = client.query(
        "SELECT cost_source FROM usage_events WHERE event_id = {id:UUID}", parameters={"id": event["event_id"]}
    ).result_rows[0][0]
    return str(cost), str(source)
