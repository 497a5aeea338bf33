-- Repricing as signed delta rows (pricing/reprice.py). Materialized views only see inserts, so a reprice
-- never updates usage_events: for each event whose price changed it inserts two rows here, the event's
-- current priced state withdrawn (sign -1: every count and cost negated) and its new state (sign +1). Views
-- feed both into the aggregates, so reports move by exactly the difference, and an event that moves to
-- another (provider, model) leaves its old aggregate row and joins the new one. An event's current cost
-- is its usage_events cost plus the sum of its rows here (usage_events_current).
CREATE TABLE IF NOT EXISTS cost_adjustments
(
    event_id UUID,
    event_time DateTime64(6, 'UTC'),
    client_id String,
    user_id String,
    status LowCardinality(String),
    provider LowCardinality(String) COMMENT 'of the state this row withdraws or adds',
    model LowCardinality(String),
    provider_raw String,
    model_raw String,
    price_status LowCardinality(String),
    cost_source LowCardinality(String),
    sign Int8 COMMENT '-1 withdraws a state, +1 adds one; counts and costs below are already multiplied by it',
    requests Int64,
    input_tokens Int64,
    output_tokens Int64,
    cache_read_tokens Int64,
    cache_write_tokens Int64,
    reasoning_tokens Int64,
    input_audio_tokens Int64,
    output_audio_tokens Int64,
    web_searches Int64,
    tool_calls Int64,
    cost_input Decimal(38, 18),
    cost_cache_read Decimal(38, 18),
    cost_cache_write Decimal(38, 18),
    cost_output Decimal(38, 18),
    cost_reasoning Decimal(38, 18),
    cost_audio Decimal(38, 18),
    cost_web_search Decimal(38, 18),
    cost_request Decimal(38, 18),
    cost_total Decimal(38, 18),
    run_id UUID,
    reason String,
    adjusted_at DateTime64(3, 'UTC')
)
ENGINE = MergeTree
PARTITION BY toYYYYMM(event_time)
ORDER BY (client_id, event_time, event_id, adjusted_at, sign)
SETTINGS non_replicated_deduplication_window = 1000;

-- Feeds the signed rows into usage_15m_by_user (and so, through its own view, usage_15m_by_model). The
-- aggregate columns are unsigned: a negative count wraps around, and sums over them come out right
-- (modulo 2^64) because no true total is negative; SummingMergeTree drops rows that sum to zero.
CREATE MATERIALIZED VIEW IF NOT EXISTS usage_15m_by_user_adjustments_mv TO usage_15m_by_user AS
SELECT
    client_id,
    toStartOfFifteenMinutes(event_time) AS bucket,
    user_id,
    provider,
    model,
    toUInt64(sum(sign)) AS events,
    toUInt64(sum(requests)) AS requests,
    toUInt64(sumIf(sign, status != 'ok')) AS errors,
    toUInt64(sumIf(sign, price_status = 'unknown_model' AND cost_source = 'unpriced')) AS unpriced,
    toUInt64(sum(input_tokens)) AS input_tokens,
    toUInt64(sum(output_tokens)) AS output_tokens,
    toUInt64(sum(cache_read_tokens)) AS cache_read_tokens,
    toUInt64(sum(cache_write_tokens)) AS cache_write_tokens,
    toUInt64(sum(reasoning_tokens)) AS reasoning_tokens,
    toUInt64(sum(input_audio_tokens)) AS input_audio_tokens,
    toUInt64(sum(output_audio_tokens)) AS output_audio_tokens,
    toUInt64(sum(web_searches)) AS web_searches,
    toUInt64(sum(tool_calls)) AS tool_calls,
    sum(cost_input) AS cost_input,
    sum(cost_cache_read) AS cost_cache_read,
    sum(cost_cache_write) AS cost_cache_write,
    sum(cost_output) AS cost_output,
    sum(cost_reasoning) AS cost_reasoning,
    sum(cost_audio) AS cost_audio,
    sum(cost_web_search) AS cost_web_search,
    sum(cost_request) AS cost_request,
    sum(cost_total) AS cost_total
FROM cost_adjustments
GROUP BY client_id, bucket, user_id, provider, model;

-- Withdraws repriced events from unknown_models (read it with sum(events) ... HAVING sum(events) > 0).
CREATE MATERIALIZED VIEW IF NOT EXISTS unknown_models_adjustments_mv TO unknown_models AS
SELECT provider_raw, model_raw, toUInt64(sum(sign)) AS events, min(event_time) AS first_seen, max(event_time) AS last_seen
FROM cost_adjustments
WHERE price_status = 'unknown_model'
GROUP BY provider_raw, model_raw;

-- Every event as it is priced now: usage_events' row plus its adjustments (the provider, model and price
-- status of its newest state). What audits and repricing read.
CREATE VIEW IF NOT EXISTS usage_events_current AS
SELECT
    e.* REPLACE (
        if(a.revisions = 0, e.provider, a.provider) AS provider,
        if(a.revisions = 0, e.model, a.model) AS model,
        if(a.revisions = 0, e.price_status, a.price_status) AS price_status,
        if(a.revisions = 0, e.cost_source, a.cost_source) AS cost_source,
        e.cost_input + a.cost_input AS cost_input,
        e.cost_cache_read + a.cost_cache_read AS cost_cache_read,
        e.cost_cache_write + a.cost_cache_write AS cost_cache_write,
        e.cost_output + a.cost_output AS cost_output,
        e.cost_reasoning + a.cost_reasoning AS cost_reasoning,
        e.cost_audio + a.cost_audio AS cost_audio,
        e.cost_web_search + a.cost_web_search AS cost_web_search,
        e.cost_request + a.cost_request AS cost_request,
        e.cost_total + a.cost_total AS cost_total
    ),
    a.revisions AS revisions
FROM usage_events AS e
LEFT JOIN
(
    SELECT
        event_id,
        countIf(sign = 1) AS revisions,
        argMaxIf(provider, adjusted_at, sign = 1) AS provider,
        argMaxIf(model, adjusted_at, sign = 1) AS model,
        argMaxIf(price_status, adjusted_at, sign = 1) AS price_status,
        argMaxIf(cost_source, adjusted_at, sign = 1) AS cost_source,
        sum(cost_input) AS cost_input,
        sum(cost_cache_read) AS cost_cache_read,
        sum(cost_cache_write) AS cost_cache_write,
        sum(cost_output) AS cost_output,
        sum(cost_reasoning) AS cost_reasoning,
        sum(cost_audio) AS cost_audio,
        sum(cost_web_search) AS cost_web_search,
        sum(cost_request) AS cost_request,
        sum(cost_total) AS cost_total
    FROM cost_adjustments
    GROUP BY event_id
) AS a USING (event_id)
SETTINGS join_use_nulls = 0;
