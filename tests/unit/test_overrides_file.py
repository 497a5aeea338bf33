"""The overrides file: validation errors name the entry, patterns resolve against known names."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest

from usagemeter.pricing import overrides
from usagemeter.schemas.errors import OverridesError

KNOWN = [("openai", "gpt-4o"), ("openai", "gpt-4o-mini"), ("anthropic", "claude-haiku-4-5")]


def _read(tmp_path: Path, text: str) -> overrides.OverridesFile:
    path = tmp_path / "overrides.toml"
    path.write_text(text)
    return overrides.read(path)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        pytest.param(
            '[[model]]\nprovider = "openai"\nmodel = "gpt-4o"\neffective_from = 2026-01-01\ninput_mtok = "-1"\n',
            "model[0] (openai/gpt-4o): input_mtok",
            id="negative price",
        ),
        pytest.param(
            '[[model]]\nmodel = "gpt-4o"\neffective_from = 2026-01-01\n',
            "model[0] (gpt-4o): entry: Value error, give at least one price",
            id="no price",
        ),
        pytest.param(
            '[[contract]]\nclient = "acme"\nmultiplier = "0.1234567"\neffective_from = 2026-01-01\n',
            "contract[0] (acme): multiplier",
            id="multiplier with more than 6 decimals",
        ),
        pytest.param(
            '[[contract]]\nclient = "acme"\nmultiplier = "0.9"\neffective_from = 2026-02-01\n'
            "effective_until = 2026-01-01\n",
            "effective_until must be after effective_from",
            id="dates out of order",
        ),
        pytest.param('[[model]]\nmodle = "x"\n', "model[0] (unnamed): modle: Extra inputs", id="misspelt key"),
        pytest.param("[[model]\n", "overrides.toml: ", id="not TOML"),
    ],
)
def test_bad_entries_are_named(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(OverridesError, match=re.escape(message)):
        _read(tmp_path, text)


def test_patterns_resolve_against_known_names_and_exact_new_names_are_kept(tmp_path: Path) -> None:
    parsed = _read(
        tmp_path,
        '[[model]]\nprovider = "openai"\nmodel = "GPT-4o*"\neffective_from = 2026-01-01\noutput_mtok = "1"\n'
        '[[model]]\nprovider = "acme"\nmodel = "acme-7b"\neffective_from = 2026-01-01\ninput_mtok = "1"\n'
        '[[contract]]\nclient = "c"\nmodel = "claude-*"\nmultiplier = "0.5"\neffective_from = 2026-01-01\n',
    )
    resolved = overrides.resolve(parsed, KNOWN)
    assert [(p, m) for p, m, *_ in resolved.prices] == [
        ("openai", "gpt-4o"),
        ("openai", "gpt-4o-mini"),
        ("acme", "acme-7b"),
    ]
    assert [row[:3] for row in resolved.contracts] == [("c", "anthropic", "claude-haiku-4-5")]
    assert resolved.contracts[0][5] == Decimal("0.5")
    assert resolved.prices[0][3] == datetime(2106, 1, 1, tzinfo=UTC)


def test_overlapping_periods_for_one_model_are_refused(tmp_path: Path) -> None:
    parsed = _read(
        tmp_path,
        '[[model]]\nmodel = "gpt-4o"\neffective_from = 2026-01-01\ninput_mtok = "1"\n'
        '[[model]]\nmodel = "gpt-4o*"\neffective_from = 2026-03-01\ninput_mtok = "2"\n',
    )
    with pytest.raises(OverridesError, match=r"model\[0\] \(gpt-4o\) and model\[1\] \(gpt-4o\*\)"):
        overrides.resolve(parsed, KNOWN)


MODEL = '[[model]]\nprovider = "openai"\nmodel = "gpt-4o"\ninput_mtok = "1"\n'
CONTRACT = '[[contract]]\nclient = "acme"\nmultiplier = "0.9"\n'


@pytest.mark.parametrize(
    ("content", "message"),
    [
        pytest.param(b"\xff\xfe[[model]]\n", "is not UTF-8", id="not UTF-8"),
        pytest.param(b"a = " + b"[" * 5000 + b"]" * 5000 + b"\n", "nested too deeply", id="deeply nested"),
        pytest.param(
            (MODEL + "effective_from = 2107-01-01\n").encode(),
            "model[0] (openai/gpt-4o): effective_from: Value error, must be from 1970-01-01 to 2106-01-01",
            id="a start past 2106",
        ),
        pytest.param(
            (CONTRACT + "effective_from = 2026-01-01\neffective_until = 2200-01-01\n").encode(),
            "contract[0] (acme): effective_until: Value error, must be from 1970-01-01 to 2106-01-01",
            id="an end past 2106",
        ),
        pytest.param(
            (MODEL + "effective_from = 1969-12-31\n").encode(),
            "model[0] (openai/gpt-4o): effective_from: Value error, must be from 1970-01-01",
            id="a start before 1970",
        ),
        pytest.param(
            b"model = [1]\n", "model[0] (unnamed): entry: Input should be a valid dictionary", id="not a table"
        ),
        pytest.param(b"model = 1\n", "model: Input should be a valid list", id="not a list"),
    ],
)
def test_malformed_content_is_an_overrides_error(tmp_path: Path, content: bytes, message: str) -> None:
    """The watcher keeps the last good overrides only for an ``OverridesError``: nothing else may escape."""
    path = tmp_path / "overrides.toml"
    path.write_bytes(content)
    with pytest.raises(OverridesError, match=re.escape(message)):
        overrides.read(path)


def test_the_last_day_the_store_can_hold_is_accepted(tmp_path: Path) -> None:
    parsed = _read(tmp_path, MODEL + "effective_from = 2105-12-31\neffective_until = 2106-01-01\n")
    assert parsed.model[0].period()[1] == datetime(2105, 12, 31, 23, 59, 59, tzinfo=UTC)
