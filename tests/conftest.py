"""Shared fixtures: the real Kafka broker and the real ClickHouse engine, started once per session."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

pytest_plugins = [
    "tests.fixtures.browser",
    "tests.fixtures.clickhouse",
    "tests.fixtures.kafka",
    "tests.fixtures.webhook",
]


@pytest.fixture(scope="session", autouse=True)
def _own_config_dir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """The local key files (``~/.config/usagemeter``) of this session's own, for it and every command it
    starts: tests never read nor write the user's admin key or key secret."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("XDG_CONFIG_HOME", str(tmp_path_factory.mktemp("config")))
        for name in ("USAGEMETER_API_KEY", "USAGEMETER_API_KEY_FILE", "USAGEMETER_API_KEY_SECRET"):
            patch.delenv(name, raising=False)
        yield
