"""Shared fixtures: the real Kafka broker and the real ClickHouse engine, started once per session."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.fixtures.clickhouse import SERVER_DSN, SERVER_DSN_VARIABLE
from usagemeter.consumers.store import redacted

pytest_plugins = [
    "tests.fixtures.browser",
    "tests.fixtures.clickhouse",
    "tests.fixtures.kafka",
    "tests.fixtures.webhook",
]


def pytest_report_header() -> str:
    if SERVER_DSN:
        return f"ClickHouse: the server at {redacted(SERVER_DSN)} ({SERVER_DSN_VARIABLE})"
    return f"ClickHouse: the embedded engine (chDB); set {SERVER_DSN_VARIABLE} to run on a server"


@pytest.fixture(scope="session", autouse=True)
def _own_config_dir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """The local key files (``~/.config/usagemeter``) of this session's own, for it and every command it
    starts: tests never read nor write the user's admin key or key secret."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("XDG_CONFIG_HOME", str(tmp_path_factory.mktemp("config")))
        for name in ("USAGEMETER_API_KEY", "USAGEMETER_API_KEY_FILE", "USAGEMETER_API_KEY_SECRET"):
            patch.delenv(name, raising=False)
        yield
