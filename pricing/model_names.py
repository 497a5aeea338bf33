"""genai-prices' name matching as rows of ClickHouse's ``model_pattern`` regexp_tree dictionary.

The price book's ``model_alias`` rows resolve every literal name genai-prices knows with one hash lookup.
Names genai-prices matches only by ``starts_with``/``ends_with``/``contains``/``regex`` clauses (dated,
versioned, region-prefixed names) go through this dictionary instead, in the engine, in genai-prices'
own order (``schemas/clickhouse/0008_model_names.sql`` has the SQL functions that walk it). One flat
regexp_tree keyed by a string with a prefix that says what is looked up:

- ``#|<provider>``: ``find_provider_by_id``: a provider id, else the first provider whose
  ``provider_match`` matches;
- ``*|<model>``: ``find_provider`` without a provider: the first provider whose ``model_match`` matches;
- ``<provider id>|<model>``: ``Provider.find_model``: the provider's models in order, then its
  ``fallback_model_providers``' models (one step, as genai-prices does).

``dictGetAll`` returns every matching node in id order, so ids follow genai-prices' iteration order and
the first match wins. RE2 has no lookahead: a clause ``^(?!L)R`` (or an ``and`` with such a part)
becomes a positive node ``R`` and a veto node ``L``; a positive node whose veto also matched is skipped.
Targets: ``<id>\\t<provider id>\\t<model id>`` for positive nodes, ``!<id>`` for vetoes. Clauses RE2
cannot express otherwise are left out and reported by ``pattern_rows`` (none in genai-prices' data today).
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from clickhouse_connect.driver.client import Client
from genai_prices.data_snapshot import DataSnapshot
from genai_prices.types import (
    ClauseAnd,
    ClauseContains,
    ClauseEndsWith,
    ClauseEquals,
    ClauseOr,
    ClauseRegex,
    ClauseStartsWith,
    MatchLogic,
    Provider,
)

from usagemeter.schemas.errors import Untranslatable

_RE2_SPECIAL = frozenset("\\.^$|?*+()[]{}")
_LOOKAHEAD = re.compile(r"^\^\(\?!")


@dataclass(frozen=True, slots=True)
class Branch:
    """One way a clause can match, as RE2 patterns anchored at the start of the name part of the key."""

    positive: str
    vetoes: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class PatternRow:
    id: int
    regexp: str
    target: str


@dataclass(frozen=True, slots=True)
class PatternRows:
    rows: list[PatternRow]
    untranslatable: list[str]
    """``provider/model: clause`` for every clause left out."""


def escape(text: str) -> str:
    """``text`` as an RE2 literal."""
    return "".join("\\" + char if char in _RE2_SPECIAL else char for char in text)


def branches(clause: MatchLogic) -> list[Branch]:
    """The clause's ways to match, in genai-prices' order, for a lower-cased name."""
    if isinstance(clause, ClauseEquals):
        return [Branch(escape(clause.equals.lower()) + "$")]
    if isinstance(clause, ClauseStartsWith):
        return [Branch(escape(clause.starts_with.lower()))]
    if isinstance(clause, ClauseEndsWith):
        return [Branch(".*" + escape(clause.ends_with.lower()) + "$")]
    if isinstance(clause, ClauseContains):
        return [Branch(".*" + escape(clause.contains.lower()))]
    if isinstance(clause, ClauseRegex):
        return [_regex_branch(clause.regex)]
    if isinstance(clause, ClauseOr):
        return [branch for inner in clause.or_ for branch in branches(inner)]
    if isinstance(clause, ClauseAnd):
        return _and_branches(clause)
    raise Untranslatable(repr(clause))


def _regex_branch(regex: str) -> Branch:
    """``re.search(regex, name)`` as a start-anchored RE2 branch; ``^(?!L)R`` becomes ``R`` vetoed by ``L``."""
    if _LOOKAHEAD.match(regex):
        end = _group_end(regex, 1)
        veto, rest = regex[4:end], regex[end + 1 :]
        if "(?" in veto.replace("(?:", "") or "(?" in rest.replace("(?:", ""):
            raise Untranslatable(regex)
        return Branch(f"(?:{rest})", (f"(?:{veto})",))
    if "(?=" in regex or "(?!" in regex or "(?<" in regex:
        raise Untranslatable(regex)
    if regex.startswith("^") and not _has_top_level_bar(regex):
        return Branch(f"(?:{regex[1:]})")
    if "^" not in regex:
        return Branch(f".*?(?:{regex})")
    raise Untranslatable(regex)


def _and_branches(clause: ClauseAnd) -> list[Branch]:
    """At most one part may constrain positively, unless every positive part is a ``contains``."""
    parts = [branches(inner) for inner in clause.and_]
    if any(len(part) != 1 for part in parts):
        raise Untranslatable(repr(clause))
    single = [part[0] for part in parts]
    vetoes = tuple(veto for branch in single for veto in branch.vetoes)
    positives = [branch.positive for branch in single if branch.positive not in ("(?:)", "")]
    if len(positives) <= 1:
        return [Branch(positives[0] if positives else "", vetoes)]
    contains = [inner.contains.lower() for inner in clause.and_ if isinstance(inner, ClauseContains)]
    if len(contains) != len(positives):
        raise Untranslatable(repr(clause))
    orders = ["".join(".*" + escape(text) for text in order) for order in itertools.permutations(contains)]
    return [Branch("(?:" + "|".join(orders) + ")", vetoes)]


def _group_end(regex: str, start: int) -> int:
    """Index of the ``)`` closing the group opened at ``start``."""
    for index, char, depth in _scan(regex, start):
        if char == ")" and depth == 0:
            return index
    raise Untranslatable(regex)


def _has_top_level_bar(regex: str) -> bool:
    return any(char == "|" and depth == 0 for _, char, depth in _scan(regex, 0))


def _scan(regex: str, start: int) -> Iterator[tuple[int, str, int]]:
    """(index, character, group depth after it) from ``start``, escaped characters skipped."""
    depth, index = 0, start
    while index < len(regex):
        char = regex[index]
        if char == "\\":
            index += 2
            continue
        depth += {"(": 1, ")": -1}.get(char, 0)
        yield index, char, depth
        index += 1


# --- rows -------------------------------------------------------------------------------------------


def pattern_rows(snapshot: DataSnapshot) -> PatternRows:
    """Every node of the ``model_pattern`` dictionary for ``snapshot``, ids in genai-prices' order.

    ``equals`` clauses are left out of the ``<provider>|`` and ``*|`` key spaces: the alias rows already
    resolve every literal name, with genai-prices' own lookup, before the patterns are tried.
    """
    by_id = {provider.id: provider for provider in snapshot.providers}
    rows: list[PatternRow] = []
    skipped: list[str] = []

    def add(prefix: str, clause: MatchLogic | None, provider_id: str, model_id: str, literals: bool) -> None:
        if clause is None:
            return
        try:
            found = branches(clause)
        except Untranslatable as exc:
            skipped.append(f"{provider_id}/{model_id}: {exc}")
            return
        for branch in found:
            if not literals and branch.positive.endswith("$") and _is_literal(branch.positive):
                continue
            node = len(rows) + 1
            rows.append(PatternRow(node, "^" + escape(prefix) + branch.positive, f"{node}\t{provider_id}\t{model_id}"))
            for veto in branch.vetoes:
                rows.append(PatternRow(len(rows) + 1, "^" + escape(prefix) + veto, f"!{node}"))

    for provider in snapshot.providers:
        add(f"#|{provider.id}", ClauseEquals(equals=""), provider.id, "", literals=True)
    for provider in snapshot.providers:
        add("#|", provider.provider_match, provider.id, "", literals=True)
    for provider in snapshot.providers:
        add("*|", provider.model_match, provider.id, "", literals=True)
    for provider in snapshot.providers:
        for owner in _reachable(provider, by_id):
            for model in owner.models:
                add(f"{provider.id}|", model.match, owner.id, model.id, literals=False)
    return PatternRows(rows, skipped)


def _reachable(provider: Provider, by_id: dict[str, Provider]) -> Iterator[Provider]:
    yield provider
    for fallback in provider.fallback_model_providers or ():
        if fallback in by_id:
            yield by_id[fallback]


def _is_literal(positive: str) -> bool:
    """True for the pattern of an ``equals`` clause: escaped text and a final ``$``, nothing else."""
    body = re.sub(r"\\.", "", positive[:-1])
    return not any(char in _RE2_SPECIAL for char in body)


# --- loading ----------------------------------------------------------------------------------------


def insert(client: Client, version: int, rows: Sequence[PatternRow]) -> None:
    """Writes one book version's nodes; the caller reloads ``model_pattern`` after the whole book."""
    columns: list[list[object]] = [
        [version] * len(rows),
        [row.id for row in rows],
        [row.regexp for row in rows],
        [row.target for row in rows],
    ]
    client.insert(
        "model_pattern_source",
        columns,
        column_names=["book_version", "id", "regexp", "target"],
        column_oriented=True,
        settings={"async_insert": 0},
    )
