-- The append-only event log (SQLite). Positions are assigned inside the single write
-- transaction, so commit order and position order are the same by construction.
CREATE TABLE events (
    position       INTEGER PRIMARY KEY,          -- global order, 1-based, gap-free
    stream_id      TEXT    NOT NULL,
    stream_version INTEGER NOT NULL,             -- 1-based, gap-free per stream
    event_id       TEXT    NOT NULL UNIQUE,      -- UUID, hyphenated lowercase
    event_type     TEXT    NOT NULL,
    schema_version INTEGER NOT NULL,
    payload        TEXT    NOT NULL,             -- JSON, exactly the bytes that were hashed
    metadata       TEXT    NOT NULL,             -- JSON, exactly the bytes that were hashed
    recorded_at    TEXT    NOT NULL,             -- UTC, RFC 3339 with microseconds
    prev_hash      BLOB    NOT NULL,             -- 32 bytes
    hash           BLOB    NOT NULL,             -- 32 bytes: SHA-256(prev_hash || canonical event)
    CONSTRAINT events_stream_version_key UNIQUE (stream_id, stream_version)
) STRICT;

CREATE TRIGGER events_reject_update BEFORE UPDATE ON events
BEGIN
    SELECT RAISE(ABORT, 'events are append-only: UPDATE is refused');
END;

CREATE TRIGGER events_reject_delete BEFORE DELETE ON events
BEGIN
    SELECT RAISE(ABORT, 'events are append-only: DELETE is refused');
END;
