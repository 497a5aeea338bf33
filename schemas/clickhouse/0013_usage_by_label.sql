-- Usage by label in 15-minute buckets: one row per (client, bucket, label key, label value, provider, model).
-- Labels are free key=value strings, so no fixed set of columns can hold them; an event with k labels adds
-- to k rows here (ARRAY JOIN), one per label, and an event without labels to none. So the sum over one key's
-- values is the usage of the events that carry that key, never the client's whole usage, and sums over
-- different keys overlap. Budgets scoped to a label and reports grouped or filtered by a label read this
-- table with sum() ... GROUP BY, like the other aggregates.
CREATE TABLE IF NOT EXISTS usage_15m_by_label
(
    client_id String,
    bucket DateTime('UTC'),
    label_key String,
    label_value String,
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
ORDER BY (client_id, label_key, label_value, bucket, provider, model)
SETTINGS non_replicated_deduplication_window = 1000;

CREATE MATERIALIZED VIEW IF NOT EXISTS usage_15m_by_label_mv TO usage_15m_by_label AS
SELECT
    client_id,
    toStartOfFifteenMinutes(event_time) AS bucket,
    label.1 AS label_key,
    label.2 AS label_value,
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
ARRAY JOIN CAST(labels, 'Array(Tuple(String, String))') AS label
GROUP BY client_id, bucket, label_key, label_value, provider, model;

-- Reprice's signed rows carry the event's labels, so the label aggregate moves with the others.
ALTER TABLE cost_adjustments ADD COLUMN IF NOT EXISTS labels Map(String, String) AFTER model_raw;

CREATE MATERIALIZED VIEW IF NOT EXISTS usage_15m_by_label_adjustments_mv TO usage_15m_by_label AS
SELECT
    client_id,
    toStartOfFifteenMinutes(event_time) AS bucket,
    label.1 AS label_key,
    label.2 AS label_value,
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
ARRAY JOIN CAST(labels, 'Array(Tuple(String, String))') AS label
GROUP BY client_id, bucket, label_key, label_value, provider, model;
