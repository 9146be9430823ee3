-- R-P2 and R-P9 for BI: the `case_records` projection's tables. One row per material of
-- a case (added after filing; a filing's attachments stay in the case's own stream) and
-- one per implementation record. No personal text: where a document is kept, its digest
-- and what was done are read from the case itself (GetComplaint, ExportCase).
CREATE TABLE rm_case_materials (
    complaint_id  TEXT    NOT NULL,
    number        INTEGER NOT NULL,
    media_type    TEXT    NOT NULL,
    size_bytes    INTEGER NOT NULL,
    added_by      TEXT    NOT NULL,
    added_at      TEXT    NOT NULL,
    supersedes    INTEGER,
    superseded_by INTEGER,
    last_position INTEGER NOT NULL,
    PRIMARY KEY (complaint_id, number)
);

CREATE TABLE rm_case_implementations (
    position       INTEGER PRIMARY KEY,
    complaint_id   TEXT    NOT NULL,
    by_staff       TEXT    NOT NULL,
    implemented_at TEXT    NOT NULL,
    recorded_at    TEXT    NOT NULL
);
CREATE INDEX rm_case_implementations_case ON rm_case_implementations (complaint_id);
