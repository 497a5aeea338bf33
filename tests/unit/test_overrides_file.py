"""The overrides file: validation errors name the entry, patterns resolve against known names."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest

from usagemeter.consumers import overrides

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
    with pytest.raises(overrides.OverridesError, match=re.escape(message)):
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
    with pytest.raises(overrides.OverridesError, match=r"model\[0\] \(gpt-4o\) and model\[1\] \(gpt-4o\*\)"):
        overrides.resolve(parsed, KNOWN)
