"""The price book: genai-prices' unit prices and model names as rows for ClickHouse's dictionaries.

ClickHouse prices every event itself (``schemas/clickhouse/0003_usage_events.sql``) from two
dictionaries this module fills: ``price_unit_by_model`` (unit prices per provider, model and validity
period) and ``model_alias`` (model names as callers write them -> genai-prices' ids). ``load`` writes a
whole new ``book_version`` and then reloads both dictionaries; their sources read the newest version only.

How genai-prices' price data maps to rows:

- A plain ``ModelPrice``: one row valid from 1970-01-01 to 2106-01-01.
- A list of ``ConditionalPrice``: the start dates cut time into periods and each period gets the price
  ``ModelInfo.get_prices`` picks inside it (the last active condition wins; before every start date the
  first price applies). Adjacent periods with the same winner are merged.
- ``valid_to`` is the period's LAST second, inclusive: a ClickHouse range dictionary matches
  ``valid_from <= t <= valid_to`` and, where two ranges share a second, returns the older one, so each
  period ends one second before the next begins (no gaps, no overlaps).
- Approximations, flagged with ``approximate = 1``: time-of-day conditions (ignored: the price in force
  outside every time-of-day window applies), tiered prices (the base price applies) and token price
  keys the table has no column for (image, video or cached-audio tokens are counted in input/output
  tokens and priced at those rates). Non-token units events do not report (storage searches, document
  pages, audio hours, characters) do not make a price approximate: nothing an event carries is
  mispriced. Price variants (service tiers, batch) are
  ignored for now: the standard price applies and the row is not flagged.

Alias rows resolve every literal model name genai-prices knows (model ids and ``equals`` clauses) with
genai-prices' own lookup, per provider and without one (``provider_raw = ''``), so a name maps to the
model genai-prices itself would pick, including through a provider's fallback providers. Names matched
only by ``starts_with``/``contains``/``regex`` clauses (dated or fine-tuned variants) are not listed: they
stay ``unknown_model`` until a row names them.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

from clickhouse_connect.driver.client import Client
from genai_prices.data_snapshot import DataSnapshot, get_snapshot
from genai_prices.types import (
    ClauseAnd,
    ClauseEquals,
    ClauseOr,
    ConditionalPrice,
    MatchLogic,
    ModelInfo,
    ModelPrice,
    Provider,
    StartDateConstraint,
    TieredPrices,
    TimeOfDateConstraint,
)

PRICE_COLUMNS: tuple[str, ...] = (
    "input_mtok",
    "cache_read_mtok",
    "cache_write_mtok",
    "cache_write_1h_mtok",
    "output_mtok",
    "output_reasoning_mtok",
    "input_audio_mtok",
    "output_audio_mtok",
    "web_searches_kcount",
    "requests_kcount",
)
"""genai-prices price keys that have a column in ``price_unit_source``, in column order."""

BOOK_START = datetime(1970, 1, 1, tzinfo=UTC)
BOOK_END = datetime(2106, 1, 1, tzinfo=UTC)
_ONE_SECOND = timedelta(seconds=1)


@dataclass(frozen=True, slots=True)
class PriceRow:
    provider_id: str
    model_id: str
    valid_from: datetime
    valid_to: datetime
    """Last second of the period, inclusive (see the module docstring)."""
    prices: tuple[Decimal | None, ...]
    """Unit prices in ``PRICE_COLUMNS`` order; None where the model has no such price."""
    approximate: bool


@dataclass(frozen=True, slots=True)
class AliasRow:
    provider_raw: str
    """The provider as callers give it; '' when they give none."""
    model_raw: str
    """The model name lower-cased."""
    provider_id: str
    model_id: str


@dataclass(frozen=True, slots=True)
class PriceBook:
    prices: list[PriceRow]
    aliases: list[AliasRow]


@dataclass(frozen=True, slots=True)
class BookStats:
    book_version: int
    price_rows: int
    alias_rows: int
    seconds: float


@dataclass(frozen=True, slots=True)
class _Period:
    start: date | None
    """First day (UTC) of the period; None for the beginning of time."""
    price: ModelPrice
    time_of_day: bool
    """True when a time-of-day condition was ignored in choosing ``price``."""


# --- price rows -------------------------------------------------------------------------------------


def build(snapshot: DataSnapshot | None = None) -> PriceBook:
    """All rows of a book from ``snapshot`` (genai-prices' current one by default)."""
    snapshot = snapshot or get_snapshot()
    return PriceBook(price_rows(snapshot.providers), alias_rows(snapshot))


def price_rows(providers: Sequence[Provider]) -> list[PriceRow]:
    return [row for provider in providers for model in provider.models for row in model_rows(provider.id, model)]


def model_rows(provider_id: str, model: ModelInfo) -> list[PriceRow]:
    """One row per validity period of one model, contiguous from BOOK_START to BOOK_END."""
    periods = _periods(model)
    rows = []
    for period, following in zip(periods, [*periods[1:], None], strict=True):
        valid_from = _day_start(period.start) if period.start else BOOK_START
        valid_to = _day_start(following.start) - _ONE_SECOND if following and following.start else BOOK_END
        prices, approximate = unit_prices(period.price)
        rows.append(PriceRow(provider_id, model.id, valid_from, valid_to, prices, approximate or period.time_of_day))
    return rows


def unit_prices(price: ModelPrice) -> tuple[tuple[Decimal | None, ...], bool]:
    """The price columns of one ModelPrice and whether they only approximate it."""
    values = _price_items(price)
    columns = tuple(_base(values.get(key)) for key in PRICE_COLUMNS)
    tiered = any(isinstance(value, TieredPrices) for value in values.values())
    unmodelled = {key for key in values.keys() - set(PRICE_COLUMNS) if key.endswith("_mtok")}
    return columns, tiered or bool(unmodelled)


def _price_items(price: ModelPrice) -> dict[str, Decimal | TieredPrices]:
    return {
        key: value
        for key, value in price.__dict__.items()
        if not key.startswith("_") and isinstance(value, Decimal | TieredPrices)
    }


def _base(value: Decimal | TieredPrices | None) -> Decimal | None:
    return value.base if isinstance(value, TieredPrices) else value


def _day_start(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=UTC)


def _periods(model: ModelInfo) -> list[_Period]:
    """The model's price periods, split at start dates, adjacent equal winners merged."""
    if isinstance(model.prices, ModelPrice):
        return [_Period(None, model.prices, time_of_day=False)]
    conditions = model.prices
    starts = sorted({c.constraint.start_date for c in conditions if isinstance(c.constraint, StartDateConstraint)})
    time_of_day = any(isinstance(c.constraint, TimeOfDateConstraint) for c in conditions)
    periods: list[_Period] = []
    for start in [None, *starts]:
        price = _winner(conditions, start)
        if not periods or periods[-1].price is not price:
            periods.append(_Period(start, price, time_of_day))
    return periods


def _winner(conditions: Sequence[ConditionalPrice], day: date | None) -> ModelPrice:
    """``ModelInfo.get_prices`` on day ``day`` (None: before every start date), time of day ignored."""
    for condition in reversed(conditions):
        constraint = condition.constraint
        if constraint is None or (
            isinstance(constraint, StartDateConstraint) and day is not None and day >= constraint.start_date
        ):
            return condition.prices
    return conditions[0].prices


# --- alias rows -------------------------------------------------------------------------------------


def alias_rows(snapshot: DataSnapshot) -> list[AliasRow]:
    """Per provider and provider-less rows for every literal model name, as genai-prices resolves them.

    A model's own id always maps to the model, also where genai-prices' lookup does not reach it by id
    (its match clauses name other spellings, as for Fireworks' ``accounts/fireworks/models/...``).
    """
    owners = {id(model): provider.id for provider in snapshot.providers for model in provider.models}
    by_id = {provider.id: provider for provider in snapshot.providers}
    rows = {
        (provider.id, model.id.lower()): AliasRow(provider.id, model.id.lower(), provider.id, model.id)
        for provider in snapshot.providers
        for model in provider.models
    }
    for provider in snapshot.providers:
        reachable = [provider, *(by_id[p] for p in provider.fallback_model_providers or () if p in by_id)]
        for name in sorted({name for p in reachable for name in provider_names(p)}):
            _add_alias(rows, snapshot, owners, provider.id, name)
    for name in sorted({name for provider in snapshot.providers for name in provider_names(provider)}):
        _add_alias(rows, snapshot, owners, "", name)
    return list(rows.values())


def _add_alias(
    rows: dict[tuple[str, str], AliasRow],
    snapshot: DataSnapshot,
    owners: dict[int, str],
    provider_raw: str,
    name: str,
) -> None:
    try:
        _, model = snapshot.find_provider_model(name, None, provider_raw or None, None)
    except LookupError:
        return
    rows[(provider_raw, name)] = AliasRow(provider_raw, name, owners[id(model)], model.id)


def provider_names(provider: Provider) -> set[str]:
    """Lower-cased model ids and ``equals`` literals of one provider's models."""
    return {name for model in provider.models for name in model_names(model)}


def model_names(model: ModelInfo) -> set[str]:
    return {model.id.lower(), *equals_literals(model.match)}


def equals_literals(clause: MatchLogic) -> Iterator[str]:
    """Every ``equals`` string in a match clause, lower-cased, through ``or`` and ``and``."""
    if isinstance(clause, ClauseEquals):
        yield clause.equals.lower()
    elif isinstance(clause, ClauseOr):
        for inner in clause.or_:
            yield from equals_literals(inner)
    elif isinstance(clause, ClauseAnd):
        for inner in clause.and_:
            yield from equals_literals(inner)


# --- loading ----------------------------------------------------------------------------------------


def load(client: Client, snapshot: DataSnapshot | None = None) -> BookStats:
    """Writes a new book version, then reloads the dictionaries, which read the newest version only."""
    started = time.perf_counter()
    book = build(snapshot)
    version = next_version(client)
    _insert_prices(client, version, book.prices)
    _insert_aliases(client, version, book.aliases)
    client.command("SYSTEM RELOAD DICTIONARY price_unit_by_model")
    client.command("SYSTEM RELOAD DICTIONARY model_alias")
    return BookStats(version, len(book.prices), len(book.aliases), time.perf_counter() - started)


def next_version(client: Client) -> int:
    result = client.query(
        "SELECT greatest((SELECT max(book_version) FROM price_unit_source),"
        " (SELECT max(book_version) FROM model_alias_source))"
    )
    return int(result.result_rows[0][0]) + 1


def _insert_prices(client: Client, version: int, rows: Sequence[PriceRow]) -> None:
    columns: list[list[object]] = [
        [version] * len(rows),
        [row.provider_id for row in rows],
        [row.model_id for row in rows],
        [row.valid_from for row in rows],
        [row.valid_to for row in rows],
        *(list[object]([row.prices[index] for row in rows]) for index in range(len(PRICE_COLUMNS))),
        [int(row.approximate) for row in rows],
    ]
    names = ["book_version", "provider_id", "model_id", "valid_from", "valid_to", *PRICE_COLUMNS, "approximate"]
    client.insert("price_unit_source", columns, column_names=names, column_oriented=True, settings=_SYNC)


def _insert_aliases(client: Client, version: int, rows: Sequence[AliasRow]) -> None:
    columns: list[list[object]] = [
        [version] * len(rows),
        [row.provider_raw for row in rows],
        [row.model_raw for row in rows],
        [row.provider_id for row in rows],
        [row.model_id for row in rows],
    ]
    names = ["book_version", "provider_raw", "model_raw", "provider_id", "model_id"]
    client.insert("model_alias_source", columns, column_names=names, column_oriented=True, settings=_SYNC)


_SYNC = {"async_insert": 0}
"""The dictionaries are reloaded right after: the rows must be written when the insert returns."""
