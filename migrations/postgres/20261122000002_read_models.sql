-- Read models (rm_*): a public interface for BI jobs, documented in docs/read-models.md.
-- Rebuildable from the log at any time; written only by the projection runner.

CREATE TABLE projection_checkpoints (
    name       TEXT PRIMARY KEY,
    version    BIGINT NOT NULL,
    position   BIGINT NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL
);

CREATE TABLE rm_customers (
    customer_id          TEXT PRIMARY KEY,
    name                 TEXT,
    kind                 TEXT NOT NULL,
    contacts             TEXT,
    tier                 TEXT NOT NULL,
    stars                BIGINT,
    source_channel       TEXT NOT NULL,
    referred_by          TEXT,
    confidentiality      TEXT NOT NULL,
    confidentiality_rank BIGINT NOT NULL,
    agent                TEXT NOT NULL,
    registered_at        TIMESTAMPTZ NOT NULL,
    first_contact_at     TIMESTAMPTZ,
    last_contact_at      TIMESTAMPTZ,
    callbacks            BIGINT NOT NULL,
    last_callback_at     TIMESTAMPTZ,
    forgotten_at         TIMESTAMPTZ,
    last_position        BIGINT NOT NULL
);
CREATE INDEX rm_customers_agent ON rm_customers (agent);
CREATE INDEX rm_customers_referred_by ON rm_customers (referred_by);

CREATE TABLE rm_complaints (
    complaint_id           TEXT PRIMARY KEY,
    case_number            TEXT NOT NULL UNIQUE,
    year                   BIGINT NOT NULL,
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
    received_at            TIMESTAMPTZ NOT NULL,
    filed_at               TIMESTAMPTZ NOT NULL,
    filed_month            TEXT NOT NULL,
    first_response_at      TIMESTAMPTZ,
    first_response_seconds BIGINT,
    signed_at              TIMESTAMPTZ,
    final_reply_at         TIMESTAMPTZ,
    first_closed_at        TIMESTAMPTZ,
    close_seconds          BIGINT,
    closed_at              TIMESTAMPTZ,
    callback_pending       BOOLEAN NOT NULL,
    callbacks              BIGINT NOT NULL,
    last_callback_at       TIMESTAMPTZ,
    last_callback_outcome  TEXT,
    reopen_count           BIGINT NOT NULL,
    archived_at            TIMESTAMPTZ,
    round_investigations   BIGINT NOT NULL,
    round_drafted          BOOLEAN NOT NULL,
    round_signed           BOOLEAN NOT NULL,
    round_final_reply      BOOLEAN NOT NULL,
    last_position          BIGINT NOT NULL
);
CREATE INDEX rm_complaints_status ON rm_complaints (status, severity);
CREATE INDEX rm_complaints_handler ON rm_complaints (handler, status);
CREATE INDEX rm_complaints_customer ON rm_complaints (customer_id);
CREATE INDEX rm_complaints_filed_month ON rm_complaints (filed_month);

CREATE TABLE rm_callbacks (
    position       BIGINT PRIMARY KEY,
    customer_id    TEXT NOT NULL,
    complaint_id   TEXT,
    kind           TEXT NOT NULL,
    channel        TEXT NOT NULL,
    party          TEXT,
    outcome        TEXT NOT NULL,
    score          BIGINT,
    by_staff       TEXT NOT NULL,
    called_at      TIMESTAMPTZ NOT NULL,
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
    active        BOOLEAN NOT NULL,
    registered_at TIMESTAMPTZ NOT NULL,
    departed_at   TIMESTAMPTZ,
    last_position BIGINT NOT NULL
);
