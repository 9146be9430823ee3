-- R-P15: ListDueCallbacks reads the resolved after-sales requests awaiting their
-- callback by due time (the existing partial index is keyed by customer for settling).
CREATE INDEX rm_requests_callback_due ON rm_requests (callback_due_at)
    WHERE callback_due_at IS NOT NULL AND called_back_at IS NULL;
