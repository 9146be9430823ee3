-- Per-subject data keys for crypto-shredding (R-C8). They live outside the append-only
-- log on purpose: personal fields in events are sealed with their subject's key, and
-- destroying the key (key_bytes NULL, destroyed_at set) erases the person while every
-- event, and so the hash chain, stays as it was. The row stays as a tombstone so no
-- new key is ever issued for a forgotten subject.
CREATE TABLE data_keys (
    subject      TEXT PRIMARY KEY,
    key_bytes    BYTEA,
    created_at   TIMESTAMPTZ NOT NULL,
    destroyed_at TIMESTAMPTZ,
    CONSTRAINT data_keys_key_or_tombstone CHECK ((key_bytes IS NULL) = (destroyed_at IS NOT NULL))
);
