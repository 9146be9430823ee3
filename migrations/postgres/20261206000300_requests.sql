-- Service requests (咨询, 售后申请) for BI and the SLA lists: the `requests` projection's
-- table, one row per request. No personal text: what was asked and how it was settled
-- stay sealed in the request's stream (GetRequest). Open requests awaiting their first
-- response (R-P7) and resolved after-sales requests awaiting their callback (R-P15) are
-- read through partial indexes, so the SLA lists cost what is open, not the history.
CREATE TABLE rm_requests (
    request_id                TEXT        PRIMARY KEY,
    customer_id               TEXT        NOT NULL,
    kind                      TEXT        NOT NULL,
    channel                   TEXT        NOT NULL,
    category                  TEXT        NOT NULL,
    status                    TEXT        NOT NULL,
    agent                     TEXT,
    received_at               TIMESTAMPTZ NOT NULL,
    recorded_at               TIMESTAMPTZ NOT NULL,
    received_month            TEXT        NOT NULL,
    policy_version            BIGINT      NOT NULL,
    first_response_due_at     TIMESTAMPTZ NOT NULL,
    first_response_at_risk_at TIMESTAMPTZ NOT NULL,
    first_response_at         TIMESTAMPTZ,
    responses                 BIGINT      NOT NULL,
    resolved_at               TIMESTAMPTZ,
    resolved_by               TEXT,
    first_contact             BOOLEAN     NOT NULL,
    callback_due_at           TIMESTAMPTZ,
    callback_at_risk_at       TIMESTAMPTZ,
    called_back_at            TIMESTAMPTZ,
    complaint_id              TEXT,
    case_number               TEXT,
    escalated_at              TIMESTAMPTZ,
    last_position             BIGINT      NOT NULL
);
CREATE INDEX rm_requests_agent ON rm_requests (agent, status);
CREATE INDEX rm_requests_customer ON rm_requests (customer_id);
CREATE INDEX rm_requests_awaiting_response ON rm_requests (first_response_due_at)
    WHERE first_response_at IS NULL AND status = 'open';
CREATE INDEX rm_requests_awaiting_callback ON rm_requests (customer_id, resolved_at)
    WHERE callback_due_at IS NOT NULL AND called_back_at IS NULL;

