-- Issue 22 (quality metrics, seed 001 ch. 7): first-contact resolution, first-response
-- and resolution time histograms and reopen rates per kind of case × business-local
-- month of receipt × intake channel × handler. The complaints projection keeps them
-- as deltas of rm_complaints in the same transaction, so they are exactly consistent
-- with those rows and equal after a rebuild (docs/read-models.md). kind is 'complaint'
-- now; service requests add rows of kind 'request' from their own rows. Keys lead
-- with the month, so a report reads the range of months it asks for.

-- How often the complainant was reached (ComplainantContacted and ReplySent) and how
-- often the case was closed: what first-contact resolution and the reopen rate count.
-- A version bump rebuilds rm_complaints, which fills them for existing cases.
ALTER TABLE rm_complaints ADD COLUMN contacts INTEGER NOT NULL DEFAULT 0;
ALTER TABLE rm_complaints ADD COLUMN closes INTEGER NOT NULL DEFAULT 0;

-- Per kind × month of receipt × channel × handler ('none' when there is none): cases
-- received; responded (with a first response), responded_in_time (by the case's
-- first-response deadline, R-P7/R-T3); closed (closed at least once);
-- resolved_first_contact (closed, never reopened, reached once: the final reply was
-- the first response); reopened (cases reopened at least once), reopens and closes
-- (events, summed over the cases).
CREATE TABLE rm_quality_monthly (
    kind                   TEXT NOT NULL,
    month                  TEXT NOT NULL,
    channel                TEXT NOT NULL,
    handler                TEXT NOT NULL,
    cases                  INTEGER NOT NULL,
    responded              INTEGER NOT NULL,
    responded_in_time      INTEGER NOT NULL,
    closed                 INTEGER NOT NULL,
    resolved_first_contact INTEGER NOT NULL,
    reopened               INTEGER NOT NULL,
    reopens                INTEGER NOT NULL,
    closes                 INTEGER NOT NULL,
    PRIMARY KEY (month, kind, channel, handler)
);

-- Histograms per the same groups and measure ('first_response': receipt to first
-- response; 'resolution': receipt to first closure): cases whose duration in seconds
-- lies in [lower_s, upper_s), the buckets of rm_complaint_durations_monthly. Only
-- non-empty buckets have a row.
CREATE TABLE rm_quality_durations_monthly (
    kind     TEXT NOT NULL,
    month    TEXT NOT NULL,
    channel  TEXT NOT NULL,
    handler  TEXT NOT NULL,
    measure  TEXT NOT NULL,
    lower_s  INTEGER NOT NULL,
    upper_s  INTEGER NOT NULL,
    cases    INTEGER NOT NULL,
    PRIMARY KEY (month, kind, channel, handler, measure, lower_s)
);
