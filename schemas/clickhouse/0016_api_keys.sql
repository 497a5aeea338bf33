-- API keys of the HTTP API (api/keys.py): each admin, or scoped to a set of clients, optionally expiring.
-- The key itself is never stored: key_hash is HMAC-SHA256 of the whole key under the server secret, which
-- lives outside the store, so a copy of this table cannot be used to test a guess. A revocation writes the
-- key's row again with revoked_at set and a higher version; reads use FINAL, so the newest row decides.
CREATE TABLE IF NOT EXISTS api_keys
(
    key_id String COMMENT 'the public part of the key (umk_<key_id>_<secret>), shown by `usagemeter keys list`',
    key_hash String COMMENT 'hex HMAC-SHA256 of the whole key under the server secret',
    name String,
    admin Bool,
    clients Array(String) COMMENT 'the clients a non-admin key may read; empty for an admin key',
    created_at DateTime64(6, 'UTC'),
    expires_at Nullable(DateTime64(6, 'UTC')),
    revoked_at Nullable(DateTime64(6, 'UTC')),
    version UInt64 COMMENT 'microseconds of the write: a revocation supersedes the creation'
)
ENGINE = ReplacingMergeTree(version)
ORDER BY key_id;
