-- Per-subject data keys for crypto-shredding (R-C8). They live outside the append-only
-- log on purpose: personal fields in events are sealed with their subject's key, and
-- destroying the key (key_bytes NULL, destroyed_at set) erases the person while every
-- event, and so the hash chain, stays as it was. The row stays as a tombstone so no
-- new key is ever issued for a forgotten subject. Connections run with
-- `secure_delete` so a destroyed key's bytes are overwritten in the file.
CREATE TABLE data_keys (
    subject      TEXT PRIMARY KEY,
    key_bytes    BLOB,
    created_at   TEXT NOT NULL,
    destroyed_at TEXT,
    CONSTRAINT data_keys_key_or_tombstone CHECK ((key_bytes IS NULL) = (destroyed_at IS NOT NULL))
) STRICT;
