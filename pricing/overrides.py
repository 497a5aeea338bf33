"""Custom prices: the overrides file (TOML), validated, resolved to model names and loaded into ClickHouse.

Two kinds of entries, each with an effective date (``effective_from``, inclusive; ``effective_until``,
exclusive and optional)::

    [[model]]                      # a price override: these unit prices replace the book's
    provider = "openai"            # optional: any provider when left out
    model = "gpt-4o*"              # an exact name or a glob pattern (* and ?), case-insensitive
    effective_from = 2026-01-01
    input_mtok = "2.00"            # USD per million tokens; kinds left out keep the book's price
    output_mtok = "8.00"

    [[contract]]                   # a client's discount (< 1) or markup (> 1) on calculated prices
    client = "acme"
    multiplier = "0.85"
    provider = "openai"            # optional scope: a provider ...
    model = "gpt-4o*"              # ... and/or a model name or pattern
    effective_from = 2026-01-01

Patterns are resolved when the file is loaded, against the model ids of the current price book and the
names in ``unknown_models``, so the engine pays one hash lookup per event, never a pattern match (a
regexp dictionary would match every event against every pattern). A name first seen after the load is
covered at the next load: the worker reloads when the file changes and ``usagemeter overrides load`` does
on demand. An exact name with a provider also covers that name before any event has used it.

A load is all or nothing: both tables get the new version, or the previous version stays whole (``load``
discards its own first half when the second fails, ``repair`` a half left by a killed process).

The engine applies them in ``usagemeter_cell_prices`` (override prices, ``cost_source = 'override'``) and
``usagemeter_contract_multiplier`` (schemas/clickhouse/0009_pricing_functions.sql); a caller-given cost
still wins over both.
"""

from __future__ import annotations

import fnmatch
import itertools
import logging
import tomllib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Annotated

from clickhouse_connect.driver.client import Client
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from usagemeter.pricing.columns import BOOK_END, BOOK_START, PRICE_COLUMNS
from usagemeter.schemas.errors import OverridesError

UnitPrice = Annotated[Decimal, Field(ge=0, le=1_000_000, decimal_places=18)]
Multiplier = Annotated[Decimal, Field(gt=0, le=100, decimal_places=6)]

FIRST_DAY = BOOK_START.date()
LAST_DAY = BOOK_END.date()
"""The store's DateTime('UTC') ends in 2106: a later date cannot be written, so it is refused when read."""

log = logging.getLogger("usagemeter.overrides")


class _Entry(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    effective_from: date
    effective_until: date | None = None

    @field_validator("effective_from", "effective_until")
    @classmethod
    def _in_store_range(cls, day: date | None) -> date | None:
        if day is not None and not FIRST_DAY <= day <= LAST_DAY:
            raise ValueError(f"must be from {FIRST_DAY} to {LAST_DAY}, the dates the store can hold")
        return day

    @model_validator(mode="after")
    def _dates_in_order(self) -> _Entry:
        if self.effective_until is not None and self.effective_until <= self.effective_from:
            raise ValueError("effective_until must be after effective_from")
        return self

    def period(self) -> tuple[datetime, datetime]:
        """First and last second (inclusive, as the range dictionaries read them)."""
        start = datetime.combine(self.effective_from, datetime.min.time(), UTC)
        if self.effective_until is None:
            return start, BOOK_END
        return start, datetime.combine(self.effective_until, datetime.min.time(), UTC) - timedelta(seconds=1)


class ModelOverride(_Entry):
    provider: str = ""
    model: str = Field(min_length=1)
    input_mtok: UnitPrice | None = None
    cache_read_mtok: UnitPrice | None = None
    cache_write_mtok: UnitPrice | None = None
    cache_write_1h_mtok: UnitPrice | None = None
    output_mtok: UnitPrice | None = None
    output_reasoning_mtok: UnitPrice | None = None
    input_audio_mtok: UnitPrice | None = None
    output_audio_mtok: UnitPrice | None = None
    web_searches_kcount: UnitPrice | None = None
    requests_kcount: UnitPrice | None = None

    @model_validator(mode="after")
    def _some_price(self) -> ModelOverride:
        if all(getattr(self, column) is None for column in PRICE_COLUMNS):
            raise ValueError(f"give at least one price: {', '.join(PRICE_COLUMNS)}")
        return self

    def prices(self) -> tuple[Decimal | None, ...]:
        return tuple(getattr(self, column) for column in PRICE_COLUMNS)


class ContractRule(_Entry):
    client: str = Field(min_length=1)
    multiplier: Multiplier
    provider: str = ""
    model: str = ""


class OverridesFile(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    model: list[ModelOverride] = []
    contract: list[ContractRule] = []


@dataclass(frozen=True, slots=True)
class Resolved:
    """Rows for ``price_override_source`` and ``contract_source``."""

    prices: list[tuple[str, str, datetime, datetime, tuple[Decimal | None, ...], str]]
    contracts: list[tuple[str, str, str, datetime, datetime, Decimal, str]]


def read(path: Path) -> OverridesFile:
    """The file parsed and validated; an ``OverridesError`` names each bad entry and field."""
    try:
        content = path.read_bytes()
    except OSError as exc:
        raise OverridesError(f"{path}: {exc}") from exc
    return parse(content, source=str(path))


def parse(content: bytes, *, source: str = "overrides") -> OverridesFile:
    """``content`` parsed and validated. Whatever the bytes, the only error is an ``OverridesError``: the
    watcher keeps the last good overrides for exactly that, so anything else would end its thread."""
    try:
        data = tomllib.loads(content.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise OverridesError(f"{source}: is not UTF-8: {exc}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise OverridesError(f"{source}: {exc}") from exc
    except RecursionError as exc:  # tomllib recurses into nested arrays and inline tables
        raise OverridesError(f"{source}: arrays or tables nested too deeply") from exc
    try:
        return OverridesFile.model_validate(data)
    except ValidationError as exc:
        raise OverridesError(f"{source}:\n" + "\n".join(_describe(error, data) for error in exc.errors())) from exc


def _describe(error: object, data: dict[str, object]) -> str:
    """``model[2] (openai/gpt-4o*): input_mtok: <pydantic's message>``."""
    assert isinstance(error, dict)
    loc = list(error["loc"])
    where = ".".join(str(part) for part in loc)
    if len(loc) >= 2 and isinstance(loc[0], str) and isinstance(loc[1], int):
        entries = data.get(loc[0])
        entry = entries[loc[1]] if isinstance(entries, list) and loc[1] < len(entries) else {}
        if not isinstance(entry, dict):  # model = [1]: the entry itself is what is wrong
            entry = {}
        name = "/".join(str(entry.get(key, "")) for key in ("client", "provider", "model") if entry.get(key))
        field = ".".join(str(part) for part in loc[2:]) or "entry"
        where = f"{loc[0]}[{loc[1]}] ({name or 'unnamed'}): {field}"
    return f"  {where}: {error['msg']}"


def resolve(overrides: OverridesFile, known: Iterable[tuple[str, str]]) -> Resolved:
    """Patterns matched against ``known`` (provider, model) names; overlapping periods are refused."""
    names = sorted(set(known))
    prices = [
        (provider, model, *entry.period(), entry.prices(), _label("model", index, entry.provider, entry.model))
        for index, entry in enumerate(overrides.model)
        for provider, model in _matches(entry.provider, entry.model, names)
    ]
    contracts = [
        (entry.client, provider, model, *entry.period(), entry.multiplier, _label("contract", index, entry.client))
        for index, entry in enumerate(overrides.contract)
        for provider, model in _scopes(entry, names)
    ]
    _refuse_overlaps([(row[:2], row[2], row[3], row[5]) for row in prices])
    _refuse_overlaps([(row[:3], row[3], row[4], row[6]) for row in contracts])
    return Resolved(prices, contracts)


def _matches(provider: str, pattern: str, names: Sequence[tuple[str, str]]) -> list[tuple[str, str]]:
    provider, pattern = provider.lower(), pattern.lower()
    found = [(p, m) for p, m in names if (not provider or p == provider) and fnmatch.fnmatchcase(m.lower(), pattern)]
    literal = not any(char in pattern for char in "*?[")
    if literal and provider and not found:
        found = [(provider, pattern)]
    return found


def _scopes(rule: ContractRule, names: Sequence[tuple[str, str]]) -> list[tuple[str, str]]:
    if rule.model:
        return _matches(rule.provider, rule.model, names)
    return [(rule.provider.lower() or "*", "*")]


def _label(kind: str, index: int, *parts: str) -> str:
    return f"{kind}[{index}] ({'/'.join(part for part in parts if part)})"


def _refuse_overlaps(rows: Sequence[tuple[tuple[str, ...], datetime, datetime, str]]) -> None:
    by_key: dict[tuple[str, ...], list[tuple[datetime, datetime, str]]] = {}
    for key, start, end, label in rows:
        by_key.setdefault(key, []).append((start, end, label))
    for key, periods in by_key.items():
        periods.sort()
        for (_, end, first), (start, _, second) in itertools.pairwise(periods):
            if start <= end:
                raise OverridesError(f"{first} and {second} both apply to {'/'.join(key)} from {start.date()}")


# --- loading ----------------------------------------------------------------------------------------


def known_names(client: Client) -> list[tuple[str, str]]:
    """The (provider, model) names events are priced under: the book's models and the unknown ones."""
    result = client.query(
        "SELECT DISTINCT provider_id, model_id FROM price_cell_current"
        " UNION DISTINCT SELECT DISTINCT lower(provider_raw), lower(model_raw) FROM unknown_models"
    )
    return [(str(provider), str(model)) for provider, model in result.result_rows]


def load(client: Client, overrides: OverridesFile) -> Resolved:
    """Writes a new version of both tables (a sentinel row each, so an emptied file empties them too),
    then reloads the dictionaries, which read the newest version of each table.

    Each table's view switches at its own insert, so a failure between the two would leave the model
    overrides of one version with the contracts of another: then the rows of the new version are
    deleted again before the error is raised, and ``repair`` (run first here and by the watcher) clears
    what a killed process left. Every row is built before the first insert, so only the store can fail.
    """
    resolved = resolve(overrides, known_names(client))
    repair(client)
    version = max(_versions(client)) + 1
    sentinel_prices = ("", "", BOOK_START, BOOK_START, (None,) * len(PRICE_COLUMNS), "sentinel")
    price_rows = [
        [version, p, m, start, end, *prices, label]
        for p, m, start, end, prices, label in [sentinel_prices, *resolved.prices]
    ]
    sentinel_contract = ("", "", "", BOOK_START, BOOK_START, Decimal(1), "sentinel")
    contract_rows = [[version, *row] for row in [sentinel_contract, *resolved.contracts]]
    try:
        client.insert("price_override_source", price_rows, column_names=_PRICE_NAMES, settings=_SYNC)
        client.insert("contract_source", contract_rows, column_names=_CONTRACT_NAMES, settings=_SYNC)
    except BaseException:
        _discard(client, version)
        raise
    _reload(client)
    return resolved


def repair(client: Client) -> int | None:
    """Deletes the half of a version that only one table has (a load killed between its two inserts), so
    the views, and the dictionaries at their next load, show the last whole version; the version deleted,
    or None when there was nothing to do. Both tables always get the same version number, so unequal
    newest versions can only mean such a half."""
    prices, contracts = _versions(client)
    if prices == contracts:
        return None
    table = "price_override_source" if prices > contracts else "contract_source"
    client.command(
        "DELETE FROM {table:Identifier} WHERE version > {whole:UInt32}",
        parameters={"table": table, "whole": min(prices, contracts)},
    )
    log.warning("overrides version %d was half written (%s only): deleted", max(prices, contracts), table)
    _reload(client)
    return max(prices, contracts)


def _versions(client: Client) -> tuple[int, int]:
    result = client.query(
        "SELECT (SELECT max(version) FROM price_override_source), (SELECT max(version) FROM contract_source)"
    )
    prices, contracts = result.result_rows[0]
    return int(prices), int(contracts)


def _discard(client: Client, version: int) -> None:
    """Best effort, while another error is on its way: what cannot be deleted now ``repair`` deletes later."""
    for table in ("price_override_source", "contract_source"):
        try:
            client.command(
                "DELETE FROM {table:Identifier} WHERE version = {version:UInt32}",
                parameters={"table": table, "version": version},
            )
        except Exception as exc:  # the load's own error is the one to raise
            log.warning("overrides version %d not deleted from %s yet: %s: %s", version, table, type(exc).__name__, exc)


def _reload(client: Client) -> None:
    client.command("SYSTEM RELOAD DICTIONARY price_override_by_model")
    client.command("SYSTEM RELOAD DICTIONARY contract_by_scope")
    client.command("SYSTEM RELOAD DICTIONARY contract_client")


_PRICE_NAMES = ["version", "provider_id", "model_id", "valid_from", "valid_to", *PRICE_COLUMNS, "entry"]
_CONTRACT_NAMES = ["version", "client_id", "provider_id", "model_id", "valid_from", "valid_to", "multiplier", "entry"]
_SYNC = {"async_insert": 0}
"""The dictionaries are reloaded right after: the rows must be written when the insert returns."""
