-- cdrate schema 0001 (PostgreSQL). Instants are epoch milliseconds (UTC);
-- money is NUMERIC, exact.

CREATE TABLE bus_log (
    topic TEXT NOT NULL,
    "offset" BIGINT NOT NULL,
    key TEXT NOT NULL,
    payload BYTEA NOT NULL,
    appended_at_ms BIGINT NOT NULL,
    PRIMARY KEY (topic, "offset")
);

CREATE TABLE bus_offsets (
    grp TEXT NOT NULL,
    topic TEXT NOT NULL,
    next_offset BIGINT NOT NULL,
    PRIMARY KEY (grp, topic)
);

CREATE TABLE tariff_versions (
    version BIGINT PRIMARY KEY,
    imported_at_ms BIGINT NOT NULL,
    origin TEXT NOT NULL,
    digest TEXT NOT NULL,
    plans TEXT NOT NULL,
    bands TEXT NOT NULL,
    rates TEXT NOT NULL
);

CREATE TABLE account_versions (
    version BIGINT PRIMARY KEY,
    imported_at_ms BIGINT NOT NULL,
    origin TEXT NOT NULL,
    digest TEXT NOT NULL,
    accounts TEXT NOT NULL,
    identities TEXT NOT NULL
);

CREATE TABLE rated_calls (
    id TEXT PRIMARY KEY,
    version BIGINT NOT NULL,
    account_id TEXT NOT NULL,
    source TEXT NOT NULL,
    account_key TEXT NOT NULL,
    direction TEXT NOT NULL,
    caller TEXT NOT NULL,
    callee TEXT NOT NULL,
    callee_e164 TEXT,
    start_at_ms BIGINT NOT NULL,
    answer_at_ms BIGINT,
    end_at_ms BIGINT NOT NULL,
    billable_ms BIGINT NOT NULL,
    disposition TEXT NOT NULL,
    plan TEXT,
    prefix TEXT,
    destination TEXT,
    band TEXT,
    charged_seconds BIGINT NOT NULL,
    cost NUMERIC NOT NULL,
    currency TEXT NOT NULL,
    note TEXT,
    tariff_version BIGINT NOT NULL,
    rating_version BIGINT NOT NULL,
    rated_at_ms BIGINT NOT NULL,
    record TEXT NOT NULL
);
CREATE INDEX rated_calls_account_start ON rated_calls (account_id, start_at_ms);
CREATE INDEX rated_calls_start ON rated_calls (start_at_ms);

CREATE TABLE usage_totals (
    account_id TEXT NOT NULL,
    currency TEXT NOT NULL,
    calls BIGINT NOT NULL,
    charged_seconds BIGINT NOT NULL,
    cost NUMERIC NOT NULL,
    PRIMARY KEY (account_id, currency)
);

CREATE TABLE quarantine (
    id TEXT NOT NULL,
    version BIGINT NOT NULL,
    reason TEXT NOT NULL,
    detail TEXT NOT NULL,
    account_key TEXT NOT NULL,
    payload BYTEA NOT NULL,
    first_seen_at_ms BIGINT NOT NULL,
    last_tried_at_ms BIGINT NOT NULL,
    attempts BIGINT NOT NULL,
    PRIMARY KEY (id, version)
);
CREATE INDEX quarantine_reason ON quarantine (reason);
