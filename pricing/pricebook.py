"""The price book: genai-prices' unit prices and model names as rows for ClickHouse's dictionaries.

ClickHouse prices every event itself (the SQL function ``usagemeter_cost``,
``schemas/clickhouse/0009_pricing_functions.sql``) from two dictionaries this module fills:
``price_cell_by_model`` (unit prices per provider, model, service-tier variant, validity period and grid
cell) and
``model_alias`` (model names as callers write them -> genai-prices' ids). ``load`` writes a whole new
``book_version`` and then reloads both dictionaries; their sources read the newest version only.

How genai-prices' price data maps to rows:

- Time is cut into periods at every start date of the model's prices and variants (and of the provider
  rules in ``variants.py``); each period gets what ``ModelInfo.get_prices`` picks inside it. Adjacent
  periods with the same prices are merged.
- ``valid_to`` is the period's LAST second, inclusive: a ClickHouse range dictionary matches
  ``valid_from <= t <= valid_to`` and, where two ranges share a second, returns the older one, so each
  period ends one second before the next begins (no gaps, no overlaps).
- Inside a period, prices are a grid. Time-of-day conditions (DeepSeek's off-peak hours) cut the UTC day
  into segments at their window edges; each segment gets the price in force at its first second.
  Tiered prices (long context) add tier columns: the union of the tier starts of all kinds, each kind's
  price per union tier picked as ``calc_unit_price`` would (a tier applies when the request's input
  tokens are MORE than its start; the tier's price then applies to every token of that kind).
  A model without either has a 1x1 grid.
- Variants: a row per event ``service_tier`` the model has a price for (``variants.py``: genai-prices'
  ``price_variants`` and the providers' published batch rules). Where none applies, the engine falls back
  to the standard row (``variant = ''``) and flags the event ``approximate``.
- ``approximate = 1`` where genai-prices has token price keys the grid has no column for (image, video or
  cached-audio tokens are counted in input/output tokens and priced at those rates). Non-token units
  events do not report (storage searches, document pages, audio hours, characters) do not make a price
  approximate: nothing an event carries is mispriced.

Alias rows resolve every literal model name genai-prices knows (model ids and ``equals`` clauses) with
genai-prices' own lookup, per provider and without one (``provider_raw = ''``), so a name maps to the
model genai-prices itself would pick, including through a provider's fallback providers. Names matched
only by ``starts_with``/``contains``/``regex`` clauses (dated or fine-tuned variants) are not listed: they
stay ``unknown_model`` until a row names them.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from time import perf_counter

from clickhouse_connect.driver.client import Client
from genai_prices.data_snapshot import DataSnapshot, get_snapshot
from genai_prices.types import (
    ClauseAnd,
    ClauseEquals,
    ClauseOr,
    MatchLogic,
    ModelInfo,
    ModelPrice,
    PriceVariant,
    Provider,
    StartDateConstraint,
    TieredPrices,
    TimeOfDateConstraint,
)

from usagemeter.pricing import model_names as model_patterns
from usagemeter.pricing import variants
from usagemeter.pricing.columns import BOOK_END, BOOK_START, PRICE_COLUMNS

_ONE_SECOND = timedelta(seconds=1)


@dataclass(frozen=True, slots=True)
class Grid:
    """A model's prices during one period: time-of-day segments x long-context tiers."""

    day_cuts: tuple[int, ...]
    """UTC seconds of the day where a segment begins, ascending; segment 0 begins at midnight."""
    tier_starts: tuple[int, ...]
    """Input token counts a request must EXCEED for the next tier, ascending (the union over all kinds)."""
    prices: tuple[tuple[Decimal | None, ...], ...]
    """Per ``PRICE_COLUMNS``, the unit prices segment by segment, tier by tier; None: no such price."""
    approximate: bool
    rule: str
    """The ``variants.ProviderRule`` source that made these prices; '' for genai-prices' own."""

    def price(self, column: str, segment: int = 0, tier: int = 0) -> Decimal | None:
        return self.prices[PRICE_COLUMNS.index(column)][segment * (len(self.tier_starts) + 1) + tier]


@dataclass(frozen=True, slots=True)
class PriceRow:
    provider_id: str
    model_id: str
    variant: str
    """The event ``service_tier`` this row prices; '' for the standard price."""
    valid_from: datetime
    valid_to: datetime
    """Last second of the period, inclusive (see the module docstring)."""
    grid: Grid


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


# --- price rows -------------------------------------------------------------------------------------


def build(snapshot: DataSnapshot | None = None) -> PriceBook:
    """All rows of a book from ``snapshot`` (genai-prices' current one by default)."""
    snapshot = snapshot or get_snapshot()
    return PriceBook(price_rows(snapshot.providers), alias_rows(snapshot))


def price_rows(providers: Sequence[Provider]) -> list[PriceRow]:
    return [row for provider in providers for model in provider.models for row in model_rows(provider.id, model)]


def model_rows(provider_id: str, model: ModelInfo) -> list[PriceRow]:
    """The standard rows, contiguous from BOOK_START to BOOK_END, then each variant's rows where
    genai-prices or a provider rule prices the variant (elsewhere the engine falls back to the standard row)."""
    starts: list[date | None] = [None, *_start_dates(provider_id, model)]
    day_cuts = _day_cuts(model)
    rows = _rows(provider_id, model.id, "", starts, [_grid(provider_id, model, "", s, day_cuts) for s in starts])
    for tier in _variant_tiers(provider_id, model):
        rows.extend(
            _rows(provider_id, model.id, tier, starts, [_grid(provider_id, model, tier, s, day_cuts) for s in starts])
        )
    return rows


def _rows(
    provider_id: str, model_id: str, tier: str, starts: list[date | None], grids: list[Grid | None]
) -> list[PriceRow]:
    """One row per run of equal grids; None grids leave a gap."""
    rows: list[PriceRow] = []
    for index, (start, grid) in enumerate(zip(starts, grids, strict=True)):
        if grid is None or (index and grids[index - 1] == grid):
            continue
        end = next((i for i in range(index + 1, len(grids)) if grids[i] != grid), None)
        following = starts[end] if end is not None else None
        valid_from = _day_start(start) if start else BOOK_START
        valid_to = _day_start(following) - _ONE_SECOND if following else BOOK_END
        rows.append(PriceRow(provider_id, model_id, tier, valid_from, valid_to, grid))
    return rows


def _grid(provider_id: str, model: ModelInfo, tier: str, start: date | None, day_cuts: tuple[int, ...]) -> Grid | None:
    """The prices genai-prices (or a provider rule) gives at each segment's first second of day ``start``;
    None for a variant that neither genai-prices nor a rule prices then."""
    day = _day_start(start) if start else BOOK_START
    cells = [_cell_price(provider_id, model, tier, day + timedelta(seconds=cut)) for cut in (0, *day_cuts)]
    if tier and all(origin is None for _, origin in cells):
        return None
    values = [{key: getattr(price, key) for key in PRICE_COLUMNS} for price, _ in cells]
    tier_starts = tuple(
        sorted({t.start for v in values for p in v.values() if isinstance(p, TieredPrices) for t in p.tiers})
    )
    prices = tuple(
        tuple(_tier_price(cell[key], tier_starts, index) for cell in values for index in range(len(tier_starts) + 1))
        for key in PRICE_COLUMNS
    )
    approximate = any(_unmodelled(price) for price, _ in cells)
    return Grid(day_cuts, tier_starts, prices, approximate, next((origin for _, origin in cells if origin), ""))


def _cell_price(provider_id: str, model: ModelInfo, tier: str, moment: datetime) -> tuple[ModelPrice, str | None]:
    """What ``ModelInfo.get_prices`` gives at ``moment`` for the event tier, else the provider's rule, and
    where it comes from: '' genai-prices, a rule's source, None for a tier that nothing prices."""
    if not tier:
        return model.get_prices(moment), ""
    context = variants.price_context(tier)
    if any(_variant_applies(variant, context, moment) for variant in model.price_variants or ()):
        return model.get_prices(moment, context), ""
    rule = variants.rule_for(provider_id, tier, moment.date())
    if rule:
        return rule.apply(model.get_prices(moment)), rule.source
    return model.get_prices(moment), None


def _variant_applies(variant: PriceVariant, context: dict[str, str], moment: datetime) -> bool:
    active = variant.constraint is None or variant.constraint.active(moment)
    return active and all(context.get(key) == value for key, value in variant.when.items())


def _tier_price(value: Decimal | TieredPrices | None, tier_starts: tuple[int, ...], index: int) -> Decimal | None:
    """The price of union tier ``index`` (input tokens above ``tier_starts[index - 1]``): a kind's own tier
    applies when its start is at or below that bound, as ``calc_unit_price`` compares ``tokens > start``."""
    if not isinstance(value, TieredPrices):
        return value
    bound = tier_starts[index - 1] if index else -1
    return next((t.price for t in reversed(value.tiers) if t.start <= bound), value.base)


def _unmodelled(price: ModelPrice) -> bool:
    """Token prices the grid has no column for (image, video, cached audio tokens...): those tokens are
    counted in input/output and priced at those rates. Non-token units events do not report (storage
    searches, pages, audio hours) do not make a price approximate."""
    keys = {key for key, value in price.__dict__.items() if not key.startswith("_") and value is not None}
    return any(key.endswith("_mtok") for key in keys - set(PRICE_COLUMNS))


def _start_dates(provider_id: str, model: ModelInfo) -> list[date]:
    """Every day a price may change: start dates of prices and variants, and the provider rules' first days."""
    constraints = [c.constraint for c in model.prices] if isinstance(model.prices, list) else []
    constraints += [v.constraint for v in model.price_variants or ()]
    days = {c.start_date for c in constraints if isinstance(c, StartDateConstraint)}
    days |= {rule.since for rule in variants.PROVIDER_RULES if rule.provider_id == provider_id}
    return sorted(day for day in days if day > BOOK_START.date())


def _day_cuts(model: ModelInfo) -> tuple[int, ...]:
    """UTC seconds of the day where a time-of-day price window of the model begins or ends."""
    constraints = [c.constraint for c in model.prices] if isinstance(model.prices, list) else []
    constraints += [v.constraint for v in model.price_variants or ()]
    windows = [c for c in constraints if isinstance(c, TimeOfDateConstraint)]
    cuts = {_utc_second(moment) for window in windows for moment in (window.start_time, window.end_time)}
    return tuple(sorted(cuts - {0}))


def _utc_second(moment: time) -> int:
    utc = datetime.combine(BOOK_START.date(), moment, tzinfo=moment.tzinfo or UTC).astimezone(UTC)
    return utc.hour * 3600 + utc.minute * 60 + utc.second


def _variant_tiers(provider_id: str, model: ModelInfo) -> list[str]:
    """Event tiers with prices of their own: genai-prices' variants an event field selects, and rules."""
    tiers = {variants.event_tier(v.when) for v in model.price_variants or ()}
    tiers |= {rule.service_tier for rule in variants.PROVIDER_RULES if rule.provider_id == provider_id}
    return sorted(tier for tier in tiers if tier)


def _day_start(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=UTC)


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
    started = perf_counter()
    snapshot = snapshot or get_snapshot()
    book = build(snapshot)
    version = next_version(client)
    _insert_prices(client, version, book.prices)
    _insert_aliases(client, version, book.aliases)
    model_patterns.insert(client, version, model_patterns.pattern_rows(snapshot).rows)
    client.command("SYSTEM RELOAD DICTIONARY price_cell_by_model")
    client.command("SYSTEM RELOAD DICTIONARY price_cell_by_id")
    client.command("SYSTEM RELOAD DICTIONARY model_alias")
    client.command("SYSTEM RELOAD DICTIONARY model_pattern")
    return BookStats(version, len(book.prices), len(book.aliases), perf_counter() - started)


def next_version(client: Client) -> int:
    result = client.query(
        "SELECT greatest((SELECT max(book_version) FROM price_cell_source),"
        " (SELECT max(book_version) FROM model_alias_source))"
    )
    return int(result.result_rows[0][0]) + 1


def _insert_prices(client: Client, version: int, rows: Sequence[PriceRow]) -> None:
    """One row per grid cell, each with the grid's shape (``price_cell_source``)."""
    cells = [(row, cell, prices) for row in rows for cell, prices in enumerate(_cells(row.grid), start=1)]
    shapes = [_shape(row.grid) for row, _, _ in cells]
    columns: list[list[object]] = [
        [version] * len(cells),
        [row.provider_id for row, _, _ in cells],
        [row.model_id for row, _, _ in cells],
        [row.variant for row, _, _ in cells],
        [cell for _, cell, _ in cells],
        list(range(1, len(cells) + 1)),
        [row.valid_from for row, _, _ in cells],
        [row.valid_to for row, _, _ in cells],
        *(list[object]([shape[index] for shape in shapes]) for index in range(len(_SHAPE_COLUMNS))),
        *(list[object]([prices[index] for _, _, prices in cells]) for index in range(len(PRICE_COLUMNS))),
        [int(row.grid.approximate) for row, _, _ in cells],
        [row.grid.rule for row, _, _ in cells],
    ]
    names = ["book_version", "provider_id", "model_id", "variant", "cell", "price_id", "valid_from", "valid_to"]
    names += [*_SHAPE_COLUMNS, *PRICE_COLUMNS, "approximate", "rule"]
    client.insert("price_cell_source", columns, column_names=names, column_oriented=True, settings=_SYNC)


_MAX_TIERS = 3
_MAX_DAY_CUTS = 6
_NO_TIER = 2**64 - 1
_NO_CUT = 86_400
_SHAPE_COLUMNS = (
    *(f"tier_start_{n}" for n in range(1, _MAX_TIERS + 1)),
    *(f"day_cut_{n}" for n in range(1, _MAX_DAY_CUTS + 1)),
)


def _shape(grid: Grid) -> tuple[int, ...]:
    """The grid's tier starts and day cuts padded to the table's columns; a larger grid is refused."""
    if len(grid.tier_starts) > _MAX_TIERS or len(grid.day_cuts) > _MAX_DAY_CUTS:
        raise ValueError(
            f"a price grid with {len(grid.tier_starts)} tiers and {len(grid.day_cuts)} day cuts does not fit"
            f" price_cell_source ({_MAX_TIERS} and {_MAX_DAY_CUTS}): add columns in a migration"
        )
    tiers = [*grid.tier_starts, *[_NO_TIER] * (_MAX_TIERS - len(grid.tier_starts))]
    cuts = [*grid.day_cuts, *[_NO_CUT] * (_MAX_DAY_CUTS - len(grid.day_cuts))]
    return (*tiers, *cuts)


def _cells(grid: Grid) -> list[tuple[Decimal | None, ...]]:
    """The grid's cells in cell-number order, each the unit prices in ``PRICE_COLUMNS`` order."""
    count = len(grid.prices[0])
    return [tuple(column[index] for column in grid.prices) for index in range(count)]


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
