-- R-T3: each case keeps the policy version it was filed under and the deadlines that
-- version gave it, with their warning points (R-T5: when each is at risk). The
-- complaints projection's version changes with this, so its rows are rebuilt from the
-- log on start and every row has these columns filled.
ALTER TABLE rm_complaints ADD COLUMN policy_version INTEGER NOT NULL DEFAULT 0;
ALTER TABLE rm_complaints ADD COLUMN first_response_due_at TEXT NOT NULL DEFAULT '';
ALTER TABLE rm_complaints ADD COLUMN resolution_due_at TEXT NOT NULL DEFAULT '';
ALTER TABLE rm_complaints ADD COLUMN first_response_at_risk_at TEXT NOT NULL DEFAULT '';
ALTER TABLE rm_complaints ADD COLUMN resolution_at_risk_at TEXT NOT NULL DEFAULT '';
ALTER TABLE rm_complaints ADD COLUMN callback_due_at TEXT;
ALTER TABLE rm_complaints ADD COLUMN callback_at_risk_at TEXT;
CREATE INDEX rm_complaints_first_response_due ON rm_complaints (status, first_response_due_at);
CREATE INDEX rm_complaints_callback_due ON rm_complaints (status, callback_due_at);
