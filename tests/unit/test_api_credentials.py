"""Which key a client sends: the one given, then USAGEMETER_API_KEY, then the local admin key file, and that
file to loopback addresses only."""

from __future__ import annotations

from pathlib import Path

import pytest

from usagemeter.query.credentials import api_key_for


@pytest.fixture
def key_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "admin.key"
    path.write_text("umk_000000000000_local\n")
    path.chmod(0o600)
    monkeypatch.setenv("USAGEMETER_API_KEY_FILE", str(path))
    return path


@pytest.mark.parametrize(
    ("url", "sent"),
    [
        pytest.param("http://127.0.0.1:8765", "umk_000000000000_local", id="127.0.0.1"),
        pytest.param("http://127.0.0.2:8765", "umk_000000000000_local", id="127.0.0.0/8"),
        pytest.param("http://localhost:8765", "umk_000000000000_local", id="localhost"),
        pytest.param("http://[::1]:8765", "umk_000000000000_local", id="::1"),
        pytest.param("http://10.0.0.5:8765", None, id="another address"),
        pytest.param("https://usage.example.com", None, id="another host"),
        pytest.param("http://localhost.example.com", None, id="a name that starts like localhost"),
    ],
)
def test_the_key_file_goes_to_loopback_addresses_only(key_file: Path, url: str, sent: str | None) -> None:
    assert api_key_for(url) == sent


def test_a_given_key_wins_then_the_environment(key_file: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert api_key_for("http://127.0.0.1:8765", "umk_given") == "umk_given"
    monkeypatch.setenv("USAGEMETER_API_KEY", "umk_from_env")
    assert api_key_for("http://127.0.0.1:8765") == "umk_from_env"
    assert api_key_for("https://usage.example.com") == "umk_from_env"


def test_no_file_no_key(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("USAGEMETER_API_KEY_FILE", str(tmp_path / "missing"))
    assert api_key_for("http://127.0.0.1:8765") is None
