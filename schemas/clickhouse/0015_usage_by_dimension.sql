-- Reports by service, operation, status and service tier (issue 13), freshness (as_of) and late events.
--
-- Why a new wider aggregate rather than promoted label keys or scans of usage_events: these four are
-- fixed, low-cardinality columns of every event, so one more SummingMergeTree keyed by all of them keeps
-- every report an aggregate read; reports choose the narrowest table that holds their dimensions
-- (query/tables.py), so the per-model and per-user reports keep reading the small tables. Measured cost
-- on the worker benchmark: BENCHMARKS.md, "Report dimensions".

-- Reprice's signed rows carry the four columns too, so the wider aggregate moves with the others.
ALTER TABLE cost_adjustments ADD COLUMN IF NOT EXISTS service LowCardinality(String) AFTER user_id;
ALTER TABLE cost_adjustments ADD COLUMN IF NOT EXISTS operation LowCardinality(String) AFTER service;
ALTER TABLE cost_adjustments ADD COLUMN IF NOT EXISTS service_tier LowCardinality(String) AFTER operation;

-- Usage by every fixed dimension of an event in 15-minute buckets (UTC).
CREATE TABLE IF NOT EXISTS usage_15m_by_dims
(
    client_id String,
    bucket DateTime('UTC'),
    user_id String,
    service LowCardinality(String),
    provider LowCardinality(String),
    model LowCardinality(String),
    operation LowCardinality(String),
    status LowCardinality(String),
    service_tier LowCardinality(String),
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
ORDER BY (client_id, bucket, service, operation, status, service_tier, provider, model, user_id)
SETTINGS non_replicated_deduplication_window = 10000;

-- Every event and every signed reprice row as one stream of signed rows, the single definition that
-- `usagemeter views rebuild` derives every aggregate from (query/rebuild.py). Events are taken up to an
-- ingest cut (inclusive) so that a rebuild and the live views never both count an event.
CREATE VIEW IF NOT EXISTS usage_signed_rows AS
SELECT
    client_id, toStartOfFifteenMinutes(event_time) AS bucket, user_id, service, provider, model, operation, status,
    service_tier, labels, price_status, cost_source, toInt64(1) AS sign,
    toInt64(requests) AS requests, toInt64(input_tokens) AS input_tokens, toInt64(output_tokens) AS output_tokens,
    toInt64(cache_read_tokens) AS cache_read_tokens, toInt64(cache_write_tokens) AS cache_write_tokens,
    toInt64(reasoning_tokens) AS reasoning_tokens, toInt64(input_audio_tokens) AS input_audio_tokens,
    toInt64(output_audio_tokens) AS output_audio_tokens, toInt64(web_searches) AS web_searches,
    toInt64(tool_calls) AS tool_calls,
    cost_input, cost_cache_read, cost_cache_write, cost_output, cost_reasoning, cost_audio, cost_web_search,
    cost_request, cost_total
FROM usage_events
WHERE event_time >= {since:DateTime64(6, 'UTC')} AND ingest_time <= {cut:DateTime64(3, 'UTC')}
UNION ALL
SELECT
    client_id, toStartOfFifteenMinutes(event_time) AS bucket, user_id, service, provider, model, operation, status,
    service_tier, labels, price_status, cost_source, toInt64(sign) AS sign,
    requests, input_tokens, output_tokens, cache_read_tokens, cache_write_tokens, reasoning_tokens,
    input_audio_tokens, output_audio_tokens, web_searches, tool_calls,
    cost_input, cost_cache_read, cost_cache_write, cost_output, cost_reasoning, cost_audio, cost_web_search,
    cost_request, cost_total
FROM cost_adjustments
WHERE event_time >= {since:DateTime64(6, 'UTC')};

-- Feeds usage_15m_by_dims from every accepted event.
CREATE MATERIALIZED VIEW IF NOT EXISTS usage_15m_by_dims_mv TO usage_15m_by_dims AS
SELECT
    client_id,
    toStartOfFifteenMinutes(event_time) AS bucket,
    user_id, service, provider, model, operation, status, service_tier,
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
GROUP BY client_id, bucket, user_id, service, provider, model, operation, status, service_tier;

-- Feeds reprice's signed rows into usage_15m_by_dims (unsigned columns wrap, sums come out right: 0010).
CREATE MATERIALIZED VIEW IF NOT EXISTS usage_15m_by_dims_adjustments_mv TO usage_15m_by_dims AS
SELECT
    client_id,
    toStartOfFifteenMinutes(event_time) AS bucket,
    user_id, service, provider, model, operation, status, service_tier,
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
GROUP BY client_id, bucket, user_id, service, provider, model, operation, status, service_tier;

-- Late events: one row per event ingested more than a minute after its 15-minute bucket closed, by which
-- time a dashboard refreshing every minute has shown the bucket without it. Late events are rare, so a
-- row each (with every dimension and the labels) costs nothing on the hot path and lets any report,
-- label filters included, count the late events in its range (query/freshness.py).
CREATE TABLE IF NOT EXISTS usage_late_events
(
    client_id String,
    bucket DateTime('UTC'),
    event_id UUID,
    event_time DateTime64(6, 'UTC'),
    ingest_time DateTime64(3, 'UTC'),
    user_id String,
    service LowCardinality(String),
    provider LowCardinality(String),
    model LowCardinality(String),
    operation LowCardinality(String),
    status LowCardinality(String),
    service_tier LowCardinality(String),
    labels Map(String, String)
)
ENGINE = MergeTree
PARTITION BY toYYYYMM(bucket)
ORDER BY (client_id, bucket, event_id)
SETTINGS non_replicated_deduplication_window = 10000;

CREATE MATERIALIZED VIEW IF NOT EXISTS usage_late_events_mv TO usage_late_events AS
SELECT
    client_id, toStartOfFifteenMinutes(event_time) AS bucket, event_id, event_time, ingest_time,
    user_id, service, provider, model, operation, status, service_tier, labels
FROM usage_events
WHERE ingest_time > toStartOfFifteenMinutes(event_time) + INTERVAL 16 MINUTE;

-- Per-partition watermarks: the newest event time each partition has inserted, and when it last
-- inserted. Inserts are synchronous through every view, so once a partition's insert returns its events
-- are in every aggregate: as_of is the smallest watermark of the partitions active in the last day
-- (query/freshness.py). Inserts without a worker's token (tests, tools) count as partition '' / 0.
CREATE TABLE IF NOT EXISTS ingest_watermarks
(
    topic LowCardinality(String),
    partition UInt32,
    newest_event_time SimpleAggregateFunction(max, DateTime64(6, 'UTC')),
    last_insert SimpleAggregateFunction(max, DateTime64(3, 'UTC'))
)
ENGINE = AggregatingMergeTree
ORDER BY (topic, partition)
SETTINGS non_replicated_deduplication_window = 10000;

-- The token's format is the worker's: see ingested_ids_from_events (0006).
CREATE MATERIALIZED VIEW IF NOT EXISTS ingest_watermarks_mv TO ingest_watermarks AS
WITH extractGroups(getSetting('insert_deduplication_token'), '^[0-9a-f]*[|]([A-Za-z0-9._-]+)/([0-9]+):([0-9]+)-') AS slice
SELECT
    slice[1] AS topic,
    toUInt32OrZero(slice[2]) AS partition,
    max(event_time) AS newest_event_time,
    max(ingest_time) AS last_insert
FROM usage_events
GROUP BY topic, partition;
