-- Every accepted event, priced, with its cost by component. The source of truth for repricing and audits;
-- reports read the aggregates below, never this table.
CREATE TABLE IF NOT EXISTS usage_events
(
    event_id UUID,
    event_time DateTime64(6, 'UTC'),
    ingest_time DateTime64(3, 'UTC'),
    client_id String,
    user_id String,
    request_id String,
    session_id String,
    service LowCardinality(String),
    provider LowCardinality(String) COMMENT 'genai-prices provider id, or the given provider when the model is unknown',
    model LowCardinality(String) COMMENT 'genai-prices model id, or the given name lower-cased when unknown',
    provider_raw String COMMENT 'provider exactly as the event gave it',
    model_raw String COMMENT 'model exactly as the event gave it',
    operation LowCardinality(String),
    status LowCardinality(String),
    error String,
    service_tier LowCardinality(String),
    latency_ms UInt64,
    input_tokens UInt64,
    output_tokens UInt64,
    cache_read_tokens UInt64,
    cache_write_tokens UInt64,
    cache_write_1h_tokens UInt64,
    reasoning_tokens UInt64,
    input_audio_tokens UInt64,
    output_audio_tokens UInt64,
    requests UInt32,
    web_searches UInt32,
    tool_calls UInt32,
    cost_input Decimal(38, 18) COMMENT 'uncached, non-audio input tokens',
    cost_cache_read Decimal(38, 18),
    cost_cache_write Decimal(38, 18),
    cost_output Decimal(38, 18) COMMENT 'non-reasoning, non-audio output tokens',
    cost_reasoning Decimal(38, 18),
    cost_audio Decimal(38, 18),
    cost_web_search Decimal(38, 18),
    cost_request Decimal(38, 18),
    cost_total Decimal(38, 18),
    cost_source LowCardinality(String) COMMENT 'calculated | caller | unpriced',
    cost_label String,
    price_status LowCardinality(String) COMMENT 'priced | approximate | unknown_model',
    labels Map(String, String)
)
ENGINE = MergeTree
PARTITION BY toYYYYMM(event_time)
ORDER BY (client_id, event_time, event_id)
-- Each insert is one worker batch (~50,000 rows): written as a compact part (one file, not ~90) it costs
-- 20 % less; merges turn parts into wide ones past 256 MiB, as usual.
SETTINGS non_replicated_deduplication_window = 1000, min_bytes_for_wide_part = 268435456;

-- Validates, normalises and prices every staged row. One invalid row throws and fails the whole insert,
-- so nothing of a bad block is written anywhere; the worker then finds the bad messages in Python
-- (consumers/triage.py) and dead-letters them. The checks mirror schemas/validation.py, in its order.
CREATE MATERIALIZED VIEW IF NOT EXISTS usage_events_from_staging TO usage_events AS
WITH
    multiIf(
        NOT (isValidUTF8(client_id) AND isValidUTF8(user_id) AND isValidUTF8(request_id) AND isValidUTF8(session_id)
             AND isValidUTF8(service) AND isValidUTF8(provider_given) AND isValidUTF8(model_given) AND isValidUTF8(operation)
             AND isValidUTF8(status) AND isValidUTF8(error) AND isValidUTF8(ifNull(cost, ''))
             AND isValidUTF8(service_tier) AND isValidUTF8(cost_label)
             AND arrayAll(s -> isValidUTF8(s), arrayConcat(mapKeys(labels), mapValues(labels)))), 'not_utf8',
        client_id = '', 'missing_client_id',
        model_given = '', 'missing_model',
        least(latency_ms, input_tokens, output_tokens, cache_read_tokens, cache_write_tokens, cache_write_1h_tokens,
              reasoning_tokens, input_audio_tokens, output_audio_tokens, total_tokens, requests, web_searches,
              tool_calls) < 0, 'negative_count',
        greatest(latency_ms, input_tokens, output_tokens, cache_read_tokens, cache_write_tokens, cache_write_1h_tokens,
                 reasoning_tokens, input_audio_tokens, output_audio_tokens, total_tokens, requests, web_searches,
                 tool_calls) > 1000000000, 'absurd_count',
        cache_read_tokens + cache_write_tokens > input_tokens
            OR cache_write_1h_tokens > cache_write_tokens
            OR input_audio_tokens > input_tokens
            OR reasoning_tokens + output_audio_tokens > output_tokens
            OR (total_tokens != 0 AND total_tokens < input_tokens + output_tokens), 'inconsistent_tokens',
        event_time > now64(6) + INTERVAL 1 DAY, 'event_time_future',
        event_time < now64(6) - INTERVAL 1096 DAY, 'event_time_too_old',
        operation NOT IN ('chat', 'completion', 'responses', 'embedding', 'image', 'audio', 'moderation', 'rerank',
                          'tool', 'other'), 'unknown_operation',
        status NOT IN ('ok', 'error', 'timeout', 'cancelled', 'rate_limited'), 'unknown_status',
        length(labels) > 64
            OR arrayExists(k -> length(k) > 128, mapKeys(labels))
            OR arrayExists(v -> length(v) > 1024, mapValues(labels)), 'oversized_labels',
        cost IS NOT NULL AND NOT (match(cost, '^[0-9]{1,7}([.][0-9]{1,18})?$')
                                  AND toDecimal128(cost, 18) <= 1000000), 'invalid_cost',
        '') AS reject_reason,
    lower(model_given) AS model_key,
    dictGet('model_alias', ('provider_id', 'model_id'), (lower(provider_given), model_key)) AS alias,
    toDateTime(event_time) AS priced_at,
    dictGet('price_unit_by_model',
            ('found', 'input_mtok', 'cache_read_mtok', 'cache_write_mtok', 'cache_write_1h_mtok', 'output_mtok',
             'output_reasoning_mtok', 'input_audio_mtok', 'output_audio_mtok', 'web_searches_kcount',
             'requests_kcount', 'approximate'),
            (alias.1, alias.2), priced_at) AS p,
    -- genai-prices' decomposition: each priced kind takes its tokens out of its parent's count; a kind
    -- without its own price stays in the parent (cache writes at the input price, for example).
    if(p.5 IS NULL, 0, cache_write_1h_tokens) AS cw1h_leaf,
    if(p.4 IS NULL, 0, cache_write_tokens - cw1h_leaf) AS cw_leaf,
    if(p.3 IS NULL, 0, cache_read_tokens) AS cr_leaf,
    if(p.8 IS NULL, 0, input_audio_tokens) AS ain_leaf,
    input_tokens - cr_leaf - cw_leaf - cw1h_leaf - ain_leaf AS in_leaf,
    if(p.9 IS NULL, 0, output_audio_tokens) AS aout_leaf,
    -- Reasoning tokens are shown as their own component; without a reasoning price they cost the output price.
    output_tokens - reasoning_tokens - aout_leaf AS out_leaf,
    -- Exact first: unit prices have at most 18 decimals and "per million" adds 6, so scale 24 loses nothing
    -- (Decimal division truncates at the operand's scale). Decimal128 at scale 24 holds up to 1.7e14: a
    -- $10,000/MTok price times the 1e9-token limit is 1e13, so the sum of the components cannot overflow
    -- (Decimal256 was measured 0.05 s slower per 50,000 events). Rounded once, half to even, to the stored
    -- 18 places, as genai-prices' exact total quantized; components are rounded on their own, so they can
    -- differ from the total by a few 1e-18.
    toDecimal128(ifNull(p.2, 0), 24) * in_leaf / 1000000 AS x_input,
    toDecimal128(ifNull(p.3, 0), 24) * cr_leaf / 1000000 AS x_cache_read,
    (toDecimal128(ifNull(p.4, 0), 24) * cw_leaf + toDecimal128(ifNull(p.5, 0), 24) * cw1h_leaf) / 1000000
        AS x_cache_write,
    toDecimal128(ifNull(p.6, 0), 24) * out_leaf / 1000000 AS x_output,
    toDecimal128(ifNull(p.7, ifNull(p.6, 0)), 24) * reasoning_tokens / 1000000 AS x_reasoning,
    (toDecimal128(ifNull(p.8, 0), 24) * ain_leaf + toDecimal128(ifNull(p.9, 0), 24) * aout_leaf) / 1000000 AS x_audio,
    toDecimal128(ifNull(p.10, 0), 24) * web_searches / 1000 AS x_web_search,
    toDecimal128(ifNull(p.11, 0), 24) * requests / 1000 AS x_request,
    toDecimal128(roundBankers(x_input, 18), 18) AS c_input,
    toDecimal128(roundBankers(x_cache_read, 18), 18) AS c_cache_read,
    toDecimal128(roundBankers(x_cache_write, 18), 18) AS c_cache_write,
    toDecimal128(roundBankers(x_output, 18), 18) AS c_output,
    toDecimal128(roundBankers(x_reasoning, 18), 18) AS c_reasoning,
    toDecimal128(roundBankers(x_audio, 18), 18) AS c_audio,
    toDecimal128(roundBankers(x_web_search, 18), 18) AS c_web_search,
    toDecimal128(roundBankers(x_request, 18), 18) AS c_request,
    toDecimal128(roundBankers(x_input + x_cache_read + x_cache_write + x_output + x_reasoning + x_audio
                              + x_web_search + x_request, 18), 18) AS c_total,
    toDecimal128OrNull(cost, 18) AS caller_cost
SELECT
    event_id,
    event_time,
    now64(3) AS ingest_time,
    client_id,
    user_id,
    request_id,
    session_id,
    service,
    if(p.1 = 1, alias.1, lower(provider_given)) AS provider,
    if(p.1 = 1, alias.2, model_key) AS model,
    provider_given AS provider_raw,
    model_given AS model_raw,
    operation,
    status,
    error,
    service_tier,
    latency_ms,
    input_tokens,
    output_tokens,
    cache_read_tokens,
    cache_write_tokens,
    cache_write_1h_tokens,
    reasoning_tokens,
    input_audio_tokens,
    output_audio_tokens,
    requests,
    web_searches,
    tool_calls,
    c_input AS cost_input,
    c_cache_read AS cost_cache_read,
    c_cache_write AS cost_cache_write,
    c_output AS cost_output,
    c_reasoning AS cost_reasoning,
    c_audio AS cost_audio,
    c_web_search AS cost_web_search,
    c_request AS cost_request,
    if(caller_cost IS NULL, c_total, assumeNotNull(caller_cost)) AS cost_total,
    multiIf(caller_cost IS NOT NULL, 'caller', p.1 = 1, 'calculated', 'unpriced') AS cost_source,
    cost_label,
    multiIf(p.1 = 0, 'unknown_model', p.12 = 1, 'approximate', 'priced') AS price_status,
    labels
FROM (SELECT *, provider AS provider_given, model AS model_given FROM usage_staging)
-- One bad row fails the block: see the comment above.
WHERE throwIf(reject_reason != '', 'usagemeter: the block holds an invalid event') = 0;
