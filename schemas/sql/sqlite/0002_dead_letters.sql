-- cdrate schema 0002 (SQLite): payloads ingest rejected, kept byte for byte,
-- and the state of each Fritz!Box CallMonitor (its open calls).

CREATE TABLE dead_letters (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    source TEXT NOT NULL,
    received_at_ms INTEGER NOT NULL,
    reason TEXT NOT NULL,
    detail TEXT NOT NULL,
    remote_addr TEXT NOT NULL,
    -- JSON object of the request headers, secrets redacted.
    headers TEXT NOT NULL,
    -- The request URI (path and query) as received.
    uri TEXT NOT NULL,
    body BLOB NOT NULL,
    retried_at_ms INTEGER,
    retry_outcome TEXT
);
CREATE INDEX dead_letters_reason ON dead_letters (reason);

CREATE TABLE fritzbox_state (
    box_id TEXT PRIMARY KEY,
    state TEXT NOT NULL,
    updated_at_ms INTEGER NOT NULL
);
