-- Sessions seen by every gateway process sharing the database (shared_sessions.py; used with PostgreSQL).
-- definition: the create-session body (accounts with their passwords: the database is private, like the
-- state file). A change takes the next revision under the counter row's lock, so revisions commit in order.
CREATE TABLE IF NOT EXISTS shared_sessions (
    session_id TEXT PRIMARY KEY,
    definition TEXT,
    case_id TEXT NOT NULL DEFAULT '',
    scenario TEXT NOT NULL DEFAULT '{}',
    case_version INTEGER NOT NULL DEFAULT 0,
    clock_offset DOUBLE PRECISION NOT NULL DEFAULT 0,
    revision BIGINT NOT NULL
);
CREATE TABLE IF NOT EXISTS session_revision (one INTEGER PRIMARY KEY CHECK (one = 1), value BIGINT NOT NULL);
INSERT INTO session_revision VALUES (1, 0);
-- A case's rule firings (times), and replies a duplicate fault owes to a submission's next query.
CREATE TABLE IF NOT EXISTS rule_fires (
    session_id TEXT NOT NULL,
    case_version INTEGER NOT NULL,
    label TEXT NOT NULL,
    count INTEGER NOT NULL,
    PRIMARY KEY (session_id, case_version, label)
);
CREATE TABLE IF NOT EXISTS owed_replies (
    session_id TEXT NOT NULL,
    case_version INTEGER NOT NULL,
    message_id TEXT NOT NULL,
    text BYTEA NOT NULL,
    PRIMARY KEY (session_id, case_version, message_id)
);
-- A session's OTP e-mails (mailbox.py), numbered per session.
CREATE TABLE IF NOT EXISTS mails (
    session_id TEXT NOT NULL,
    seq INTEGER NOT NULL,
    mail TEXT NOT NULL,
    PRIMARY KEY (session_id, seq)
);
