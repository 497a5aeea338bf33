-- Model names the price book could not resolve: never silently free, always visible here (and in reports
-- through usage_15m_*.unpriced) until an alias or a price exists and they are repriced.
CREATE TABLE IF NOT EXISTS unknown_models
(
    provider_raw String,
    model_raw String,
    events SimpleAggregateFunction(sum, UInt64),
    first_seen SimpleAggregateFunction(min, DateTime64(6, 'UTC')),
    last_seen SimpleAggregateFunction(max, DateTime64(6, 'UTC'))
)
ENGINE = AggregatingMergeTree
ORDER BY (provider_raw, model_raw)
SETTINGS non_replicated_deduplication_window = 1000;

-- Collects the unresolved (provider, model) pairs of every insert.
CREATE MATERIALIZED VIEW IF NOT EXISTS unknown_models_mv TO unknown_models AS
SELECT provider_raw, model_raw, count() AS events, min(event_time) AS first_seen, max(event_time) AS last_seen
FROM usage_events
WHERE price_status = 'unknown_model'
GROUP BY provider_raw, model_raw;
