-- Issue 22: service requests feed the quality metrics (kind 'request' rows of
-- rm_quality_monthly and rm_quality_durations_monthly, kept by the `requests`
-- projection as deltas of its rows). The durations are stored beside the times so that
-- the aggregate check (`Runner::aggregates_by_scan`) buckets them as the complaints'
-- are: receipt to first response (the resolution when nothing answered first), and
-- receipt to resolution, in wall-clock seconds. The projection's version bump
-- rebuilds rm_requests, which fills them for existing requests.
ALTER TABLE rm_requests ADD COLUMN first_response_seconds INTEGER;
ALTER TABLE rm_requests ADD COLUMN resolution_seconds INTEGER;
