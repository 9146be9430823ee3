-- R-P2 and R-P9 for BI: the `case_records` projection's tables. One row per material of
-- a case (added after filing; a filing's attachments stay in the case's own stream) and
-- one per implementation record. No personal text: where a document is kept, its digest
-- and what was done are read from the case itself (GetComplaint, ExportCase).
CREATE TABLE rm_case_materials (
    complaint_id  TEXT        NOT NULL,
    number        BIGINT      NOT NULL,
    media_type    TEXT        NOT NULL,
    size_bytes    BIGINT      NOT NULL,
    added_by      TEXT        NOT NULL,
    added_at      TIMESTAMPTZ NOT NULL,
    supersedes    BIGINT,
    superseded_by BIGINT,
    last_position BIGINT      NOT NULL,
    PRIMARY KEY (complaint_id, number)
);

CREATE TABLE rm_case_implementations (
    position       BIGINT      PRIMARY KEY,
    complaint_id   TEXT        NOT NULL,
    by_staff       TEXT        NOT NULL,
    implemented_at TIMESTAMPTZ NOT NULL,
    recorded_at    TIMESTAMPTZ NOT NULL
);
CREATE INDEX rm_case_implementations_case ON rm_case_implementations (complaint_id);
