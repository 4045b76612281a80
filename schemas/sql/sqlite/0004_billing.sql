-- cdrate schema 0004 (SQLite): billing cycles, line items and their
-- WHMCS delivery ledger, usage alerts, API tokens.

-- What a cycle close billed for each call, kept on the call itself so the
-- calls still to bill (never billed, or re-rated since) are found through a
-- small partial index instead of a scan of the account's history.
ALTER TABLE rated_calls ADD COLUMN billed_cost TEXT;
ALTER TABLE rated_calls ADD COLUMN billed_item TEXT;
CREATE INDEX rated_calls_unbilled ON rated_calls (account_id, answer_at_ms)
    WHERE answer_at_ms IS NOT NULL AND (billed_cost IS NULL OR billed_cost <> cost);

-- One row per closed cycle (open cycles are not stored: they are computed).
CREATE TABLE billing_cycles (
    account_id TEXT NOT NULL,
    cycle_start_ms BIGINT NOT NULL,
    cycle_end_ms BIGINT NOT NULL,
    currency TEXT NOT NULL,
    total TEXT NOT NULL,
    items BIGINT NOT NULL,
    closed_at_ms BIGINT NOT NULL,
    PRIMARY KEY (account_id, cycle_start_ms)
);

-- Invoice line items and where each stands on its way to WHMCS.
-- delivery: push | pull | none. state: pending, sending, sent, failed,
-- uncertain, acked, held (delivery none), refused.
CREATE TABLE line_items (
    id TEXT PRIMARY KEY,
    account_id TEXT NOT NULL,
    cycle_start_ms BIGINT NOT NULL,
    cycle_end_ms BIGINT NOT NULL,
    kind TEXT NOT NULL,
    destination TEXT NOT NULL,
    calls BIGINT NOT NULL,
    billed_seconds BIGINT NOT NULL,
    amount TEXT NOT NULL,
    currency TEXT NOT NULL,
    description TEXT NOT NULL,
    delivery TEXT NOT NULL,
    state TEXT NOT NULL,
    whmcs_client_id BIGINT,
    whmcs_ref TEXT,
    invoice_id BIGINT,
    attempts BIGINT NOT NULL,
    next_attempt_at_ms BIGINT NOT NULL,
    last_error TEXT,
    created_at_ms BIGINT NOT NULL,
    updated_at_ms BIGINT NOT NULL
);
CREATE INDEX line_items_account ON line_items (account_id, cycle_start_ms);
CREATE INDEX line_items_state ON line_items (state, next_attempt_at_ms);

-- Every state change of a line item, in order: the audit trail of a push.
CREATE TABLE line_item_events (
    item_id TEXT NOT NULL,
    seq BIGINT NOT NULL,
    at_ms BIGINT NOT NULL,
    state TEXT NOT NULL,
    detail TEXT NOT NULL,
    PRIMARY KEY (item_id, seq)
);

CREATE TABLE usage_alerts (
    account_id TEXT NOT NULL,
    cycle_start_ms BIGINT NOT NULL,
    fraction TEXT NOT NULL,
    usage TEXT NOT NULL,
    credit_limit TEXT NOT NULL,
    fired_at_ms BIGINT NOT NULL,
    PRIMARY KEY (account_id, cycle_start_ms, fraction)
);

-- API tokens: only a SHA-256 of the secret is kept.
CREATE TABLE api_tokens (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    scopes TEXT NOT NULL,
    secret_sha256 TEXT NOT NULL UNIQUE,
    created_at_ms BIGINT NOT NULL,
    revoked_at_ms BIGINT
);
