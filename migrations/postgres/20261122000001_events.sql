-- The append-only event log (PostgreSQL).
--
-- Gap-safe global order: `position` is taken from the single row of `event_position`
-- by an UPDATE in the same statement that inserts the events. The row lock it takes is
-- held until the transaction ends, and PostgreSQL makes a commit visible before it
-- releases the committing transaction's locks. So the next writer can only draw a
-- position after every lower position is visible (or rolled back and reused): readers
-- that scan `position > checkpoint` can never skip an event that commits late.
CREATE TABLE events (
    position       BIGINT      PRIMARY KEY,      -- global order, 1-based, gap-free
    stream_id      TEXT        NOT NULL,
    stream_version BIGINT      NOT NULL,         -- 1-based, gap-free per stream
    event_id       UUID        NOT NULL,
    event_type     TEXT        NOT NULL,
    schema_version INTEGER     NOT NULL,
    payload        JSON        NOT NULL,         -- json (not jsonb) keeps the hashed bytes verbatim
    metadata       JSON        NOT NULL,
    recorded_at    TIMESTAMPTZ NOT NULL,
    prev_hash      BYTEA       NOT NULL,
    hash           BYTEA       NOT NULL,
    CONSTRAINT events_event_id_key UNIQUE (event_id),
    CONSTRAINT events_stream_version_key UNIQUE (stream_id, stream_version)
);

CREATE TABLE event_position (
    singleton BOOLEAN PRIMARY KEY DEFAULT TRUE CHECK (singleton),
    last      BIGINT  NOT NULL
);
INSERT INTO event_position (singleton, last) VALUES (TRUE, 0);

CREATE FUNCTION events_reject_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'events are append-only: % is refused', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END;
$$;

CREATE TRIGGER events_reject_update BEFORE UPDATE ON events
    FOR EACH ROW EXECUTE FUNCTION events_reject_change();
CREATE TRIGGER events_reject_delete BEFORE DELETE ON events
    FOR EACH ROW EXECUTE FUNCTION events_reject_change();
CREATE TRIGGER events_reject_truncate BEFORE TRUNCATE ON events
    FOR EACH STATEMENT EXECUTE FUNCTION events_reject_change();

-- Wakes subscribers and projection runners on every node; delivered at commit.
CREATE FUNCTION events_notify() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('kefu_events', '');
    RETURN NULL;
END;
$$;

CREATE TRIGGER events_notify AFTER INSERT ON events
    FOR EACH STATEMENT EXECUTE FUNCTION events_notify();
