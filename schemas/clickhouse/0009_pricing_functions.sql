-- Pricing in one place: SQL functions that price one event from columns usage_events also has (plus
-- event_time), used by the staging view below and by repricing. The price book becomes a grid per
-- (provider, model, service-tier variant, validity period): time-of-day segments x long-context tiers
-- (pricing/pricebook.py explains the layout), replacing 0001's one price per period. Overrides and client contracts have their own tables,
-- filled from the overrides file (pricing/overrides.py).
--
-- SQL functions are global to a server (not per database) and a materialized view expands them when it is
-- created: changing a function means re-creating the view (0012_usage_events_from_staging.sql).

-- Unit prices from genai-prices and the provider rules of pricing/variants.py: per (provider, model,
-- variant, validity period) a grid of cells, time-of-day segments x long-context tiers, one row per cell
-- (pricing/pricebook.py). Every cell row repeats the grid's shape (tier starts, day cuts), so the lookup
-- of cell 1 tells which cell an event falls in. Two dictionaries, because a range dictionary's cost grows
-- with the attributes it returns (about 0.1 us each, measured; Array attributes far more): the range
-- lookup returns one price_id, and a FLAT dictionary (an array index) returns the cell's 20 attributes.
CREATE TABLE IF NOT EXISTS price_cell_source
(
    book_version UInt32,
    provider_id String,
    model_id String,
    variant String COMMENT 'the event service_tier this row prices (batch, flex, priority, ...); empty = standard',
    cell UInt16 COMMENT '1 + segment * (tiers + 1) + tier',
    price_id UInt32 COMMENT 'the row number in its book version, 1..: the key of price_cell_by_id',
    valid_from DateTime('UTC'),
    valid_to DateTime('UTC'),
    tier_start_1 UInt64 COMMENT 'a tier applies when the input tokens are MORE than its start; unused: 2^64 - 1',
    tier_start_2 UInt64,
    tier_start_3 UInt64,
    day_cut_1 UInt32 COMMENT 'UTC second of the day where a time-of-day segment begins; unused: 86400',
    day_cut_2 UInt32,
    day_cut_3 UInt32,
    day_cut_4 UInt32,
    day_cut_5 UInt32,
    day_cut_6 UInt32,
    input_mtok Nullable(Decimal(38, 18)),
    cache_read_mtok Nullable(Decimal(38, 18)),
    cache_write_mtok Nullable(Decimal(38, 18)),
    cache_write_1h_mtok Nullable(Decimal(38, 18)),
    output_mtok Nullable(Decimal(38, 18)),
    output_reasoning_mtok Nullable(Decimal(38, 18)),
    input_audio_mtok Nullable(Decimal(38, 18)),
    output_audio_mtok Nullable(Decimal(38, 18)),
    web_searches_kcount Nullable(Decimal(38, 18)),
    requests_kcount Nullable(Decimal(38, 18)),
    approximate UInt8 COMMENT '1 when genai-prices has price kinds the book has no column for (image tokens...)',
    rule String COMMENT 'the pricing/variants.py rule a variant row comes from; empty = genai-prices'
)
ENGINE = MergeTree
ORDER BY (book_version, provider_id, model_id, variant, cell, valid_from);

-- The newest book only: the dictionary source, so a half-written new version is never loaded.
CREATE VIEW IF NOT EXISTS price_cell_current AS
SELECT * EXCEPT (book_version, rule), 1 AS found
FROM price_cell_source
WHERE book_version = (SELECT max(book_version) FROM price_cell_source);

-- The cell row in force at a moment, per (provider, model, variant, cell); price_id 0 when none.
CREATE DICTIONARY IF NOT EXISTS price_cell_by_model
(
    provider_id String,
    model_id String,
    variant String,
    cell UInt16,
    valid_from DateTime('UTC'),
    valid_to DateTime('UTC'),
    price_id UInt32 DEFAULT 0
)
PRIMARY KEY provider_id, model_id, variant, cell
SOURCE(CLICKHOUSE(TABLE 'price_cell_current'))
LAYOUT(COMPLEX_KEY_RANGE_HASHED())
RANGE(MIN valid_from MAX valid_to)
LIFETIME(0);

-- A cell row's shape and unit prices by price_id.
CREATE DICTIONARY IF NOT EXISTS price_cell_by_id
(
    price_id UInt64,
    found UInt8 DEFAULT 0,
    tier_start_1 UInt64 DEFAULT 18446744073709551615,
    tier_start_2 UInt64 DEFAULT 18446744073709551615,
    tier_start_3 UInt64 DEFAULT 18446744073709551615,
    day_cut_1 UInt32 DEFAULT 86400,
    day_cut_2 UInt32 DEFAULT 86400,
    day_cut_3 UInt32 DEFAULT 86400,
    day_cut_4 UInt32 DEFAULT 86400,
    day_cut_5 UInt32 DEFAULT 86400,
    day_cut_6 UInt32 DEFAULT 86400,
    input_mtok Nullable(Decimal(38, 18)) DEFAULT NULL,
    cache_read_mtok Nullable(Decimal(38, 18)) DEFAULT NULL,
    cache_write_mtok Nullable(Decimal(38, 18)) DEFAULT NULL,
    cache_write_1h_mtok Nullable(Decimal(38, 18)) DEFAULT NULL,
    output_mtok Nullable(Decimal(38, 18)) DEFAULT NULL,
    output_reasoning_mtok Nullable(Decimal(38, 18)) DEFAULT NULL,
    input_audio_mtok Nullable(Decimal(38, 18)) DEFAULT NULL,
    output_audio_mtok Nullable(Decimal(38, 18)) DEFAULT NULL,
    web_searches_kcount Nullable(Decimal(38, 18)) DEFAULT NULL,
    requests_kcount Nullable(Decimal(38, 18)) DEFAULT NULL,
    approximate UInt8 DEFAULT 0
)
PRIMARY KEY price_id
SOURCE(CLICKHOUSE(TABLE 'price_cell_current'))
LAYOUT(FLAT())
LIFETIME(0);

-- Model price overrides from the overrides file, patterns already resolved to model names; a NULL price
-- keeps the book's price for that kind. One version at a time, like the book.
CREATE TABLE IF NOT EXISTS price_override_source
(
    version UInt32,
    provider_id String,
    model_id String,
    valid_from DateTime('UTC'),
    valid_to DateTime('UTC'),
    input_mtok Nullable(Decimal(38, 18)),
    cache_read_mtok Nullable(Decimal(38, 18)),
    cache_write_mtok Nullable(Decimal(38, 18)),
    cache_write_1h_mtok Nullable(Decimal(38, 18)),
    output_mtok Nullable(Decimal(38, 18)),
    output_reasoning_mtok Nullable(Decimal(38, 18)),
    input_audio_mtok Nullable(Decimal(38, 18)),
    output_audio_mtok Nullable(Decimal(38, 18)),
    web_searches_kcount Nullable(Decimal(38, 18)),
    requests_kcount Nullable(Decimal(38, 18)),
    entry String COMMENT 'the overrides file entry this row comes from'
)
ENGINE = MergeTree
ORDER BY (version, provider_id, model_id, valid_from);

CREATE VIEW IF NOT EXISTS price_override_current AS
SELECT * EXCEPT (version, entry), 1 AS found
FROM price_override_source
WHERE version = (SELECT max(version) FROM price_override_source);

-- Override unit prices in force at a moment, per (provider, model) as usage_events names them.
CREATE DICTIONARY IF NOT EXISTS price_override_by_model
(
    provider_id String,
    model_id String,
    valid_from DateTime('UTC'),
    valid_to DateTime('UTC'),
    found UInt8 DEFAULT 0,
    input_mtok Nullable(Decimal(38, 18)) DEFAULT NULL,
    cache_read_mtok Nullable(Decimal(38, 18)) DEFAULT NULL,
    cache_write_mtok Nullable(Decimal(38, 18)) DEFAULT NULL,
    cache_write_1h_mtok Nullable(Decimal(38, 18)) DEFAULT NULL,
    output_mtok Nullable(Decimal(38, 18)) DEFAULT NULL,
    output_reasoning_mtok Nullable(Decimal(38, 18)) DEFAULT NULL,
    input_audio_mtok Nullable(Decimal(38, 18)) DEFAULT NULL,
    output_audio_mtok Nullable(Decimal(38, 18)) DEFAULT NULL,
    web_searches_kcount Nullable(Decimal(38, 18)) DEFAULT NULL,
    requests_kcount Nullable(Decimal(38, 18)) DEFAULT NULL
)
PRIMARY KEY provider_id, model_id
SOURCE(CLICKHOUSE(TABLE 'price_override_current'))
LAYOUT(COMPLEX_KEY_RANGE_HASHED())
RANGE(MIN valid_from MAX valid_to)
LIFETIME(0);

-- Client contract multipliers (discount < 1, markup > 1) from the overrides file. Scope: a model
-- (provider_id, model_id), a whole provider (model_id = '*') or every call of the client (both '*').
CREATE TABLE IF NOT EXISTS contract_source
(
    version UInt32,
    client_id String,
    provider_id String,
    model_id String,
    valid_from DateTime('UTC'),
    valid_to DateTime('UTC'),
    multiplier Decimal(18, 6),
    entry String COMMENT 'the overrides file entry this row comes from'
)
ENGINE = MergeTree
ORDER BY (version, client_id, provider_id, model_id, valid_from);

CREATE VIEW IF NOT EXISTS contract_current AS
SELECT * EXCEPT (version, entry), 1 AS found
FROM contract_source
WHERE version = (SELECT max(version) FROM contract_source);

-- Contract multiplier in force at a moment, per (client, provider or '*', model or '*').
CREATE DICTIONARY IF NOT EXISTS contract_by_scope
(
    client_id String,
    provider_id String,
    model_id String,
    valid_from DateTime('UTC'),
    valid_to DateTime('UTC'),
    found UInt8 DEFAULT 0,
    multiplier Decimal(18, 6) DEFAULT 1
)
PRIMARY KEY client_id, provider_id, model_id
SOURCE(CLICKHOUSE(TABLE 'contract_current'))
LAYOUT(COMPLEX_KEY_RANGE_HASHED())
RANGE(MIN valid_from MAX valid_to)
LIFETIME(0);

-- Clients with a contract at any time: one hash lookup spares every other client the scope lookups.
CREATE VIEW IF NOT EXISTS contract_client_current AS
SELECT DISTINCT client_id, toUInt8(1) AS found
FROM contract_current;

CREATE DICTIONARY IF NOT EXISTS contract_client
(
    client_id String,
    found UInt8 DEFAULT 0
)
PRIMARY KEY client_id
SOURCE(CLICKHOUSE(TABLE 'contract_client_current'))
LAYOUT(COMPLEX_KEY_HASHED())
LIFETIME(0);

-- A SQL function is a macro: every use of an argument copies the argument's whole expression into the query
-- tree, which the engine analyses again at every insert. So each function below uses its arguments a few
-- times only, and a step whose result is used many times is bound once: by a subquery in the staging view
-- (its result becomes a column), by a one-element arrayMap in the all-in-one functions for other queries.
-- The steps, in order: usagemeter_price_variant, then usagemeter_price_grid, usagemeter_price_override and
-- usagemeter_contract_multiplier (the lookups), usagemeter_cell_prices (the unit prices of the event's cell), usagemeter_exact_costs,
-- usagemeter_cost_result. usagemeter_unit_prices and usagemeter_cost chain them for other queries.

-- The variant that prices the event: its service tier where the book has a row for it then, else ''
-- (the standard row). Standard events cost no lookup here.
CREATE OR REPLACE FUNCTION usagemeter_price_variant AS (provider, model, service_tier, at) ->
    if(service_tier = '', '',
       if(dictGet('price_cell_by_model', 'price_id', (provider, model, lower(service_tier), 1), toDateTime(at)) != 0,
          lower(service_tier), ''));

-- Cell 1 of the grid of (provider, model, variant) in force at the event's time, with the grid's shape.
CREATE OR REPLACE FUNCTION usagemeter_price_grid AS (provider, model, variant, at) ->
    dictGet('price_cell_by_id',
            ('found', 'approximate', 'tier_start_1', 'tier_start_2', 'tier_start_3', 'day_cut_1', 'day_cut_2',
             'day_cut_3', 'day_cut_4', 'day_cut_5', 'day_cut_6', 'input_mtok', 'cache_read_mtok', 'cache_write_mtok', 'cache_write_1h_mtok', 'output_mtok', 'output_reasoning_mtok', 'input_audio_mtok', 'output_audio_mtok', 'web_searches_kcount', 'requests_kcount'),
            toUInt64(dictGet('price_cell_by_model', 'price_id', (provider, model, variant, 1), toDateTime(at))));

-- Override unit prices in force for (provider, model); found = 0 and NULL prices without.
CREATE OR REPLACE FUNCTION usagemeter_price_override AS (provider, model, at) ->
    dictGet('price_override_by_model',
            ('found', 'input_mtok', 'cache_read_mtok', 'cache_write_mtok', 'cache_write_1h_mtok', 'output_mtok',
             'output_reasoning_mtok', 'input_audio_mtok', 'output_audio_mtok', 'web_searches_kcount',
             'requests_kcount'),
            (provider, model), toDateTime(at));

-- The client's contract multiplier: the model's scope first, then the provider's, then the client's; 1 without.
CREATE OR REPLACE FUNCTION usagemeter_contract_multiplier AS (client_id, provider, model, at) ->
    multiIf(dictGet('contract_client', 'found', tuple(client_id)) = 0, toDecimal64(1, 6),
            dictGet('contract_by_scope', 'found', (client_id, provider, model), toDateTime(at)) = 1,
            dictGet('contract_by_scope', 'multiplier', (client_id, provider, model), toDateTime(at)),
            dictGet('contract_by_scope', 'found', (client_id, provider, '*'), toDateTime(at)) = 1,
            dictGet('contract_by_scope', 'multiplier', (client_id, provider, '*'), toDateTime(at)),
            dictGet('contract_by_scope', 'multiplier', (client_id, '*', '*'), toDateTime(at)));

-- Unit prices for one event from cell 1 of its grid and its override: (priced, overridden, approximate, then
-- the ten prices in price_cell_source's column order), each kind the override's price where one is set, else
-- the event's cell's (cell 1's own prices for most events: no second lookup). A service tier that is neither
-- standard nor priced as such by the book is priced at the standard price and flagged approximate.
CREATE OR REPLACE FUNCTION usagemeter_cell_prices AS
    (grid, override, provider, model, variant, at, input_tokens, service_tier) ->
    usagemeter_pick_prices(
        grid, override,
        usagemeter_cell_of(grid, provider, model, variant, at, usagemeter_grid_cell(grid, at, input_tokens)),
        tupleElement(grid, 'found') = 1
        AND (tupleElement(grid, 'approximate') = 1
             OR (variant = '' AND lower(service_tier) NOT IN ('', 'default', 'standard', 'auto'))));

-- The cell an event falls in: its UTC time-of-day segment, then its tier. genai-prices' tiers are cliffs on
-- the request's whole input token count (cached tokens included): above a tier's start EVERY token of that
-- kind costs the tier's price.
CREATE OR REPLACE FUNCTION usagemeter_grid_cell AS (grid, at, input_tokens) ->
    usagemeter_grid_cell_at(grid, toUnixTimestamp(toDateTime(at)) % 86400, input_tokens);

CREATE OR REPLACE FUNCTION usagemeter_grid_cell_at AS (grid, second_of_day, input_tokens) ->
    toUInt16(1 + ((second_of_day >= tupleElement(grid, 'day_cut_1')) + (second_of_day >= tupleElement(grid, 'day_cut_2'))
                  + (second_of_day >= tupleElement(grid, 'day_cut_3')) + (second_of_day >= tupleElement(grid, 'day_cut_4'))
                  + (second_of_day >= tupleElement(grid, 'day_cut_5')) + (second_of_day >= tupleElement(grid, 'day_cut_6')))
                 * (1 + (tupleElement(grid, 'tier_start_1') < 18446744073709551615)
                    + (tupleElement(grid, 'tier_start_2') < 18446744073709551615)
                    + (tupleElement(grid, 'tier_start_3') < 18446744073709551615))
               + (input_tokens > tupleElement(grid, 'tier_start_1')) + (input_tokens > tupleElement(grid, 'tier_start_2'))
               + (input_tokens > tupleElement(grid, 'tier_start_3')));

-- The ten prices of the event's cell: cell 1's from the grid lookup, another's from a second lookup.
CREATE OR REPLACE FUNCTION usagemeter_cell_of AS (grid, provider, model, variant, at, cell) ->
    if(cell = 1,
       tuple(tupleElement(grid, 'input_mtok'), tupleElement(grid, 'cache_read_mtok'), tupleElement(grid, 'cache_write_mtok'), tupleElement(grid, 'cache_write_1h_mtok'), tupleElement(grid, 'output_mtok'), tupleElement(grid, 'output_reasoning_mtok'), tupleElement(grid, 'input_audio_mtok'), tupleElement(grid, 'output_audio_mtok'), tupleElement(grid, 'web_searches_kcount'), tupleElement(grid, 'requests_kcount')),
       dictGet('price_cell_by_id', ('input_mtok', 'cache_read_mtok', 'cache_write_mtok', 'cache_write_1h_mtok', 'output_mtok', 'output_reasoning_mtok', 'input_audio_mtok', 'output_audio_mtok', 'web_searches_kcount', 'requests_kcount'),
               toUInt64(dictGet('price_cell_by_model', 'price_id', (provider, model, variant, cell), toDateTime(at)))));

CREATE OR REPLACE FUNCTION usagemeter_pick_prices AS (grid, override, cell_prices, approximate) ->
    tuple(tupleElement(grid, 'found') = 1 OR tupleElement(override, 'found') = 1,
          tupleElement(override, 'found') = 1,
          approximate,
          ifNull(tupleElement(override, 'input_mtok'), cell_prices.1),
          ifNull(tupleElement(override, 'cache_read_mtok'), cell_prices.2),
          ifNull(tupleElement(override, 'cache_write_mtok'), cell_prices.3),
          ifNull(tupleElement(override, 'cache_write_1h_mtok'), cell_prices.4),
          ifNull(tupleElement(override, 'output_mtok'), cell_prices.5),
          ifNull(tupleElement(override, 'output_reasoning_mtok'), cell_prices.6),
          ifNull(tupleElement(override, 'input_audio_mtok'), cell_prices.7),
          ifNull(tupleElement(override, 'output_audio_mtok'), cell_prices.8),
          ifNull(tupleElement(override, 'web_searches_kcount'), cell_prices.9),
          ifNull(tupleElement(override, 'requests_kcount'), cell_prices.10));

-- Exact cost components at scale 24, genai-prices' decomposition: each priced kind takes its tokens out of
-- its parent's count; a kind without its own price stays in the parent (cache writes at the input price,
-- for example). Unit prices have at most 18 decimals and "per million" adds 6, so scale 24 loses nothing
-- (Decimal division truncates at the operand's scale). Decimal128 at scale 24 holds up to 1.7e14: a
-- $10,000/MTok price times the 1e9-token limit is 1e13, so the sum of the components cannot overflow.
-- Reasoning tokens are shown as their own component; without a reasoning price they cost the output price.
-- p: usagemeter_cell_prices' tuple. Result: (input, cache_read, cache_write, output, reasoning, audio,
-- web_search, request).
CREATE OR REPLACE FUNCTION usagemeter_exact_costs AS
    (p, input_tokens, output_tokens, cache_read_tokens, cache_write_tokens, cache_write_1h_tokens, reasoning_tokens,
     input_audio_tokens, output_audio_tokens, web_searches, requests) ->
    tuple(toDecimal128(ifNull(p.4, 0), 24)
              * (input_tokens - if(p.5 IS NULL, 0, cache_read_tokens) - if(p.6 IS NULL, 0, cache_write_tokens)
                 - if(p.6 IS NULL AND p.7 IS NOT NULL, cache_write_1h_tokens, 0)
                 - if(p.10 IS NULL, 0, input_audio_tokens)) / 1000000,
          toDecimal128(ifNull(p.5, 0), 24) * if(p.5 IS NULL, 0, cache_read_tokens) / 1000000,
          (toDecimal128(ifNull(p.6, 0), 24) * if(p.6 IS NULL, 0, cache_write_tokens - if(p.7 IS NULL, 0, cache_write_1h_tokens))
           + toDecimal128(ifNull(p.7, 0), 24) * if(p.7 IS NULL, 0, cache_write_1h_tokens)) / 1000000,
          toDecimal128(ifNull(p.8, 0), 24) * (output_tokens - reasoning_tokens - if(p.11 IS NULL, 0, output_audio_tokens))
              / 1000000,
          toDecimal128(ifNull(p.9, ifNull(p.8, 0)), 24) * reasoning_tokens / 1000000,
          (toDecimal128(ifNull(p.10, 0), 24) * if(p.10 IS NULL, 0, input_audio_tokens)
           + toDecimal128(ifNull(p.11, 0), 24) * if(p.11 IS NULL, 0, output_audio_tokens)) / 1000000,
          toDecimal128(ifNull(p.12, 0), 24) * web_searches / 1000,
          toDecimal128(ifNull(p.13, 0), 24) * requests / 1000);

-- The priced event as a named tuple (cost_source, price_status, input, cache_read, cache_write, output,
-- reasoning, audio, web_search, request, total), from usagemeter_cell_prices' p, the contract multiplier
-- and usagemeter_exact_costs' x. Components are rounded on their own, so they can differ from the total by
-- a few 1e-18. A caller-given cost is not considered here: it wins over this in the view.
CREATE OR REPLACE FUNCTION usagemeter_cost_result AS (p, multiplier, x) ->
    CAST(tuple(multiIf(NOT p.1, 'unpriced', p.2 OR (p.1 AND multiplier != 1), 'override', 'calculated'),
               multiIf(NOT p.1, 'unknown_model', p.3, 'approximate', 'priced'),
               usagemeter_round(x.1, multiplier), usagemeter_round(x.2, multiplier),
               usagemeter_round(x.3, multiplier), usagemeter_round(x.4, multiplier),
               usagemeter_round(x.5, multiplier), usagemeter_round(x.6, multiplier),
               usagemeter_round(x.7, multiplier), usagemeter_round(x.8, multiplier),
               usagemeter_round(x.1 + x.2 + x.3 + x.4 + x.5 + x.6 + x.7 + x.8, multiplier)),
         'Tuple(cost_source String, price_status String, input Decimal(38, 18), cache_read Decimal(38, 18), cache_write Decimal(38, 18), output Decimal(38, 18), reasoning Decimal(38, 18), audio Decimal(38, 18), web_search Decimal(38, 18), request Decimal(38, 18), total Decimal(38, 18))');

-- Rounded once, half to even, to the stored 18 places, as genai-prices' exact total quantized; a contract
-- multiplier (at most 6 decimals) is applied to the exact value first, in Decimal256 so nothing is lost.
CREATE OR REPLACE FUNCTION usagemeter_round AS (exact, multiplier) ->
    if(multiplier = 1, toDecimal128(roundBankers(exact, 18), 18),
       toDecimal128(roundBankers(toDecimal256(exact, 24) * multiplier, 18), 18));

-- For queries other than the staging view (repricing): the unit prices of one event, usagemeter_cell_prices'
-- tuple, from columns usage_events has (provider and model as genai-prices ids, or the names lower-cased
-- when unknown) and the event time.
CREATE OR REPLACE FUNCTION usagemeter_unit_prices AS (provider, model, service_tier, event_time, input_tokens) ->
    arrayMap(variant -> arrayMap((grid, override) -> usagemeter_cell_prices(grid, override, provider, model, variant,
                                                                            event_time, input_tokens, service_tier),
                                 [usagemeter_price_grid(provider, model, variant, event_time)],
                                 [usagemeter_price_override(provider, model, event_time)])[1],
             [usagemeter_price_variant(provider, model, service_tier, event_time)])[1];

-- For queries other than the staging view (repricing): THE price of one event, usagemeter_cost_result's
-- named tuple, from columns usage_events has and the event time. Read its fields from a subquery's column
-- (SELECT c.total FROM (SELECT usagemeter_cost(...) AS c FROM usage_events)): naming c.x for each field in
-- the same SELECT copies the whole expression once per field.
CREATE OR REPLACE FUNCTION usagemeter_cost AS
    (client_id, provider, model, service_tier, event_time, input_tokens, output_tokens, cache_read_tokens,
     cache_write_tokens, cache_write_1h_tokens, reasoning_tokens, input_audio_tokens, output_audio_tokens,
     web_searches, requests) ->
    arrayMap((p, multiplier) -> arrayMap(x -> usagemeter_cost_result(p, multiplier, x),
                                         [usagemeter_exact_costs(p, input_tokens, output_tokens, cache_read_tokens,
                                                                 cache_write_tokens, cache_write_1h_tokens,
                                                                 reasoning_tokens, input_audio_tokens,
                                                                 output_audio_tokens, web_searches, requests)])[1],
             [usagemeter_unit_prices(provider, model, service_tier, event_time, input_tokens)],
             [usagemeter_contract_multiplier(client_id, provider, model, event_time)])[1];

-- The scalar price book of 0001 is replaced by the cells above (no view reads it).
DROP DICTIONARY IF EXISTS price_unit_by_model;
DROP VIEW IF EXISTS price_unit_current;
DROP TABLE IF EXISTS price_unit_source;
