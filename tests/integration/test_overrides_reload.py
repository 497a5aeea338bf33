"""The overrides file reloads without a restart: a change is priced by the next insert."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from clickhouse_connect.driver.client import Client

from tests.integration.test_engine_pricing import _costs, _event, _insert
from usagemeter.pricing import columns, overrides, pricebook
from usagemeter.pricing.overrides_watch import OverridesWatcher

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


CONTRACT = '[[contract]]\nclient = "{client}"\nmultiplier = "{multiplier}"\neffective_from = 2020-01-01\n'


def _in_force(client: Client) -> tuple[list[tuple[object, ...]], list[tuple[object, ...]]]:
    """What the views and, once reloaded as after a restart, the dictionaries price with."""
    for dictionary in ("price_override_by_model", "contract_by_scope", "contract_client"):
        client.command(f"SYSTEM RELOAD DICTIONARY {dictionary}")
    at = "toDateTime('2026-01-01 00:00:00', 'UTC')"
    prices = client.query(
        f"SELECT model_id, input_mtok, dictGet('price_override_by_model', 'input_mtok', (provider_id, model_id), {at})"
        " FROM price_override_current WHERE model_id != '' ORDER BY model_id"
    ).result_rows
    contracts = client.query(
        f"SELECT client_id, multiplier, dictGet('contract_by_scope', 'multiplier', (client_id, '*', '*'), {at})"
        " FROM contract_current WHERE client_id != '' ORDER BY client_id"
    ).result_rows
    return [tuple(row) for row in prices], [tuple(row) for row in contracts]


V1 = ([("gpt-4o", Decimal(1), Decimal(1))], [("acme", Decimal("0.9"), Decimal("0.9"))])


def test_a_load_that_fails_between_the_two_tables_leaves_the_previous_version_whole(
    clickhouse: Client, tmp_path: Path
) -> None:
    pricebook.load(clickhouse)
    path = tmp_path / "overrides.toml"
    path.write_text(OVERRIDE.format(price="1.00") + CONTRACT.format(client="acme", multiplier="0.9"))
    overrides.load(clickhouse, overrides.read(path))
    assert _in_force(clickhouse) == V1
    # A real refusal by the server of the second table's insert only: the file itself is valid.
    clickhouse.command("ALTER TABLE contract_source ADD CONSTRAINT no_boom CHECK client_id != 'boom'")
    path.write_text(OVERRIDE.format(price="2.00") + CONTRACT.format(client="boom", multiplier="0.5"))
    with pytest.raises(Exception, match="no_boom"):
        overrides.load(clickhouse, overrides.read(path))
    assert _in_force(clickhouse) == V1, "neither half of the failed version is in force"
    clickhouse.command("ALTER TABLE contract_source DROP CONSTRAINT no_boom")
    overrides.load(clickhouse, overrides.read(path))
    assert _in_force(clickhouse) == (
        [("gpt-4o", Decimal(2), Decimal(2))],
        [("boom", Decimal("0.5"), Decimal("0.5"))],
    )


def test_half_a_version_left_by_a_killed_load_is_discarded_even_when_the_file_is_bad(
    clickhouse: Client, tmp_path: Path
) -> None:
    pricebook.load(clickhouse)
    path = tmp_path / "overrides.toml"
    path.write_text(OVERRIDE.format(price="1.00") + CONTRACT.format(client="acme", multiplier="0.9"))
    overrides.load(clickhouse, overrides.read(path))
    # What a process killed between the two inserts leaves: the model overrides of version 2 only.
    clickhouse.insert(
        "price_override_source",
        [[2, "openai", "gpt-4o", datetime(2020, 1, 1, tzinfo=UTC), columns.BOOK_END, Decimal(7), "model[0]"]],
        column_names=["version", "provider_id", "model_id", "valid_from", "valid_to", "input_mtok", "entry"],
        settings={"async_insert": 0},
    )
    path.write_text(OVERRIDE.format(price="-1"))
    watcher = OverridesWatcher(path, clickhouse)
    assert not watcher.check(), "the file is bad: not loaded"
    assert _in_force(clickhouse) == V1


def _priced(client: Client) -> tuple[str, str]:
    event = _event("openai", "gpt-4o", datetime.now(UTC) - timedelta(hours=1), input_tokens=1_000)
    event["event_id"] = str(uuid.uuid4())
    _insert(client, [event])
    cost, _ = _costs(client)[event["event_id"]]
    source = client.query(
        "SELECT cost_source FROM usage_events WHERE event_id = {id:UUID}", parameters={"id": event["event_id"]}
    ).result_rows[0][0]
    return str(cost), str(source)
