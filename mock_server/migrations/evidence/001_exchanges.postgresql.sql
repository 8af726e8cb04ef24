-- The evidence log (evidence.py): one hash chain of exchanges, append-only. Columns in the order of
-- evidence.COLUMNS (tests/test_storage.py checks that they match).
CREATE TABLE exchanges (
    pos BIGINT PRIMARY KEY,
    seq BIGINT NOT NULL UNIQUE,
    case_id TEXT,
    received_at DOUBLE PRECISION,
    responded_at DOUBLE PRECISION,
    client TEXT,
    method TEXT,
    path TEXT,
    request_headers TEXT,
    request_body BYTEA,
    message_text BYTEA,
    user_id TEXT,
    message_id TEXT,
    type TEXT,
    function TEXT,
    reference TEXT,
    attempt BIGINT,
    response_status BIGINT,
    response_headers TEXT,
    response_body BYTEA,
    reply_text BYTEA,
    reply_function TEXT,
    reply_codes TEXT,
    rule TEXT,
    gateway_verdict TEXT,
    clock_offset DOUBLE PRECISION,
    connection_accepted_at DOUBLE PRECISION,
    tls_started_at DOUBLE PRECISION,
    tls_finished_at DOUBLE PRECISION,
    connection_request BIGINT,
    connection_closed_at DOUBLE PRECISION,
    prev_hash TEXT NOT NULL,
    row_hash TEXT NOT NULL
);
CREATE INDEX exchanges_case ON exchanges (case_id);
CREATE FUNCTION exchanges_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'the evidence log is append-only';
END;
$$;
CREATE TRIGGER exchanges_no_change BEFORE UPDATE OR DELETE ON exchanges
    FOR EACH ROW EXECUTE FUNCTION exchanges_append_only();
CREATE TRIGGER exchanges_no_truncate BEFORE TRUNCATE ON exchanges
    FOR EACH STATEMENT EXECUTE FUNCTION exchanges_append_only();
-- The chain head, one row: every writer locks it (FOR UPDATE) for its transaction, so rows enter the
-- chain one transaction at a time whichever process writes them.
CREATE TABLE chain_head (
    one BOOLEAN PRIMARY KEY DEFAULT TRUE CHECK (one),
    pos BIGINT NOT NULL,
    row_hash TEXT NOT NULL
);
INSERT INTO chain_head VALUES (TRUE, 0, '0000000000000000000000000000000000000000000000000000000000000000');
-- Arrival numbers (seq) for every process: the last one given, and those given whose row is not written
-- yet (with the process that took them: a process that died leaves them to be closed by another).
CREATE TABLE arrival_counter (
    one BOOLEAN PRIMARY KEY DEFAULT TRUE CHECK (one),
    last_seq BIGINT NOT NULL
);
INSERT INTO arrival_counter VALUES (TRUE, 0);
CREATE TABLE arrivals (
    seq BIGINT PRIMARY KEY,
    process_id TEXT NOT NULL,
    arrived_at DOUBLE PRECISION NOT NULL
);
CREATE INDEX arrivals_process ON arrivals (process_id);
-- Gateway processes sharing this database; each holds an advisory lock on its key while it lives.
CREATE TABLE gateway_processes (
    process_id TEXT PRIMARY KEY,
    lock_key BIGINT NOT NULL,
    host TEXT NOT NULL,
    pid INTEGER NOT NULL,
    started_at DOUBLE PRECISION NOT NULL,
    heartbeat_at DOUBLE PRECISION NOT NULL
);
