"""The evidence log: every exchange the gateway saw, append-only and hash-chained.

Verdicts on a DTS rest on what the gateway observed, so the log must show tampering: each row
carries ``row_hash = sha256(prev_hash + canonical row content)``, where the content includes its
chain position ``pos``. Editing a row breaks its own hash; deleting one breaks the position
sequence and the next row's ``prev_hash``.

Two numbers per row: ``seq`` is the arrival number, given when the request arrives (exchanges are
listed in that order); ``pos`` is the chain position, given when the row is written, after the
response. They differ when a delayed response completes after a later request's. (Removing the *last* rows leaves a shorter valid chain; the run report therefore
states the head hash and the row count — a later issue.) SQLite triggers also refuse UPDATE and
DELETE so the gateway itself cannot rewrite history by mistake.

Times are real epoch seconds (when bytes moved); ``clock_offset`` records the gateway clock's
offset at that moment (see clock.py).
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import threading
from pathlib import Path
from typing import Any

GENESIS = "0" * 64

# Column name -> SQLite type, in the order of conformance.gateway_control.Exchange, then extras.
COLUMNS: dict[str, str] = {
    "case_id": "TEXT",
    "received_at": "REAL",
    "responded_at": "REAL",
    "client": "TEXT",
    "method": "TEXT",
    "path": "TEXT",
    "request_headers": "JSON",
    "request_body": "BLOB",
    "message_text": "BLOB",
    "user_id": "TEXT",
    "message_id": "TEXT",
    "type": "TEXT",
    "function": "TEXT",
    "reference": "TEXT",
    "attempt": "INTEGER",
    "response_status": "INTEGER",
    "response_headers": "JSON",
    "response_body": "BLOB",
    "reply_text": "BLOB",
    "reply_function": "TEXT",
    "reply_codes": "JSON",
    "rule": "TEXT",
    "gateway_verdict": "JSON",
    "clock_offset": "REAL",
    # The request's connection (connections.py): REL-01 starts an attempt at connection set-up or reuse,
    # REL-06 counts from the end of the failed attempt — for one the client gave up, when it closed.
    "connection_accepted_at": "REAL",
    "tls_started_at": "REAL",
    "tls_finished_at": "REAL",
    "connection_request": "INTEGER",   # n-th request on its connection (1: a new connection)
    "connection_closed_at": "REAL",    # the connection closed before this row was written
}
_JSON_DEFAULTS = {"request_headers": {}, "response_headers": {}, "reply_codes": [], "gateway_verdict": {}}


def _ddl() -> str:
    cols = ",\n    ".join(f"{name} {'TEXT' if kind == 'JSON' else kind}" for name, kind in COLUMNS.items())
    return f"""
CREATE TABLE IF NOT EXISTS exchanges (
    pos INTEGER PRIMARY KEY,
    seq INTEGER NOT NULL UNIQUE,
    {cols},
    prev_hash TEXT NOT NULL,
    row_hash TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS exchanges_case ON exchanges (case_id);
CREATE TRIGGER IF NOT EXISTS exchanges_no_update BEFORE UPDATE ON exchanges
    BEGIN SELECT RAISE(ABORT, 'the evidence log is append-only'); END;
CREATE TRIGGER IF NOT EXISTS exchanges_no_delete BEFORE DELETE ON exchanges
    BEGIN SELECT RAISE(ABORT, 'the evidence log is append-only'); END;
"""


def _stored(name: str, value: Any) -> Any:
    """A value as stored in its column: JSON columns as canonical JSON text, bytes as bytes."""
    if COLUMNS[name] == "JSON":
        return json.dumps(_JSON_DEFAULTS[name] if value is None else value, sort_keys=True, ensure_ascii=False)
    return value


def row_hash(prev_hash: str, pos: int, seq: int, stored: dict[str, Any]) -> str:
    """sha256 over the previous hash and the canonical content of one row (its stored values)."""
    content = {"pos": pos, "seq": seq}
    for name in COLUMNS:
        value = stored.get(name)
        content[name] = {"hex": bytes(value).hex()} if isinstance(value, (bytes, memoryview)) else value
    canonical = json.dumps(content, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(prev_hash.encode("ascii") + b"\n" + canonical.encode("utf-8")).hexdigest()


class EvidenceLog:
    def __init__(self, path: Path):
        self.path = Path(path)
        self._db = sqlite3.connect(str(self.path), check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.executescript(_ddl())
        self._lock = threading.Lock()
        self._last_seq = self._db.execute("SELECT COALESCE(MAX(seq), 0) FROM exchanges").fetchone()[0]

    def next_seq(self) -> int:
        """Allocate the arrival number of a request that has just arrived."""
        with self._lock:
            self._last_seq += 1
            return self._last_seq

    def close(self) -> None:
        self._db.close()

    def append(self, seq: int, **fields: Any) -> None:
        """Append the exchange that arrived as ``seq``. Unknown field names are a programming error."""
        unknown = set(fields) - set(COLUMNS)
        if unknown:
            raise KeyError(f"not evidence columns: {sorted(unknown)}")
        stored = {name: _stored(name, fields.get(name)) for name in COLUMNS}
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                last = self._db.execute("SELECT pos, row_hash FROM exchanges ORDER BY pos DESC LIMIT 1").fetchone()
                pos, prev = (last[0] + 1, last[1]) if last else (1, GENESIS)
                names = ", ".join(COLUMNS)
                marks = ", ".join("?" for _ in COLUMNS)
                self._db.execute(
                    f"INSERT INTO exchanges (pos, seq, {names}, prev_hash, row_hash) VALUES (?, ?, {marks}, ?, ?)",
                    (pos, seq, *stored.values(), prev, row_hash(prev, pos, seq, stored)),
                )
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise

    def rows(self, case_id: str | None = None) -> list[dict[str, Any]]:
        """Rows as dicts (JSON columns decoded, BLOBs as bytes), in arrival order (``seq``)."""
        sql = f"SELECT seq, {', '.join(COLUMNS)} FROM exchanges"
        args: tuple = ()
        if case_id is not None:
            sql, args = sql + " WHERE case_id = ?", (case_id,)
        out = []
        for row in self._db.execute(sql + " ORDER BY seq", args):
            item = {"seq": row[0]}
            for name, value in zip(COLUMNS, row[1:]):
                if COLUMNS[name] == "JSON":
                    value = json.loads(value)
                elif isinstance(value, memoryview):
                    value = bytes(value)
                item[name] = value
            out.append(item)
        return out


def chain_head(db: Path | str) -> tuple[int, str]:
    """(number of rows, hash of the last row in chain order) — what a report states so that
    removing the *last* rows is detectable too."""
    conn = sqlite3.connect(f"file:{Path(db)}?mode=ro", uri=True)
    try:
        count = conn.execute("SELECT COUNT(*) FROM exchanges").fetchone()[0]
        last = conn.execute("SELECT row_hash FROM exchanges ORDER BY pos DESC LIMIT 1").fetchone()
        return count, last[0] if last else GENESIS
    finally:
        conn.close()


def verify_chain(db: Path | str) -> tuple[bool, int | None]:
    """Check the whole chain of an evidence database.

    Returns ``(True, None)``, or ``(False, seq)`` naming the first row, in chain order, that is not
    as recorded: an edited row, or the row that follows deleted ones.
    """
    conn = sqlite3.connect(f"file:{Path(db)}?mode=ro", uri=True)
    try:
        prev, expected = GENESIS, 1
        names = list(COLUMNS)
        query = f"SELECT pos, seq, {', '.join(names)}, prev_hash, row_hash FROM exchanges ORDER BY pos"
        for row in conn.execute(query):
            pos, seq, values, stored_prev, stored_hash = row[0], row[1], row[2:-2], row[-2], row[-1]
            if pos != expected or stored_prev != prev or row_hash(prev, pos, seq, dict(zip(names, values))) != stored_hash:
                return False, seq
            prev, expected = stored_hash, pos + 1
        return True, None
    finally:
        conn.close()
