"""API keys on the real engine: the local admin key file (0600, made once, registered in a new store), the
key secret file, keys never stored in clear, and ``usagemeter keys`` on the store and through the API."""

from __future__ import annotations

import json
import stat
from collections.abc import Callable
from pathlib import Path

import pytest
from clickhouse_connect.driver.client import Client
from typer.testing import CliRunner

from tests.fixtures.api import SECRET, api_settings, make_key, running_api
from tests.fixtures.clickhouse import store_environment
from usagemeter.api import create_app, keys
from usagemeter.api.local_admin import ensure_local_admin, key_secret
from usagemeter.api.settings import ApiSettings
from usagemeter.cli.app import app
from usagemeter.consumers.settings import ClickHouseSettings
from usagemeter.consumers.store import connect
from usagemeter.query import UsageApiError, fetch_usage
from usagemeter.schemas.clock import SYSTEM_CLOCK
from usagemeter.schemas.errors import ConfigError

pytestmark = pytest.mark.clickhouse


@pytest.fixture
def key_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """This test's own local admin key file and secret."""
    path = tmp_path / "config" / "admin.key"
    monkeypatch.setenv("USAGEMETER_API_KEY_FILE", str(path))
    monkeypatch.setenv("USAGEMETER_API_KEY_SECRET", SECRET)
    return path


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_the_local_admin_key_is_made_once_with_mode_0600(clickhouse: Client, key_file: Path) -> None:
    assert ensure_local_admin(clickhouse, SECRET.encode()) == key_file
    key = key_file.read_text().strip()
    assert (_mode(key_file), _mode(key_file.parent)) == (0o600, 0o700)
    stored = keys.verify(clickhouse, SECRET.encode(), key)
    assert stored is not None and stored.admin and stored.name == "local admin"

    ensure_local_admin(clickhouse, SECRET.encode())
    assert key_file.read_text().strip() == key
    assert len(keys.list_keys(clickhouse, SYSTEM_CLOCK)) == 1


def test_a_new_store_learns_the_key_file_and_a_revoked_key_stays_revoked(
    clickhouse: Client, clickhouse_factory: Callable[[], ClickHouseSettings], key_file: Path
) -> None:
    ensure_local_admin(clickhouse, SECRET.encode())
    other = connect(clickhouse_factory())
    ensure_local_admin(other, SECRET.encode())
    key = key_file.read_text().strip()
    assert keys.verify(other, SECRET.encode(), key) is not None

    keys.revoke(other, SYSTEM_CLOCK, name="local admin")
    ensure_local_admin(other, SECRET.encode())
    stored = keys.verify(other, SECRET.encode(), key)
    assert stored is not None and stored.status(stored.created_at) == "revoked"
    assert len(keys.list_keys(other, SYSTEM_CLOCK)) == 1


def test_a_key_file_others_may_read_is_refused(clickhouse: Client, key_file: Path) -> None:
    ensure_local_admin(clickhouse, SECRET.encode())
    key_file.chmod(0o644)
    with pytest.raises(ConfigError, match="open to other users"):
        ensure_local_admin(clickhouse, SECRET.encode())


def test_the_secret_file_is_made_once_with_mode_0600(tmp_path: Path) -> None:
    settings = ApiSettings(key_secret_file=tmp_path / "secret")
    first = key_secret(settings)
    assert len(first) >= 40 and _mode(tmp_path / "secret") == 0o600
    assert key_secret(settings) == first


def test_keys_are_stored_as_keyed_hashes_only(clickhouse: Client) -> None:
    key = make_key(clickhouse, clients=["acme"])
    table = json.dumps(clickhouse.query("SELECT * FROM api_keys").result_rows, default=str)
    secret_part = key.rsplit("_", 1)[1]
    assert secret_part not in table and key not in table
    assert keys.verify(clickhouse, b"another secret", key) is None
    assert keys.verify(clickhouse, SECRET.encode(), key[:-1] + ("A" if key[-1] != "A" else "B")) is None


def test_keys_commands_on_the_store(
    clickhouse_settings: ClickHouseSettings, clickhouse: Client, key_file: Path
) -> None:
    env = store_environment(clickhouse_settings)
    runner = CliRunner()

    created = runner.invoke(app, ["keys", "create", "--client", "acme", "--name", "dash", "--direct"], env=env)
    assert created.exit_code == 0, created.output
    key = created.stdout.strip()
    assert key.startswith("umk_") and "shown this once" in created.stderr
    assert key_file.exists()  # the local admin key, made by the first command on the store

    listed = runner.invoke(app, ["keys", "list", "--format", "json", "--direct"], env=env)
    assert listed.exit_code == 0, listed.output
    assert sorted((k["name"], k["status"]) for k in json.loads(listed.stdout)) == [
        ("dash", "active"), ("local admin", "active")
    ]  # fmt: skip
    assert key not in listed.stdout

    revoked = runner.invoke(app, ["keys", "revoke", "--name", "dash", "--direct"], env=env)
    assert revoked.exit_code == 0, revoked.output
    assert revoked.stdout.startswith("revoked 1 key: ")
    stored = keys.verify(clickhouse, SECRET.encode(), key)
    assert stored is not None and stored.revoked_at is not None

    refused = runner.invoke(app, ["keys", "create", "--direct"], env=env)
    assert refused.exit_code == 2
    assert "either admin or scoped to clients" in refused.output


def test_keys_commands_through_the_api_with_the_local_admin_key(clickhouse: Client, key_file: Path) -> None:
    ensure_local_admin(clickhouse, SECRET.encode())
    env = {"USAGEMETER_CLICKHOUSE_DSN": "http://127.0.0.1:1"}  # the store is not ours to open: the API must serve
    runner = CliRunner()
    with running_api(create_app(lambda: clickhouse, settings=api_settings())) as url:
        created = runner.invoke(app, ["keys", "create", "--client", "acme", "--api-url", url, "--json"], env=env)
        assert created.exit_code == 0, created.output
        acme = json.loads(created.stdout)
        assert acme["clients"] == ["acme"] and acme["status"] == "active"

        assert fetch_usage(url, "acme", api_key=acme["key"]).client_id == "acme"
        with pytest.raises(UsageApiError) as foreign:
            fetch_usage(url, "globex", api_key=acme["key"])
        assert foreign.value.status_code == 403

        client_env = {**env, "USAGEMETER_API_KEY": acme["key"]}
        as_client = runner.invoke(app, ["keys", "list", "--api-url", url], env=client_env)
        assert as_client.exit_code == 2
        assert "403" in as_client.stderr

        revoked = runner.invoke(app, ["keys", "revoke", acme["key_id"], "--api-url", url], env=env)
        assert revoked.exit_code == 0, revoked.output
        with pytest.raises(UsageApiError, match="is revoked") as gone:
            fetch_usage(url, "acme", api_key=acme["key"])
        assert gone.value.status_code == 401
