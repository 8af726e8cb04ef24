"""What the gateway has recorded: submissions, their histories, and the numbers it issued.

Committed before the reply leaves (REL-12: "durably record a submission and its entry 1
before sending that reply"). History entries are stored as the exact signed octets sent the first
time, so every redelivery is byte-identical (RPL-02) and a retransmission gets the stored entry 1
unchanged (REL-10) — nothing is ever rebuilt or re-signed.

The database is SQLite or PostgreSQL (database.py; its schema in ``migrations/state``). With
PostgreSQL several gateway processes share it: a messageId recorded by one is a replay for every other
(``record`` raises ``AlreadyRecorded`` to the one that lost the race), and a row that changes is locked
(``for_update``) for the transaction that changes it.

Kept forever in the mock (``T_idem`` is 30 days; a conformance session is shorter), so "received
within ``T_idem``" always holds.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from .database import Database, connect

# Number formats (§4.2): ReceptionNo 10 digits; DeclNo 12 digits. Like VNACCS, import declaration
# numbers start with 10 and export ones with 30.
_COUNTER_START = {"reception": 3_000_000_000, "declaration-929": 100_000_000_000, "declaration-930": 300_000_000_000,
                  "payment-order": 20_000_000_000_000}


@dataclass(frozen=True)
class Entry:
    sequence: int
    function: str
    text: bytes


@dataclass(frozen=True)
class Submission:
    message_id: str
    case_id: str
    user_id: str
    from_identity: str
    type: str
    function: str
    reference: str
    header: dict
    request_text: bytes
    received_at: float
    reception_number: str
    declaration_number: str | None
    script: list[dict]
    pending_queries: int
    quiet_queries: int
    entry1_function: str


class Store:
    def __init__(self, target: Path | str | Database):
        # SQLite: synchronous NORMAL in WAL mode: a commit survives the process being killed, not a power cut,
        # and never waits for the disk on the event loop (behind another request's large evidence row: issue
        # 13). The evidence log, the record that counts, stays FULL (decisions.md "No request stalls another").
        self._db = target if isinstance(target, Database) else connect(target, component="state")
        self._lock = threading.RLock()
        self._last_query: dict[str, float] = {}

    def close(self) -> None:
        self._db.close()

    def _tx(self):
        return self._db.transaction()

    def transaction(self):
        """A re-entrant write transaction: what runs inside commits or rolls back as one."""
        return self._tx()

    @property
    def connection(self) -> Database:
        return self._db

    def next_number(self, kind: str) -> int:
        """The next value of a numbering (reception, declaration-<type>, payment-order)."""
        with self._tx() as db:
            return _next(db, kind)

    # --- receptions -----------------------------------------------------------------------
    def count_reception(self, message_id: str) -> int:
        """Count one more reception of ``message_id``; returns n for the n-th (the exchange's attempt)."""
        # one statement, atomic on its own: no transaction around it (two round trips fewer on PostgreSQL)
        return self._db.execute("INSERT INTO receptions VALUES (?, 1) ON CONFLICT (message_id)"
                                " DO UPDATE SET count = receptions.count + 1 RETURNING count", (message_id,)).fetchone()[0]

    def note_query_start(self, reference: str, at: float) -> float | None:
        """Remember when a query for ``reference`` started; returns the previous start (REL-15).

        In memory only: E9002 is a MAY, and losing the last start on a restart only makes the
        gateway more lenient, never wrongly strict.
        """
        with self._lock:
            previous = self._last_query.get(reference)
            self._last_query[reference] = at
            return previous

    # --- submissions ----------------------------------------------------------------------
    def submission(self, message_id: str) -> Submission | None:
        row = self._db.execute(_SELECT_SUBMISSION + " WHERE s.message_id = ?", (message_id,)).fetchone()
        return _submission(row) if row else None

    def receipted(self, from_identity: str, type_: str, function: str, reference: str, *,
                  user_ids: set[str] | None = None) -> Submission | None:
        """The submission whose entry 1 was 29 or 32 with this business reference (REL-11), if any;
        only among those sent by ``user_ids`` when given (one session's users)."""
        rows = self._db.execute(
            _SELECT_SUBMISSION + " WHERE s.from_identity = ? AND s.type = ? AND s.function = ? AND s.reference = ?"
            " AND e.function IN ('29', '32') ORDER BY s.received_at",
            (from_identity, type_, function, reference),
        ).fetchall()
        found = (_submission(r) for r in rows)
        return next((sub for sub in found if user_ids is None or sub.user_id in user_ids), None)

    def record(self, *, message_id: str, case_id: str, user_id: str, header: dict, request_text: bytes,
               received_at: float, script: list[dict], pending_queries: int,
               make_entry1: Callable[[str], tuple[str, bytes]], declaration_number: str | None = None) -> Entry:
        """Record a submission and its entry 1 in one transaction; returns entry 1.

        ``make_entry1(reception_number)`` builds and signs the reply and returns (function, text);
        if it raises, nothing is recorded. ``script`` is the history still to reveal (empty when
        entry 1 is final).
        """
        with self._tx() as db:
            reception_number = f"{_next(db, 'reception'):010d}"
            function, text = make_entry1(reception_number)
            db.execute(
                "INSERT INTO submissions (message_id, case_id, user_id, from_identity, type, function, reference,"
                " header, request_text, received_at, reception_number, script, pending_queries, declaration_number)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (message_id, case_id, user_id, header.get("From/identity", ""), header.get("Subject/type", ""),
                 header.get("Subject/function", ""), header.get("Subject/reference", ""),
                 json.dumps(header, ensure_ascii=False), request_text, received_at, reception_number,
                 json.dumps(script), pending_queries, declaration_number),
            )
            db.execute("INSERT INTO entries VALUES (?, 1, ?, ?)", (message_id, function, text))
        return Entry(1, function, text)

    def declaration(self, number: str) -> Submission | None:
        """The declaration (function 8) that was given ``number`` (DOC-04, Table 6-4 TaxLine)."""
        row = self._db.execute(_SELECT_SUBMISSION + " WHERE s.function = '8' AND s.type IN ('929', '930')"
                               " AND s.declaration_number = ?", (number,)).fetchone()
        return _submission(row) if row else None

    def cancellation_accepted(self, number: str) -> bool:
        """True once a cancellation of declaration ``number`` has a 32 in its history (RPL-04)."""
        return self._db.execute(
            "SELECT 1 FROM submissions s JOIN entries e ON e.message_id = s.message_id"
            " WHERE s.function = '1' AND s.declaration_number = ? AND e.function = '32' LIMIT 1", (number,)
        ).fetchone() is not None

    def close_history(self, message_id: str) -> None:
        """Nothing more is appended to this history (RPL-04: an accepted cancellation is final for it)."""
        with self._tx() as db:
            db.execute("UPDATE submissions SET script = '[]' WHERE message_id = ?", (message_id,))

    # --- histories ------------------------------------------------------------------------
    def entries(self, message_id: str) -> list[Entry]:
        rows = self._db.execute(
            "SELECT sequence, function, text FROM entries WHERE message_id = ? ORDER BY sequence", (message_id,)
        ).fetchall()
        return [Entry(s, f, bytes(t)) for s, f, t in rows]

    def note_quiet_query(self, message_id: str) -> int:
        """Count a query that found nothing new for the submission; returns the count so far."""
        return self._db.execute("UPDATE submissions SET quiet_queries = quiet_queries + 1 WHERE message_id = ?"
                                " RETURNING quiet_queries", (message_id,)).fetchone()[0]

    def declaration_number(self, message_id: str) -> str:
        """The submission's declaration number, issued now if it has none yet (its 30)."""
        with self._tx() as db:
            db.execute("SELECT 1 FROM submissions WHERE message_id = ?" + db.for_update, (message_id,))
            sub = self.submission(message_id)
            if sub.declaration_number:
                return sub.declaration_number
            number = f"{_next(db, 'declaration-' + sub.type):012d}"
            db.execute("UPDATE submissions SET declaration_number = ? WHERE message_id = ?", (number, message_id))
            return number

    def append_entry(self, message_id: str, make: Callable[[int], tuple[str, bytes]]) -> Entry:
        """Reveal the next scripted history entry: ``make(sequence)`` builds and signs it.

        The step is taken off the submission's script in the same transaction, so an entry is
        revealed exactly once whatever happens.
        """
        with self._tx() as db:
            db.execute("SELECT 1 FROM submissions WHERE message_id = ?" + db.for_update, (message_id,))
            sequence = db.execute("SELECT MAX(sequence) FROM entries WHERE message_id = ?", (message_id,)).fetchone()[0] + 1
            function, text = make(sequence)
            script = json.loads(db.execute("SELECT script FROM submissions WHERE message_id = ?", (message_id,)).fetchone()[0])
            db.execute("UPDATE submissions SET script = ? WHERE message_id = ?", (json.dumps(script[1:]), message_id))
            db.execute("INSERT INTO entries VALUES (?, ?, ?, ?)", (message_id, sequence, function, text))
        return Entry(sequence, function, text)


_SELECT_SUBMISSION = (
    "SELECT s.message_id, s.case_id, s.user_id, s.from_identity, s.type, s.function, s.reference, s.header,"
    " s.request_text, s.received_at, s.reception_number, s.declaration_number, s.script, s.pending_queries,"
    " s.quiet_queries, e.function FROM submissions s JOIN entries e ON e.message_id = s.message_id AND e.sequence = 1"
)


def _submission(row) -> Submission:
    (message_id, case_id, user_id, from_identity, type_, function, reference, header, request_text, received_at,
     reception_number, declaration_number, script, pending, quiet, entry1) = row
    return Submission(message_id, case_id, user_id, from_identity, type_, function, reference, json.loads(header),
                      bytes(request_text), received_at, reception_number, declaration_number, json.loads(script),
                      pending, quiet, entry1)


def _next(db: Database, kind: str) -> int:
    return db.execute("INSERT INTO counters VALUES (?, ?) ON CONFLICT (kind) DO UPDATE SET value = counters.value + 1"
                      " RETURNING value", (kind, _COUNTER_START[kind] + 1)).fetchone()[0]
