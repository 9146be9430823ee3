-- Issue 18: monthly aggregates the reports read instead of scanning every case and
-- callback ever recorded. The complaints projection keeps them in the same transaction
-- as rm_complaints and rm_callbacks, so they are exactly consistent with those rows and
-- equal after a rebuild (docs/read-models.md describes them for BI jobs). Absent
-- handler, channel or category read 'none', as in the reports.

-- Complaints per business-local month of receipt × category × cause × channel ×
-- severity (R-R1); reopened: of those, how many were reopened at least once.
CREATE TABLE rm_complaints_monthly (
    month      TEXT NOT NULL,
    category   TEXT NOT NULL,
    cause      TEXT NOT NULL,
    channel    TEXT NOT NULL,
    severity   TEXT NOT NULL,
    complaints INTEGER NOT NULL,
    reopened   INTEGER NOT NULL,
    PRIMARY KEY (month, category, cause, channel, severity)
);

-- Histograms of complaints per month of receipt: measure 'first_response' (receipt to
-- first response) or 'close' (receipt to first closure), cases whose duration lies in
-- [lower_s, upper_s). Bucket widths: 1 s below 1 min, 1 min below 1 h, 5 min below
-- 1 day, 1 h below 60 days, 1 day beyond. Only non-empty buckets have a row.
CREATE TABLE rm_complaint_durations_monthly (
    month    TEXT NOT NULL,
    measure  TEXT NOT NULL,
    lower_s  INTEGER NOT NULL,
    upper_s  INTEGER NOT NULL,
    cases    INTEGER NOT NULL,
    PRIMARY KEY (month, measure, lower_s)
);

-- Callbacks per business-local month of the call × kind × the complaint's handler,
-- intake channel and category at that moment × outcome (R-R2); scored: of those, how
-- many gave a 1–5 score, score_sum: the sum of those scores.
CREATE TABLE rm_satisfaction_monthly (
    month          TEXT NOT NULL,
    kind           TEXT NOT NULL,
    handler        TEXT NOT NULL,
    intake_channel TEXT NOT NULL,
    category       TEXT NOT NULL,
    outcome        TEXT NOT NULL,
    callbacks      INTEGER NOT NULL,
    scored         INTEGER NOT NULL,
    score_sum      INTEGER NOT NULL,
    PRIMARY KEY (month, kind, handler, intake_channel, category, outcome)
);
