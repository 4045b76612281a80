-- cdrate schema 0001 (SQLite). Instants are epoch milliseconds (UTC);
-- money is TEXT holding an exact decimal, never REAL.

-- Embedded bus: an append-only log per topic and committed offsets per group.
CREATE TABLE bus_log (
    topic TEXT NOT NULL,
    "offset" INTEGER NOT NULL,
    key TEXT NOT NULL,
    payload BLOB NOT NULL,
    appended_at_ms INTEGER NOT NULL,
    PRIMARY KEY (topic, "offset")
) WITHOUT ROWID;

CREATE TABLE bus_offsets (
    grp TEXT NOT NULL,
    topic TEXT NOT NULL,
    next_offset INTEGER NOT NULL,
    PRIMARY KEY (grp, topic)
) WITHOUT ROWID;

-- Every imported tariff directory, kept whole so any version can be re-read.
CREATE TABLE tariff_versions (
    version INTEGER PRIMARY KEY,
    imported_at_ms INTEGER NOT NULL,
    origin TEXT NOT NULL,
    digest TEXT NOT NULL,
    plans TEXT NOT NULL,
    bands TEXT NOT NULL,
    rates TEXT NOT NULL
);

-- Every imported accounts + identities pair.
CREATE TABLE account_versions (
    version INTEGER PRIMARY KEY,
    imported_at_ms INTEGER NOT NULL,
    origin TEXT NOT NULL,
    digest TEXT NOT NULL,
    accounts TEXT NOT NULL,
    identities TEXT NOT NULL
);

-- One row per call id: its highest version, rated.
CREATE TABLE rated_calls (
    id TEXT PRIMARY KEY,
    version INTEGER NOT NULL,
    account_id TEXT NOT NULL,
    source TEXT NOT NULL,
    account_key TEXT NOT NULL,
    direction TEXT NOT NULL,
    caller TEXT NOT NULL,
    callee TEXT NOT NULL,
    callee_e164 TEXT,
    start_at_ms INTEGER NOT NULL,
    answer_at_ms INTEGER,
    end_at_ms INTEGER NOT NULL,
    billable_ms INTEGER NOT NULL,
    disposition TEXT NOT NULL,
    plan TEXT,
    prefix TEXT,
    destination TEXT,
    band TEXT,
    charged_seconds INTEGER NOT NULL,
    cost TEXT NOT NULL,
    currency TEXT NOT NULL,
    note TEXT,
    tariff_version INTEGER NOT NULL,
    rating_version INTEGER NOT NULL,
    rated_at_ms INTEGER NOT NULL,
    record TEXT NOT NULL
);
CREATE INDEX rated_calls_account_start ON rated_calls (account_id, start_at_ms);
CREATE INDEX rated_calls_start ON rated_calls (start_at_ms);

-- Running totals per account and currency, kept equal to the sum of rated_calls.
CREATE TABLE usage_totals (
    account_id TEXT NOT NULL,
    currency TEXT NOT NULL,
    calls INTEGER NOT NULL,
    charged_seconds INTEGER NOT NULL,
    cost TEXT NOT NULL,
    PRIMARY KEY (account_id, currency)
) WITHOUT ROWID;

-- Records the rating worker could not price, with the raw bytes it was given.
CREATE TABLE quarantine (
    id TEXT NOT NULL,
    version INTEGER NOT NULL,
    reason TEXT NOT NULL,
    detail TEXT NOT NULL,
    account_key TEXT NOT NULL,
    payload BLOB NOT NULL,
    first_seen_at_ms INTEGER NOT NULL,
    last_tried_at_ms INTEGER NOT NULL,
    attempts INTEGER NOT NULL,
    PRIMARY KEY (id, version)
) WITHOUT ROWID;
CREATE INDEX quarantine_reason ON quarantine (reason);
