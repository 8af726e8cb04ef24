"""Sessions shared by several gateway processes through their database (``--database postgresql://``).

Behind a load balancer, a run's control call (create its session, begin a case, advance the clock) lands
on one process and its product's next request on another; each process therefore keeps its sessions
(sessions.py) as a cache of rows here, brought up to date before it serves a request (``changes``: one
query, the rows changed since the last revision it saw). What a case does that must be counted once for
all processes is counted here too: a rule's firings (``times``), the reply a ``duplicate`` owes to the
next query, the OTP e-mails. Left in each process: held connections (a ``hold`` is released by the
process holding it when it sees the next case), a rule's ``probability`` draws (each process has its own
seeded RNG), the operator prompts, and the REL-15 query start times (more lenient only).
"""

from __future__ import annotations

import json
from dataclasses import asdict

from .database import AlreadyRecorded, Database
from .mailbox import Mail


class SharedSessions:
    def __init__(self, db: Database):
        self._db = db
        self.revision = 0                  # the highest revision this process has applied

    def _next_revision(self, db: Database) -> int:
        return db.execute("UPDATE session_revision SET value = value + 1 RETURNING value").fetchone()[0]

    def create(self, session_id: str, definition: dict | None) -> bool:
        """Note a new session (its create-session body); False if it exists already."""
        try:
            with self._db.transaction() as db:
                db.execute("INSERT INTO shared_sessions (session_id, definition, revision) VALUES (?, ?, ?)",
                           (session_id, None if definition is None else json.dumps(definition),
                            self._next_revision(db)))
            return True
        except AlreadyRecorded:
            return False

    def begin_case(self, session_id: str, case_id: str, scenario: dict) -> int:
        """The session's next case; returns its version (what its firings and owed replies are kept under)."""
        with self._db.transaction() as db:
            revision = self._next_revision(db)
            return db.execute("UPDATE shared_sessions SET case_id = ?, scenario = ?, case_version = case_version + 1,"
                              " revision = ? WHERE session_id = ? RETURNING case_version",
                              (case_id, json.dumps(scenario), revision, session_id)).fetchone()[0]

    def advance_clock(self, session_id: str, seconds: float) -> float:
        with self._db.transaction() as db:
            revision = self._next_revision(db)
            return db.execute("UPDATE shared_sessions SET clock_offset = clock_offset + ?, revision = ?"
                              " WHERE session_id = ? RETURNING clock_offset",
                              (float(seconds), revision, session_id)).fetchone()[0]

    def changes(self) -> list[dict]:
        """Sessions changed since this process last looked, oldest change first."""
        rows = self._db.execute(
            "SELECT session_id, definition, case_id, scenario, case_version, clock_offset, revision"
            " FROM shared_sessions WHERE revision > ? ORDER BY revision", (self.revision,)).fetchall()
        out = []
        for session_id, definition, case_id, scenario, version, offset, revision in rows:
            out.append({"session_id": session_id, "definition": json.loads(definition) if definition else None,
                        "case_id": case_id, "scenario": json.loads(scenario), "case_version": version,
                        "clock_offset": offset})
            self.revision = max(self.revision, revision)
        return out

    # -- what a case counts once for every process -------------------------------------------------
    def take(self, session_id: str, version: int):
        """``take(label, times)``: count one firing of a rule if it has fired fewer than ``times`` times."""
        def take(label: str, times: int) -> bool:
            row = self._db.execute(
                "INSERT INTO rule_fires VALUES (?, ?, ?, 1) ON CONFLICT (session_id, case_version, label)"
                " DO UPDATE SET count = rule_fires.count + 1 WHERE rule_fires.count < ? RETURNING count",
                (session_id, version, label, times)).fetchone()
            return row is not None and row[0] <= times
        return take

    def owed(self, session_id: str, version: int) -> "OwedReplies":
        return OwedReplies(self._db, session_id, version)

    def mailbox(self, session_id: str) -> "SharedMailbox":
        return SharedMailbox(self._db, session_id)


class OwedReplies:
    """``CaseState.redeliver`` kept in the database: ``owed[message_id] = text``, ``owed.pop(message_id, None)``."""

    def __init__(self, db: Database, session_id: str, version: int):
        self._db, self._key = db, (session_id, version)

    def __setitem__(self, message_id: str, text: bytes) -> None:
        self._db.execute("INSERT INTO owed_replies VALUES (?, ?, ?, ?) ON CONFLICT (session_id, case_version,"
                         " message_id) DO UPDATE SET text = excluded.text", (*self._key, message_id, text))

    def pop(self, message_id: str, default=None):
        row = self._db.execute("DELETE FROM owed_replies WHERE session_id = ? AND case_version = ? AND message_id = ?"
                               " RETURNING text", (*self._key, message_id)).fetchone()
        return bytes(row[0]) if row else default


class SharedMailbox:
    """``Mailbox`` kept in the database: every process sends into, and reads, the same outbox."""

    def __init__(self, db: Database, session_id: str):
        self._db, self._session = db, session_id

    def send(self, **fields) -> Mail:
        for _ in range(5):                 # two processes numbering at once: the loser takes the next number
            try:
                with self._db.transaction() as db:
                    seq = db.execute("SELECT COALESCE(MAX(seq), 0) + 1 FROM mails WHERE session_id = ?",
                                     (self._session,)).fetchone()[0]
                    mail = Mail(seq=seq, **fields)
                    db.execute("INSERT INTO mails VALUES (?, ?, ?)", (self._session, seq, json.dumps(asdict(mail))))
                return mail
            except AlreadyRecorded:
                continue
        raise RuntimeError("could not number an OTP e-mail")

    def messages(self, *, tax_code: str | None = None, payment_order_id: str | None = None) -> list[Mail]:
        rows = self._db.execute("SELECT mail FROM mails WHERE session_id = ? ORDER BY seq", (self._session,)).fetchall()
        mails = []
        for (data,) in rows:
            fields = json.loads(data)
            fields["to"] = tuple(fields["to"])
            mails.append(Mail(**fields))
        return [m for m in mails if (tax_code is None or m.tax_code == tax_code)
                and (payment_order_id is None or m.payment_order_id == payment_order_id)]
