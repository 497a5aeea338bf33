-- Budgets, one row per version: a change is a new row with the next version, a deletion a row with
-- deleted = 1, so the history stays. The current version of a budget is its highest. ``definition`` is the
-- whole budget as JSON (budgets/model.py BudgetSpec); the columns beside it are what the spend query
-- (budgets/spend.py) joins on. Ordered by client: a flush's evaluation reads the budgets of the clients it
-- touched, not all of them (a budget's client never changes between versions).
CREATE TABLE IF NOT EXISTS budget_versions
(
    budget_id String,
    version UInt32,
    changed_at DateTime64(6, 'UTC'),
    deleted UInt8,
    scope LowCardinality(String) COMMENT 'client | user | model | label',
    client_id String,
    user_id String,
    provider String,
    model String,
    label_key String,
    label_value String,
    spec_key String COMMENT 'period|tz|week_start|rolling_days: what the period bounds depend on',
    definition String
)
ENGINE = MergeTree
ORDER BY (client_id, budget_id, version);

-- Which scopes each insert touched, and when: what lets the evaluator read only the budgets a flush can
-- have moved. Kept a day; only the recent rows are ever read.
CREATE TABLE IF NOT EXISTS budget_activity
(
    ingested DateTime64(3, 'UTC'),
    client_id String,
    user_id String,
    provider LowCardinality(String),
    model LowCardinality(String)
)
ENGINE = MergeTree
ORDER BY (ingested, client_id)
TTL toDateTime(ingested) + INTERVAL 1 DAY
SETTINGS non_replicated_deduplication_window = 1000;

-- Feeds budget_activity: one row per (client, user, provider, model) of each insert into usage_events.
CREATE MATERIALIZED VIEW IF NOT EXISTS budget_activity_mv TO budget_activity AS
SELECT max(ingest_time) AS ingested, client_id, user_id, provider, model
FROM usage_events
GROUP BY client_id, user_id, provider, model;

-- The alert ledger: one row per alert, written before any delivery of it. Every (budget, version, period,
-- threshold, crossing) is in one alert at most: the evaluator derives each threshold's state from these
-- rows, the alert id is a hash of that key, and an insert carries the id as its deduplication token.
-- kind: crossed | resolved | projected, or carried (a new version's state taken over, never delivered).
CREATE TABLE IF NOT EXISTS budget_alerts
(
    alert_id String,
    budget_id String,
    version UInt32,
    period_start DateTime('UTC'),
    kind LowCardinality(String),
    thresholds Array(String),
    crossings Array(UInt32),
    created_at DateTime64(6, 'UTC'),
    written_by String COMMENT 'the evaluator whose insert was kept: it alone delivers the alert',
    payload String COMMENT 'the alert as delivered (budgets/alerts.py Alert), JSON'
)
ENGINE = ReplacingMergeTree
ORDER BY (budget_id, period_start, alert_id)
SETTINGS non_replicated_deduplication_window = 1000;

-- Every delivery attempt of an alert to one of its channels (a channel is named by its index in the
-- budget's list and its type: "0:log", "1:kafka", "2:webhook").
CREATE TABLE IF NOT EXISTS alert_deliveries
(
    alert_id String,
    channel String,
    attempt UInt32,
    status LowCardinality(String) COMMENT 'delivered | failed | dead',
    error String,
    at DateTime64(6, 'UTC')
)
ENGINE = MergeTree
ORDER BY (alert_id, channel, attempt);
