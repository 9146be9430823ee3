-- Issue 18, the last two reports whose cost followed history.
--
-- R-C5 callback coverage: how many live customers each graded group holds is a count
-- kept by the customers projection; the coverage query then reads only the customers
-- not covered (never called back, or last called back before the cadence), through
-- rm_customers_routine and the index below, and subtracts.
CREATE TABLE rm_grade_customers (
    grade     TEXT PRIMARY KEY,
    customers BIGINT NOT NULL
);

-- Live graded customers never called back, by grade.
CREATE INDEX rm_customers_never_called_back ON rm_customers (tier, COALESCE(stars, 0))
    WHERE last_callback_at IS NULL AND forgotten_at IS NULL AND merged_into IS NULL;

-- R-R4 referrals per referrer as the report counts them: a merged referrer's counts
-- (rm_referral_counts) added to its survivor's. Kept by the customers projection for
-- the referrers a batch touches, so the report reads one page of it, most referrals
-- first, instead of grouping every referrer on every call.
CREATE TABLE rm_referrer_totals (
    referrer        TEXT PRIMARY KEY,
    referred        BIGINT NOT NULL,
    still_customers BIGINT NOT NULL,
    contacted       BIGINT NOT NULL
);
CREATE INDEX rm_referrer_totals_ranked ON rm_referrer_totals (referred DESC, referrer);
