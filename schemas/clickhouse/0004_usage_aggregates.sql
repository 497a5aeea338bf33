-- Usage by client, user, provider and model in 15-minute buckets (UTC). Every real UTC offset is a
-- multiple of 15 minutes, so days and months in any IANA time zone are exact sums of these buckets.
-- Reports read this table (or the rollup below) with sum() ... GROUP BY, never FINAL.
CREATE TABLE IF NOT EXISTS usage_15m_by_user
(
    client_id String,
    bucket DateTime('UTC'),
    user_id String,
    provider LowCardinality(String),
    model LowCardinality(String),
    events UInt64,
    requests UInt64,
    errors UInt64,
    unpriced UInt64,
    input_tokens UInt64,
    output_tokens UInt64,
    cache_read_tokens UInt64,
    cache_write_tokens UInt64,
    reasoning_tokens UInt64,
    input_audio_tokens UInt64,
    output_audio_tokens UInt64,
    web_searches UInt64,
    tool_calls UInt64,
    cost_input Decimal(38, 18),
    cost_cache_read Decimal(38, 18),
    cost_cache_write Decimal(38, 18),
    cost_output Decimal(38, 18),
    cost_reasoning Decimal(38, 18),
    cost_audio Decimal(38, 18),
    cost_web_search Decimal(38, 18),
    cost_request Decimal(38, 18),
    cost_total Decimal(38, 18)
)
ENGINE = SummingMergeTree
PARTITION BY toYYYYMM(bucket)
ORDER BY (client_id, bucket, user_id, provider, model)
SETTINGS non_replicated_deduplication_window = 1000;

-- Feeds usage_15m_by_user from every accepted event.
CREATE MATERIALIZED VIEW IF NOT EXISTS usage_15m_by_user_mv TO usage_15m_by_user AS
SELECT
    client_id,
    toStartOfFifteenMinutes(event_time) AS bucket,
    user_id,
    provider,
    model,
    count() AS events,
    sum(requests) AS requests,
    countIf(status != 'ok') AS errors,
    countIf(price_status = 'unknown_model' AND cost_source = 'unpriced') AS unpriced,
    sum(input_tokens) AS input_tokens,
    sum(output_tokens) AS output_tokens,
    sum(cache_read_tokens) AS cache_read_tokens,
    sum(cache_write_tokens) AS cache_write_tokens,
    sum(reasoning_tokens) AS reasoning_tokens,
    sum(input_audio_tokens) AS input_audio_tokens,
    sum(output_audio_tokens) AS output_audio_tokens,
    sum(web_searches) AS web_searches,
    sum(tool_calls) AS tool_calls,
    sum(cost_input) AS cost_input,
    sum(cost_cache_read) AS cost_cache_read,
    sum(cost_cache_write) AS cost_cache_write,
    sum(cost_output) AS cost_output,
    sum(cost_reasoning) AS cost_reasoning,
    sum(cost_audio) AS cost_audio,
    sum(cost_web_search) AS cost_web_search,
    sum(cost_request) AS cost_request,
    sum(cost_total) AS cost_total
FROM usage_events
GROUP BY client_id, bucket, user_id, provider, model;

-- The same without the user dimension: client, provider and model reports scan far fewer rows.
CREATE TABLE IF NOT EXISTS usage_15m_by_model AS usage_15m_by_user
ENGINE = SummingMergeTree
PARTITION BY toYYYYMM(bucket)
ORDER BY (client_id, bucket, provider, model)
SETTINGS non_replicated_deduplication_window = 1000;

-- Feeds usage_15m_by_model from the rows written to usage_15m_by_user; user_id is always '' there,
-- and the SummingMergeTree folds the per-user rows together as it merges.
CREATE MATERIALIZED VIEW IF NOT EXISTS usage_15m_by_model_mv TO usage_15m_by_model AS
SELECT * REPLACE ('' AS user_id)
FROM usage_15m_by_user;
