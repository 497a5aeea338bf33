-- Landing table for Avro blocks: stores nothing. Its columns are the newest event schema's fields;
-- blocks from older writers fill missing fields with these defaults (input_format_avro_allow_missing_fields).
CREATE TABLE IF NOT EXISTS usage_staging
(
    event_id UUID,
    event_time DateTime64(6, 'UTC'),
    client_id String,
    user_id String,
    request_id String,
    session_id String,
    service String,
    provider String,
    model String,
    operation String,
    status String,
    error String,
    latency_ms Int64,
    input_tokens Int64,
    output_tokens Int64,
    cache_read_tokens Int64,
    cache_write_tokens Int64,
    reasoning_tokens Int64,
    input_audio_tokens Int64,
    output_audio_tokens Int64,
    total_tokens Int64,
    requests Int32,
    web_searches Int32,
    tool_calls Int32,
    cost Nullable(String),
    labels Map(String, String),
    cache_write_1h_tokens Int64 DEFAULT 0,
    service_tier String DEFAULT '',
    cost_label String DEFAULT '',
    -- Not an event field: the worker appends it to every body (consumers/avro_block.py), so the view can
    -- tell that each body held exactly one record.
    usagemeter_marker FixedString(16) DEFAULT ''
)
ENGINE = Null;
