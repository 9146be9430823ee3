-- Issue 18, second part: the operational reports cost what their open set or their
-- answer costs, never what the whole history costs.
--
-- Indexes that hold only the rows still owing something, so the breaches, the due
-- callbacks and the dashboard read those and never the closed past. A row leaves them
-- in the transaction that settles it (callback logged, case reopened, customer
-- contacted, erased or merged).

-- Closed cases awaiting their callback (R-P15), by deadline. Replaces the index on
-- (status, callback_due_at), which held every case ever closed. `callback_pending AND
-- archived_at IS NULL` is `status = 'closed' AND callback_pending` (a pending callback
-- is set by a closure and cleared by a callback or a reopening; archiving sets
-- archived_at), spelled without `status` so that no index on status competes with it.
DROP INDEX rm_complaints_callback_due;
CREATE INDEX rm_complaints_callback_pending ON rm_complaints (callback_due_at)
    WHERE callback_pending AND archived_at IS NULL;

-- Customers awaiting their first contact (R-C4), by registration.
CREATE INDEX rm_customers_uncontacted ON rm_customers (registered_at)
    WHERE first_contact_at IS NULL AND forgotten_at IS NULL AND merged_into IS NULL;

-- Live customers by grade and the start of their routine cadence (R-C5): the last
-- callback, or registration. A grade's due customers are one range of it.
CREATE INDEX rm_customers_routine ON rm_customers
    (tier, COALESCE(stars, 0), COALESCE(last_callback_at, registered_at))
    WHERE forgotten_at IS NULL AND merged_into IS NULL;

-- Counts kept by the projections in the transaction of the rows they count, exactly
-- equal to a scan of those rows and after a rebuild (docs/read-models.md). A row whose
-- first count reaches zero is deleted.

-- Open cases per handler (complaints projection): open_cases, of which major.
CREATE TABLE rm_handler_open_cases (
    handler          TEXT PRIMARY KEY,
    open_cases       BIGINT NOT NULL,
    open_major_cases BIGINT NOT NULL
);

-- Live customers (neither erased nor merged away) per agent (customers projection).
CREATE TABLE rm_agent_customers (
    agent     TEXT PRIMARY KEY,
    customers BIGINT NOT NULL
);

-- Customers registered as referred by each referrer (customers projection), keyed by
-- the referrer as registered (rm_customers.referred_by; the report adds a merged
-- referrer's rows to its survivor's). A merged duplicate counts nowhere; of the
-- referred, still_customers are not erased and contacted have had a first contact.
CREATE TABLE rm_referral_counts (
    referrer        TEXT PRIMARY KEY,
    referred        BIGINT NOT NULL,
    still_customers BIGINT NOT NULL,
    contacted       BIGINT NOT NULL
);
