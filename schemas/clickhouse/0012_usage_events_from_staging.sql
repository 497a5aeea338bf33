-- The head of the view chain, defined once: usage_staging → validate, normalise, price → usage_events (whose
-- views feed the aggregates, unknown_models and ingested_ids). Created last because it expands the functions
-- of 0008 and 0009 when it is created. Never changed in place: ALTER ... MODIFY QUERY gives the process that
-- runs it other deduplication block ids than a process that loads the view from disk, which counts a
-- retried block twice (README, "How it stays correct"); a change is a new view under a new name.

-- Why a staged row is refused, or '': the rules of schemas/validation.py, in its order. marker_ok says the
-- row ended where the worker says its body ends; reference_time is the clock the time rules use (the
-- slice's, from the ingest ledger, so that a retry gets the same verdict).
CREATE OR REPLACE FUNCTION usagemeter_reject_reason AS
    (marker_ok, reference_time, event_time, client_id, user_id, request_id, session_id, service, provider, model,
     operation, status, error, cost, service_tier, cost_label, labels, latency_ms, input_tokens, output_tokens,
     cache_read_tokens, cache_write_tokens, cache_write_1h_tokens, reasoning_tokens, input_audio_tokens,
     output_audio_tokens, total_tokens, requests, web_searches, tool_calls) ->
    multiIf(
        NOT marker_ok, 'malformed_avro',
        NOT (isValidUTF8(client_id) AND isValidUTF8(user_id) AND isValidUTF8(request_id) AND isValidUTF8(session_id)
             AND isValidUTF8(service) AND isValidUTF8(provider) AND isValidUTF8(model) AND isValidUTF8(operation)
             AND isValidUTF8(status) AND isValidUTF8(error) AND isValidUTF8(ifNull(cost, '')) AND isValidUTF8(service_tier)
             AND isValidUTF8(cost_label)
             AND arrayAll(s -> isValidUTF8(s), arrayConcat(mapKeys(labels), mapValues(labels)))), 'not_utf8',
        greatest(length(client_id), length(user_id), length(request_id), length(session_id), length(service),
                 length(provider), length(model), length(operation), length(status), length(cost_label)) > 256
            OR length(error) > 8192 OR length(service_tier) > 64, 'oversized_field',
        client_id = '', 'missing_client_id',
        model = '', 'missing_model',
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
        event_time > reference_time + INTERVAL 1 DAY, 'event_time_future',
        event_time < reference_time - INTERVAL 1096 DAY, 'event_time_too_old',
        operation NOT IN ('chat', 'completion', 'responses', 'embedding', 'image', 'audio', 'moderation', 'rerank',
                          'tool', 'other'), 'unknown_operation',
        status NOT IN ('ok', 'error', 'timeout', 'cancelled', 'rate_limited'), 'unknown_status',
        length(labels) > 64
            OR arrayExists(k -> length(k) > 128, mapKeys(labels))
            OR arrayExists(v -> length(v) > 1024, mapValues(labels)), 'oversized_labels',
        cost IS NOT NULL AND NOT (match(cost, '^[0-9]{1,7}([.][0-9]{1,18})?$')
                                  AND toDecimal128(cost, 18) <= 1000000), 'invalid_cost',
        '');

-- One invalid row throws and fails the whole insert, so nothing of a bad block is written anywhere; the
-- worker then finds the bad messages in Python (consumers/triage.py) and dead-letters them. The worker's
-- insert token carries the slice's reference time ("|t=<µs>"); an insert without a token (a hand-made
-- one) has no marker to check and is judged by the engine's clock. Each pricing step is a subquery so
-- that its result is a column the next step reads, not an expression copied into it.
CREATE MATERIALIZED VIEW IF NOT EXISTS usage_events_from_staging TO usage_events AS
SELECT
    event_id,
    event_time,
    now64(3) AS ingest_time,
    client_id,
    user_id,
    request_id,
    session_id,
    service,
    provider_id AS provider,
    model_id AS model,
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
    c.input AS cost_input,
    c.cache_read AS cost_cache_read,
    c.cache_write AS cost_cache_write,
    c.output AS cost_output,
    c.reasoning AS cost_reasoning,
    c.audio AS cost_audio,
    c.web_search AS cost_web_search,
    c.request AS cost_request,
    if(caller_cost IS NULL, c.total, assumeNotNull(caller_cost)) AS cost_total,
    if(caller_cost IS NULL, c.cost_source, 'caller') AS cost_source,
    cost_label,
    c.price_status AS price_status,
    labels
FROM
(
    SELECT *, usagemeter_cost_result(unit_prices, multiplier, exact) AS c, toDecimal128OrNull(cost, 18) AS caller_cost
    FROM
    (
        SELECT
            *,
            usagemeter_exact_costs(unit_prices, input_tokens, output_tokens, cache_read_tokens, cache_write_tokens,
                                   cache_write_1h_tokens, reasoning_tokens, input_audio_tokens, output_audio_tokens,
                                   web_searches, requests) AS exact
        FROM
        (
            SELECT
                *,
                usagemeter_cell_prices(grid, override, provider_id, model_id, variant, event_time, input_tokens,
                                       service_tier) AS unit_prices
            FROM
            (
                SELECT
                    *,
                    usagemeter_price_grid(provider_id, model_id, variant, event_time) AS grid,
                    usagemeter_price_override(provider_id, model_id, event_time) AS override,
                    usagemeter_contract_multiplier(client_id, provider_id, model_id, event_time) AS multiplier
                FROM
                (
                    SELECT *, usagemeter_price_variant(provider_id, model_id, service_tier, event_time) AS variant
                    FROM
                    (
                        WITH
                            getSetting('insert_deduplication_token') AS token,
                            ifNull(fromUnixTimestamp64Micro(toInt64OrNull(extract(token, '[|]t=([0-9]+)')), 'UTC'),
                                   now64(6)) AS reference_time,
                            usagemeter_reject_reason(
                                token = '' OR usagemeter_marker = substring(lower(hex(SHA256(token))), 1, 16), reference_time,
                                event_time, client_id, user_id, request_id, session_id, service, provider_given,
                                model_given, operation, status, error, cost, service_tier, cost_label, labels,
                                latency_ms, input_tokens, output_tokens, cache_read_tokens, cache_write_tokens,
                                cache_write_1h_tokens, reasoning_tokens, input_audio_tokens, output_audio_tokens,
                                total_tokens, requests, web_searches, tool_calls) AS reject_reason,
                            -- Names normalised by 0008's usagemeter_model_ref: genai-prices' ids, or the names lower-cased.
                            usagemeter_model_ref(provider_given, model_given) AS resolved
                        SELECT
                            *,
                            if(resolved[2] = '', lower(provider_given), resolved[1]) AS provider_id,
                            if(resolved[2] = '', lower(model_given), resolved[2]) AS model_id
                        FROM (SELECT *, provider AS provider_given, model AS model_given FROM usage_staging)
                        WHERE throwIf(reject_reason != '', 'usagemeter: the block holds an invalid event') = 0
                    )
                )
            )
        )
    )
);
