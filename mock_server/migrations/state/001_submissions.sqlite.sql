-- What the gateway has recorded (store.py): submissions, histories, numbers issued; payment orders (payments.py).
CREATE TABLE IF NOT EXISTS submissions (
    message_id TEXT PRIMARY KEY,
    case_id TEXT NOT NULL,
    user_id TEXT NOT NULL,
    from_identity TEXT NOT NULL,
    type TEXT NOT NULL,
    function TEXT NOT NULL,
    reference TEXT NOT NULL,
    header TEXT NOT NULL,              -- JSON: the request's header fields (replies quote them, ENV-10)
    request_text BLOB NOT NULL,
    received_at REAL NOT NULL,
    reception_number TEXT NOT NULL,
    declaration_number TEXT,
    script TEXT NOT NULL,              -- JSON: history steps still to reveal (scenario history)
    pending_queries INTEGER NOT NULL,
    quiet_queries INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS submissions_ref ON submissions (from_identity, type, function, reference);
CREATE TABLE IF NOT EXISTS entries (
    message_id TEXT NOT NULL REFERENCES submissions (message_id),
    sequence INTEGER NOT NULL,
    function TEXT NOT NULL,
    text BLOB NOT NULL,
    PRIMARY KEY (message_id, sequence)
);
CREATE TABLE IF NOT EXISTS receptions (message_id TEXT PRIMARY KEY, count INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS counters (kind TEXT PRIMARY KEY, value BIGINT NOT NULL);
CREATE TABLE IF NOT EXISTS payment_orders (
    order_id TEXT PRIMARY KEY,
    message_id TEXT NOT NULL,          -- the 701 submission
    from_identity TEXT NOT NULL,
    maker TEXT NOT NULL,
    total_vnd TEXT NOT NULL,
    state TEXT NOT NULL,               -- awaiting | approved
    otp_hash TEXT,
    otp_expires_at REAL,
    otp_wrong INTEGER NOT NULL DEFAULT 0,
    otp_valid INTEGER NOT NULL DEFAULT 0
);
