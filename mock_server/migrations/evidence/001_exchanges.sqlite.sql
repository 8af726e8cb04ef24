-- The evidence log (evidence.py): one hash chain of exchanges, append-only. Columns in the order of
-- evidence.COLUMNS (tests/test_storage.py checks that they match).
CREATE TABLE IF NOT EXISTS exchanges (
    pos INTEGER PRIMARY KEY,
    seq INTEGER NOT NULL UNIQUE,
    case_id TEXT,
    received_at REAL,
    responded_at REAL,
    client TEXT,
    method TEXT,
    path TEXT,
    request_headers TEXT,
    request_body BLOB,
    message_text BLOB,
    user_id TEXT,
    message_id TEXT,
    type TEXT,
    function TEXT,
    reference TEXT,
    attempt INTEGER,
    response_status INTEGER,
    response_headers TEXT,
    response_body BLOB,
    reply_text BLOB,
    reply_function TEXT,
    reply_codes TEXT,
    rule TEXT,
    gateway_verdict TEXT,
    clock_offset REAL,
    connection_accepted_at REAL,
    tls_started_at REAL,
    tls_finished_at REAL,
    connection_request INTEGER,
    connection_closed_at REAL,
    prev_hash TEXT NOT NULL,
    row_hash TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS exchanges_case ON exchanges (case_id);
CREATE TRIGGER IF NOT EXISTS exchanges_no_update BEFORE UPDATE ON exchanges
    BEGIN SELECT RAISE(ABORT, 'the evidence log is append-only'); END;
CREATE TRIGGER IF NOT EXISTS exchanges_no_delete BEFORE DELETE ON exchanges
    BEGIN SELECT RAISE(ABORT, 'the evidence log is append-only'); END;
