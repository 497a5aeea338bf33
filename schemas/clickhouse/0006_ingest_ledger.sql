-- Exactly-once across crashes and re-sends (consumers/ledger.py, consumers/dedup.py).
--
-- Where each batch was cut in each partition, written BEFORE the batch is inserted: after a crash the
-- worker cuts the slice that may have been in flight at the same offsets again, so the re-read makes
-- the same blocks with the same deduplication tokens, and every table drops what it already has.
-- The same slice is written again with completed = 1 once all of it is in the store (second line of
-- defence: such a slice is never inserted again, its events are dropped by the dedup window instead).
-- reference_us (UTC microseconds) is the clock the slice's time rules (event_time_future, _too_old) are judged by, so
-- that a retry, by this worker or the next, gets the same verdicts.
CREATE TABLE IF NOT EXISTS ingest_ledger
(
    topic LowCardinality(String),
    partition UInt32,
    first_offset UInt64,
    last_offset UInt64,
    reference_us Int64,
    completed UInt8 DEFAULT 0,
    written_at DateTime('UTC') DEFAULT now()
)
ENGINE = ReplacingMergeTree(completed)
ORDER BY (topic, partition, first_offset)
TTL written_at + INTERVAL 30 DAY;

-- The event ids each partition inserted, with the slice that inserted them: the worker rebuilds its
-- in-memory dedup window from here when it is given a partition (at start, or after a rebalance).
-- Fed from usage_events, so only events that passed validation are remembered.
CREATE TABLE IF NOT EXISTS ingested_ids
(
    topic LowCardinality(String),
    partition UInt32,
    slice_first UInt64 COMMENT 'first offset of the slice (batch part) that inserted the event',
    event_id UUID,
    ingested_at DateTime('UTC')
)
ENGINE = MergeTree
PARTITION BY toYYYYMMDD(ingested_at)
ORDER BY (topic, partition, ingested_at)
TTL ingested_at + INTERVAL 8 DAY
SETTINGS non_replicated_deduplication_window = 10000;

-- The worker's insert token is "<fingerprint>|<topic>/<partition>:<first>-<last>|t=<reference µs>[|...]"
-- (consumers/batch.py).
CREATE MATERIALIZED VIEW IF NOT EXISTS ingested_ids_from_events TO ingested_ids AS
WITH extractGroups(getSetting('insert_deduplication_token'), '^[0-9a-f]*[|]([A-Za-z0-9._-]+)/([0-9]+):([0-9]+)-') AS slice
SELECT
    slice[1] AS topic,
    toUInt32OrZero(slice[2]) AS partition,
    toUInt64OrZero(slice[3]) AS slice_first,
    event_id,
    now() AS ingested_at
FROM usage_events;

-- Each batch is now one insert per partition and writer schema: keep the tokens of ~10,000 recent
-- blocks (minutes of traffic at many partitions) so that a batch retried after a restart is recognised.
ALTER TABLE usage_events MODIFY SETTING non_replicated_deduplication_window = 10000;
ALTER TABLE usage_15m_by_user MODIFY SETTING non_replicated_deduplication_window = 10000;
ALTER TABLE usage_15m_by_model MODIFY SETTING non_replicated_deduplication_window = 10000;
ALTER TABLE unknown_models MODIFY SETTING non_replicated_deduplication_window = 10000;
