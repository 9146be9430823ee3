-- Finding the customer (issue 20): merged duplicates, and the keys customers are found
-- by. Both belong to the `customers` projection and are documented in docs/read-models.md.

-- The survivor a duplicate was merged into: the duplicate then counts nowhere on its own.
ALTER TABLE rm_customers ADD COLUMN merged_into TEXT;
CREATE INDEX rm_customers_merged_into ON rm_customers (merged_into) WHERE merged_into IS NOT NULL;

-- One row per search key of a customer: `kind` (a code that is also the rank of a match
-- on it), the normalised `term`, the customer it finds (the survivor after a merge) and
-- the customer whose record it comes from. A lookup is one range of the primary key per
-- kind, in rank order: the best matches come first without sorting.
CREATE TABLE rm_customer_keys (
    kind        INTEGER NOT NULL,
    term        TEXT    NOT NULL,
    customer_id TEXT    NOT NULL,
    source_id   TEXT    NOT NULL,
    PRIMARY KEY (kind, term, customer_id, source_id)
) WITHOUT ROWID;
CREATE INDEX rm_customer_keys_customer ON rm_customer_keys (customer_id, kind, term);
