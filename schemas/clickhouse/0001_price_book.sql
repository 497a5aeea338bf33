-- Unit prices from genai-prices (plus overrides later), one row per (provider, model, validity period).
-- The worker writes a whole new book_version and reloads the dictionaries; readers see the newest only.
CREATE TABLE IF NOT EXISTS price_unit_source
(
    book_version UInt32,
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
    approximate UInt8 COMMENT '1 when genai-prices has tiers or time-of-day prices this book does not model yet'
)
ENGINE = MergeTree
ORDER BY (book_version, provider_id, model_id, valid_from);

-- The newest book only: the dictionary source, so a half-written new version is never loaded.
CREATE VIEW IF NOT EXISTS price_unit_current AS
SELECT * EXCEPT book_version, 1 AS found
FROM price_unit_source
WHERE book_version = (SELECT max(book_version) FROM price_unit_source);

-- Price in force at a moment, per (provider, model): dictGet(..., (provider, model), event_time).
CREATE DICTIONARY IF NOT EXISTS price_unit_by_model
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
    requests_kcount Nullable(Decimal(38, 18)) DEFAULT NULL,
    approximate UInt8 DEFAULT 0
)
PRIMARY KEY provider_id, model_id
SOURCE(CLICKHOUSE(TABLE 'price_unit_current'))
LAYOUT(COMPLEX_KEY_RANGE_HASHED())
RANGE(MIN valid_from MAX valid_to)
LIFETIME(0);

-- Model names as callers write them (lower-cased), per provider ('' = provider not given),
-- mapped to genai-prices' provider and model ids.
CREATE TABLE IF NOT EXISTS model_alias_source
(
    book_version UInt32,
    provider_raw String,
    model_raw String,
    provider_id String,
    model_id String
)
ENGINE = MergeTree
ORDER BY (book_version, provider_raw, model_raw);

CREATE VIEW IF NOT EXISTS model_alias_current AS
SELECT * EXCEPT book_version FROM model_alias_source WHERE book_version = (SELECT max(book_version) FROM model_alias_source);

-- Normalises (provider, model) as sent to the ids the price dictionary is keyed by.
CREATE DICTIONARY IF NOT EXISTS model_alias
(
    provider_raw String,
    model_raw String,
    provider_id String DEFAULT '',
    model_id String DEFAULT ''
)
PRIMARY KEY provider_raw, model_raw
SOURCE(CLICKHOUSE(TABLE 'model_alias_current'))
LAYOUT(COMPLEX_KEY_HASHED())
LIFETIME(0);
