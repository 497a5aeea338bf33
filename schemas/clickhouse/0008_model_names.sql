-- Model and provider names the way genai-prices' matcher reads them, in the engine: routed and dated names
-- (openrouter/openai/gpt-4o-mini, gpt-4o-2024-08-06, us.anthropic.claude-...-v1:0, vertex_ai/gemini-1.5-pro-002)
-- resolve to genai-prices' provider and model. consumers/model_names.py writes the pattern rows and says how.
CREATE TABLE IF NOT EXISTS model_pattern_source
(
    book_version UInt32,
    id UInt64,
    regexp String,
    target String COMMENT '<id>\t<provider id>\t<model id> for a match, !<id> for a veto of node <id>'
)
ENGINE = MergeTree
ORDER BY (book_version, id);

CREATE VIEW IF NOT EXISTS model_pattern_current AS
SELECT id, toUInt64(0) AS parent_id, regexp, ['target'] AS keys, [target] AS values
FROM model_pattern_source
WHERE book_version = (SELECT max(book_version) FROM model_pattern_source);

CREATE DICTIONARY IF NOT EXISTS model_pattern
(
    regexp String,
    target String DEFAULT ''
)
PRIMARY KEY regexp
SOURCE(CLICKHOUSE(TABLE 'model_pattern_current'))
LAYOUT(REGEXP_TREE)
LIFETIME(0);

-- The functions below resolve (provider, model) as given to 'provider id\tmodel id' ('' or '\t' when nothing
-- matches), in genai-prices' order. SQL functions are expanded where they are called, so each binds a
-- larger argument once through a one-element arrayMap ("let"), or the view's query would grow exponentially.

-- The first pattern node among dictGetAll's hits (in node order) that no veto node cancels.
CREATE FUNCTION IF NOT EXISTS usagemeter_pattern AS (key) ->
    arrayMap(pattern_hits -> substringIndex(
                 arrayFirst(pattern_node -> NOT startsWith(pattern_node, '!') AND NOT has(pattern_hits, concat('!', substringIndex(pattern_node, '\t', 1))), pattern_hits),
                 '\t', -2),
             [dictGetAll('model_pattern', 'target', key)])[1];

CREATE FUNCTION IF NOT EXISTS usagemeter_alias AS (provider, model) ->
    arrayMap(alias_key -> concat(dictGet('model_alias', 'provider_id', alias_key), '\t', dictGet('model_alias', 'model_id', alias_key)),
             [(provider, model)])[1];

-- genai-prices' find_provider_by_id: the provider id of a provider as given ('' when none matches).
CREATE FUNCTION IF NOT EXISTS usagemeter_provider_id AS (provider) ->
    substringIndex(usagemeter_pattern(concat('#|', provider)), '\t', 1);

-- genai-prices' retry for compact dates (gpt-5.2-20251211 -> gpt-5.2-2025-12-11); RE2 has no lookahead, so
-- the character after the date is captured and put back.
CREATE FUNCTION IF NOT EXISTS usagemeter_compact_date AS (model) ->
    replaceRegexpAll(model, '-(20[0-9]{2})(0[1-9]|1[0-2])(0[1-9]|[12][0-9]|3[01])(-|:|$)', '-\\1-\\2-\\3\\4');

-- genai-prices' Provider.find_model: the literal name, then patterns; then both with a compact date rewritten.
CREATE FUNCTION IF NOT EXISTS usagemeter_model_in AS (provider_id, model) ->
    arrayFirst(in_found -> length(in_found) > 1,
               arrayFlatten(arrayMap(in_ref -> [usagemeter_alias(in_ref.1, in_ref.2), usagemeter_pattern(concat(in_ref.1, '|', in_ref.2))],
                                     arrayFilter(in_ref -> in_ref.1 != '',
                                                 arrayMap(in_name -> (provider_id, in_name),
                                                          arrayMap(in_name -> [in_name, usagemeter_compact_date(in_name)], [model])[1])))));

-- genai-prices' find_provider_model: the given provider, or without one the provider whose model_match matches.
CREATE FUNCTION IF NOT EXISTS usagemeter_genai_lookup AS (provider, model) ->
    usagemeter_model_in(
        if(provider IN ('', 'litellm'),
           substringIndex(usagemeter_pattern(concat('*|', model)), '\t', 1),
           usagemeter_provider_id(provider)),
        model);

-- A LiteLLM-style routed name, 'router/model': the router read as a provider, the rest as its model.
CREATE FUNCTION IF NOT EXISTS usagemeter_routed AS (model) ->
    if(position(model, '/') = 0, '',
       usagemeter_model_in(usagemeter_provider_id(substringIndex(model, '/', 1)), substring(model, position(model, '/') + 1)));

-- The literal alias first, then genai-prices' lookup (with LiteLLM's 'provider/model' rule first for provider
-- 'litellm', as genai-prices does); where genai-prices finds nothing, a routed name is read as 'router/model'
-- when no provider is given or the router is the given provider (openrouter/openai/gpt-4o-mini, bedrock/...).
CREATE FUNCTION IF NOT EXISTS usagemeter_resolve AS (provider, model) ->
    arrayMap(resolve_routed -> arrayFirst(resolve_found -> length(resolve_found) > 1, [
                 usagemeter_alias(provider, model),
                 if(provider = 'litellm', resolve_routed, ''),
                 usagemeter_genai_lookup(provider, model),
                 if(provider IN ('', 'litellm')
                        OR usagemeter_provider_id(substringIndex(model, '/', 1)) = usagemeter_provider_id(provider),
                    resolve_routed, '')]),
             [usagemeter_routed(model)])[1];

-- [provider id, model id] of a name as an event gives it; ['', ''] when nothing resolves it. Far too slow to
-- call per event (up to a few dozen dictionary lookups): call it once per distinct name, as the functions
-- below do.
CREATE FUNCTION IF NOT EXISTS usagemeter_resolve_name AS (provider_given, model_given) ->
    splitByChar('\t', arrayMap(ref_name -> usagemeter_resolve(ref_name.1, ref_name.2),
                               [(trimBoth(lower(provider_given)), lower(model_given))])[1]);

-- Resolution per event at the cost of a hash lookup: each distinct pair of names (an array of (provider,
-- model) tuples, a constant of the query) is resolved once, and each event finds its answer with transform
-- over constant arrays. The key is length-prefixed, so no two (provider, model) pairs share one.
CREATE FUNCTION IF NOT EXISTS usagemeter_name_key AS (provider, model) ->
    concat(toString(length(provider)), ':', provider, model);

CREATE FUNCTION IF NOT EXISTS usagemeter_block_model_ref AS (provider, model, block_names) ->
    splitByChar('\t', transform(usagemeter_name_key(provider, model),
                                arrayMap(block_name -> usagemeter_name_key(block_name.1, block_name.2), block_names),
                                arrayMap(block_name -> arrayStringConcat(usagemeter_resolve_name(block_name.1, block_name.2), '\t'), block_names),
                                ''));

-- The staging view's resolution: a scalar subquery on a view's source table reads the block being inserted,
-- so each distinct name of the block is resolved once. Only meaningful inside a view on usage_staging;
-- elsewhere (repricing) pass the distinct names to usagemeter_block_model_ref yourself.
CREATE FUNCTION IF NOT EXISTS usagemeter_model_ref AS (provider_given, model_given) ->
    usagemeter_block_model_ref(provider_given, model_given,
                               (SELECT groupUniqArray((provider, model)) FROM usage_staging));

-- The staging view of 0003 with one change: names resolve through usagemeter_model_ref, whose first step is
-- the literal alias lookup 0003 made. MODIFY QUERY swaps the query in place: no moment when an insert into
-- usage_staging would pass no view.
ALTER TABLE usage_events_from_staging MODIFY QUERY
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
    (resolved[1], resolved[2]) AS alias,
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
FROM (SELECT *, provider AS provider_given, model AS model_given,
             usagemeter_model_ref(provider, model) AS resolved
      FROM usage_staging)
-- One bad row fails the block: see the comment above.
WHERE throwIf(reject_reason != '', 'usagemeter: the block holds an invalid event') = 0;
