-- Model and provider names the way genai-prices' matcher reads them, in the engine: routed and dated names
-- (openrouter/openai/gpt-4o-mini, gpt-4o-2024-08-06, us.anthropic.claude-...-v1:0, vertex_ai/gemini-1.5-pro-002)
-- resolve to genai-prices' provider and model. pricing/model_names.py writes the pattern rows and says how.
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
