-- Read models (rm_*; timestamps are UTC RFC 3339 text with microseconds, booleans 0/1): a public interface for BI jobs, documented in docs/read-models.md.
-- Rebuildable from the log at any time; written only by the projection runner.

CREATE TABLE projection_checkpoints (
    name       TEXT PRIMARY KEY,
    version    INTEGER NOT NULL,
    position   INTEGER NOT NULL,
    updated_at TEXT    NOT NULL
);

CREATE TABLE rm_customers (
    customer_id          TEXT PRIMARY KEY,
    name                 TEXT,
    kind                 TEXT NOT NULL,
    contacts             TEXT,
    tier                 TEXT NOT NULL,
    stars                INTEGER,
    source_channel       TEXT NOT NULL,
    referred_by          TEXT,
    confidentiality      TEXT NOT NULL,
    confidentiality_rank INTEGER NOT NULL,
    agent                TEXT NOT NULL,
    registered_at        TEXT    NOT NULL,
    first_contact_at     TEXT   ,
    last_contact_at      TEXT   ,
    callbacks            INTEGER NOT NULL,
    last_callback_at     TEXT   ,
    forgotten_at         TEXT   ,
    last_position        INTEGER NOT NULL
);
CREATE INDEX rm_customers_agent ON rm_customers (agent);
CREATE INDEX rm_customers_referred_by ON rm_customers (referred_by);

CREATE TABLE rm_complaints (
    complaint_id           TEXT PRIMARY KEY,
    case_number            TEXT NOT NULL UNIQUE,
    year                   INTEGER NOT NULL,
    customer_id            TEXT NOT NULL,
    category               TEXT NOT NULL,
    cause                  TEXT NOT NULL,
    severity               TEXT NOT NULL,
    channel                TEXT NOT NULL,
    status                 TEXT NOT NULL,
    stage                  TEXT NOT NULL,
    handler                TEXT,
    respondent             TEXT,
    specialist             TEXT,
    escalated_to           TEXT,
    signer                 TEXT,
    signer_capacity        TEXT,
    received_at            TEXT    NOT NULL,
    filed_at               TEXT    NOT NULL,
    filed_month            TEXT NOT NULL,
    first_response_at      TEXT   ,
    first_response_seconds INTEGER,
    signed_at              TEXT   ,
    final_reply_at         TEXT   ,
    first_closed_at        TEXT   ,
    close_seconds          INTEGER,
    closed_at              TEXT   ,
    callback_pending       INTEGER NOT NULL,
    callbacks              INTEGER NOT NULL,
    last_callback_at       TEXT   ,
    last_callback_outcome  TEXT,
    reopen_count           INTEGER NOT NULL,
    archived_at            TEXT   ,
    round_investigations   INTEGER NOT NULL,
    round_drafted          INTEGER NOT NULL,
    round_signed           INTEGER NOT NULL,
    round_final_reply      INTEGER NOT NULL,
    last_position          INTEGER NOT NULL
);
CREATE INDEX rm_complaints_status ON rm_complaints (status, severity);
CREATE INDEX rm_complaints_handler ON rm_complaints (handler, status);
CREATE INDEX rm_complaints_customer ON rm_complaints (customer_id);
CREATE INDEX rm_complaints_filed_month ON rm_complaints (filed_month);

CREATE TABLE rm_callbacks (
    position       INTEGER PRIMARY KEY,
    customer_id    TEXT NOT NULL,
    complaint_id   TEXT,
    kind           TEXT NOT NULL,
    channel        TEXT NOT NULL,
    party          TEXT,
    outcome        TEXT NOT NULL,
    score          INTEGER,
    by_staff       TEXT NOT NULL,
    called_at      TEXT    NOT NULL,
    month          TEXT NOT NULL,
    handler        TEXT,
    intake_channel TEXT,
    category       TEXT
);
CREATE INDEX rm_callbacks_month ON rm_callbacks (month);
CREATE INDEX rm_callbacks_customer ON rm_callbacks (customer_id);

CREATE TABLE rm_staff (
    staff_id      TEXT PRIMARY KEY,
    name          TEXT NOT NULL,
    roles         TEXT NOT NULL,
    active        INTEGER NOT NULL,
    registered_at TEXT    NOT NULL,
    departed_at   TEXT   ,
    last_position INTEGER NOT NULL
);
