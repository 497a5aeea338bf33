"""genai-prices match clauses as RE2 branches for the engine's ``model_pattern`` dictionary."""

from __future__ import annotations

import re

import pytest
from genai_prices.data_snapshot import get_snapshot
from genai_prices.types import (
    ClauseAnd,
    ClauseContains,
    ClauseEndsWith,
    ClauseEquals,
    ClauseOr,
    ClauseRegex,
    ClauseStartsWith,
    MatchLogic,
)

from usagemeter.pricing.model_names import Branch, branches, pattern_rows
from usagemeter.schemas.errors import Untranslatable


@pytest.mark.parametrize(
    ("clause", "expected"),
    [
        pytest.param(ClauseEquals(equals="GPT-4o"), [Branch("gpt-4o$")], id="equals, lower-cased"),
        pytest.param(ClauseStartsWith(starts_with="o1."), [Branch("o1\\.")], id="starts_with, escaped"),
        pytest.param(ClauseEndsWith(ends_with=":free"), [Branch(".*:free$")], id="ends_with"),
        pytest.param(ClauseContains(contains="claude"), [Branch(".*claude")], id="contains"),
        pytest.param(ClauseRegex(regex="^gpt-5-\\d{8}$"), [Branch("(?:gpt-5-\\d{8}$)")], id="anchored regex"),
        pytest.param(ClauseRegex(regex="mini"), [Branch(".*?(?:mini)")], id="unanchored regex"),
        pytest.param(
            ClauseRegex(regex="^(?![^/]+/)mistral"), [Branch("(?:mistral)", ("(?:[^/]+/)",))], id="lookahead veto"
        ),
        pytest.param(
            ClauseOr(or_=[ClauseEquals(equals="a"), ClauseStartsWith(starts_with="b")]),
            [Branch("a$"), Branch("b")],
            id="or keeps order",
        ),
        pytest.param(
            ClauseAnd(and_=[ClauseStartsWith(starts_with="gemini"), ClauseRegex(regex="^(?!.*-tts)")]),
            [Branch("gemini", ("(?:.*-tts)",))],
            id="and with a negative part",
        ),
        pytest.param(
            ClauseAnd(and_=[ClauseContains(contains="hf"), ClauseContains(contains="groq")]),
            [Branch("(?:.*hf.*groq|.*groq.*hf)")],
            id="and of contains",
        ),
    ],
)
def test_clause_branches(clause: MatchLogic, expected: list[Branch]) -> None:
    assert branches(clause) == expected


def test_lookbehind_is_refused() -> None:
    with pytest.raises(Untranslatable):
        branches(ClauseRegex(regex="(?<=x)y"))


def test_every_clause_of_the_bundled_data_translates_and_compiles() -> None:
    rows = pattern_rows(get_snapshot())
    assert rows.untranslatable == []
    assert [row.id for row in rows.rows] == list(range(1, len(rows.rows) + 1))
    for row in rows.rows:
        re.compile(row.regexp)  # RE2 syntax used here is a subset of Python's
