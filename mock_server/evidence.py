"""The evidence log: every exchange the gateway saw, append-only and hash-chained.

Verdicts on a DTS rest on what the gateway observed, so the log must show tampering: each row
carries ``row_hash = sha256(prev_hash + canonical row content)``, where the content includes its
chain position ``pos``. Editing a row breaks its own hash; deleting one breaks the position
sequence and the next row's ``prev_hash``. (Removing the *last* rows leaves a shorter valid chain;
the run report therefore states the head hash and the row count.) SQLite triggers also refuse
UPDATE and DELETE so the gateway itself cannot rewrite history by mistake.

Two numbers per row:

* ``seq`` — the arrival number, allocated when a request arrives (exchanges are listed in that
  order). Every allocated number ends in a row, answered or not (a request whose client went away
  before it was answered gets a row saying no reply was sent), so numbers run 1, 2, 3 … without
  gaps and a missing number is a lost row: ``verify_chain`` names the first. A gateway restarted on
  the same file continues after the highest recorded number.
* ``pos`` — the chain position, given when the row is committed. Rows are committed *before* the
  reply's first octet leaves (after a scenario ``delay``, before ``hold``, ``stall``, ``reset``,
  ``truncate``, ``drip``), so nothing is delivered without its row; ``pos`` and ``seq`` differ when
  a delayed response is committed after a later request's.

Because the row precedes the bytes, it records what the gateway is about to send and how (the
delivery plan), not whether the client read it. A row that cannot be committed within the busy
timeout (another process holds the write lock, or the disk fails) raises ``EvidenceUnavailable``:
the gateway then answers as an overloaded CGW instead and defers that answer's row, which is
written, in arrival order before any later row, as soon as the file accepts writes again.

Times are real epoch seconds (when bytes moved); ``clock_offset`` records the gateway clock's
offset at that moment (see clock.py).

No secret is stored: a ``redact`` function given to ``EvidenceLog`` (the gateway's, redaction.py) turns
every row's passwords and OTPs into keyed fingerprints before it is hashed and written, so neither the
file nor its WAL ever holds them.
"""

from __future__ import annotations

import hashlib
import json
import logging
import sqlite3
import threading
import time
from pathlib import Path
from typing import Any, Callable, Iterable

from .database import is_url
from .evidence_store import GENESIS, RetryableErrors, open_arrivals, open_engine, open_reader

log = logging.getLogger("mock_server")

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


def _stored(name: str, value: Any) -> Any:
    """A value as stored in its column: JSON columns as canonical JSON text, bytes as bytes."""
    if COLUMNS[name] == "JSON":
        return json.dumps(_JSON_DEFAULTS[name] if value is None else value, sort_keys=True, ensure_ascii=False)
    return value


def row_hash(prev_hash: str, pos: int, seq: int, stored: dict[str, Any], *, legacy: bool = False) -> str:
    """sha256 over the previous hash and the canonical content of one row (its stored values).

    An octet column enters the content as its own sha256 and length, which is as binding as the octets
    and is computed without holding the interpreter: a hostile request's megabytes, written as hex into
    JSON, held every other request back for half a second (issue 13). ``legacy``: the form of files
    written before that change (the octets as hex), which ``verify_chain`` still accepts.
    """
    content = {"pos": pos, "seq": seq}
    for name in COLUMNS:
        value = stored.get(name)
        if isinstance(value, (bytes, bytearray, memoryview)):
            value = ({"hex": bytes(value).hex()} if legacy
                     else {"sha256": hashlib.sha256(value).hexdigest(), "length": len(value)})
        elif hasattr(value, "sha256"):     # octets withheld from a slice (evidence_slice.Withheld): their digest
            value = {"sha256": value.sha256, "length": value.length}
        content[name] = value
    canonical = json.dumps(content, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(prev_hash.encode("ascii") + b"\n" + canonical.encode("utf-8")).hexdigest()


def _row_holds(prev_hash: str, pos: int, seq: int, stored: dict[str, Any], recorded_hash: str) -> bool:
    return recorded_hash in (row_hash(prev_hash, pos, seq, stored),
                             row_hash(prev_hash, pos, seq, stored, legacy=True))


class EvidenceUnavailable(Exception):
    """A row could not be committed within the busy timeout (the file is locked or failing)."""


class EvidenceLog:
    """The gateway's writer (and reader) of one evidence file.

    ``busy_timeout`` bounds how long a commit waits for the file's write lock; ``retry_interval``
    is how often deferred rows are retried in the background.
    """

    def __init__(self, path: Path | str, *, busy_timeout: float = 2.0, retry_interval: float = 0.05,
                 redact: Callable[[dict[str, Any]], dict[str, Any]] | None = None):
        # ``path``: an SQLite file, or a PostgreSQL URL shared by several gateway processes (evidence_store.py)
        self.path = path if is_url(path) else Path(path)
        self._redact = redact or (lambda fields: fields)
        self.busy_timeout = busy_timeout
        self._retry_interval = retry_interval
        self._engine = open_engine(self.path, list(COLUMNS), busy_timeout=busy_timeout)
        self._engine.stored_row, self._engine.hash_row = _stored_row, row_hash
        self._lock = threading.Lock()          # one writer at a time (in this process; the engine orders processes)
        self._seq_lock = threading.Lock()      # arrival numbers and deferred rows; never held while waiting
        self._deferred: dict[int, dict[str, Any]] = {}
        self._pending: list[_Ticket] = []      # appended rows waiting for the next group commit
        self._retrying: threading.Thread | None = None
        self._closed = False

    @property
    def last_seq(self) -> int:
        """The highest arrival number allocated so far (recorded, when nothing has arrived yet)."""
        return self._engine.last_seq

    def next_seq(self) -> int:
        """Allocate the arrival number of a request that has just arrived (it must end in a row)."""
        return self._engine.next_seq()

    @property
    def process_id(self) -> str | None:
        """This process among those sharing the log (host:pid:random), None for a file of its own."""
        return getattr(self._engine, "process_id", None)

    def close(self) -> None:
        """Write what is deferred (one last bounded attempt; a failure is logged), then close."""
        self._closed = True
        if not self.flush():
            log.error("evidence rows %s could not be written before closing: they are lost",
                      sorted(self._deferred))
        self._engine.close()

    def append(self, seq: int, **fields: Any) -> None:
        """Commit the exchange that arrived as ``seq`` (after any deferred rows); raises
        ``EvidenceUnavailable`` if that cannot be done within the busy timeout.

        Group commit: rows appended while another commit waits for the disk are written together by
        the next writer, in one transaction and one sync (a sync per row capped the gateway at a few
        hundred exchanges a second). Each caller returns only once its own row is committed."""
        ticket = _Ticket(seq, _stored_row(self._redact(fields)))
        with self._seq_lock:
            self._pending.append(ticket)
        if not self._lock.acquire(timeout=self.busy_timeout):
            with self._seq_lock:
                withdrawn = ticket in self._pending
                if withdrawn:
                    self._pending.remove(ticket)
            if withdrawn:
                raise EvidenceUnavailable(f"the evidence log stayed busy for {self.busy_timeout:g} s")
            ticket.done.wait()                 # a writer took it: its outcome is this row's
            ticket.outcome()
            return
        try:
            if not ticket.done.is_set():
                with self._seq_lock:
                    batch, self._pending = self._pending, []
                try:
                    self._write_locked([(t.seq, t.stored) for t in batch])
                except BaseException as exc:   # every row of the batch learns it; none waits forever
                    for t in batch:
                        t.finish(exc)
                    raise
                for t in batch:
                    t.finish(None)
        finally:
            self._lock.release()
        ticket.outcome()

    def defer(self, seq: int, **fields: Any) -> None:
        """Keep the row of ``seq`` to be written as soon as the file accepts writes (retried in the
        background, and before any later ``append``)."""
        stored = _stored_row(self._redact(fields))
        with self._seq_lock:
            self._deferred[seq] = stored
            if self._retrying is None or not self._retrying.is_alive():
                self._retrying = threading.Thread(target=self._retry, name="ecdi-evidence-retry", daemon=True)
                self._retrying.start()

    def deferred(self) -> list[dict[str, Any]]:
        """Rows not written yet, as ``rows()`` gives them."""
        with self._seq_lock:
            items = sorted(self._deferred.items())
        return [_decoded(seq, [stored[name] for name in COLUMNS]) for seq, stored in items]

    def flush(self) -> bool:
        """Write the deferred rows now; False if they are still waiting."""
        try:
            self._write([])
            return True
        except EvidenceUnavailable:
            return False

    def _retry(self) -> None:
        while not self._closed and self._deferred:
            time.sleep(self._retry_interval)
            if not self._closed:
                self.flush()

    def _write(self, rows: list[tuple[int, dict[str, Any]]]) -> None:
        if not self._lock.acquire(timeout=self.busy_timeout):
            raise EvidenceUnavailable(f"the evidence log stayed busy for {self.busy_timeout:g} s")
        try:
            self._write_locked(rows)
        finally:
            self._lock.release()

    def _write_locked(self, rows: list[tuple[int, dict[str, Any]]]) -> None:
        """Deferred rows, then ``rows``, in one transaction (the caller holds the writer lock)."""
        try:
            with self._seq_lock:
                deferred = sorted(self._deferred.items())
            if not rows and not deferred:
                return
            self._engine.append(deferred, rows, row_hash)
        except (sqlite3.Error, *RetryableErrors) as exc:
            raise EvidenceUnavailable(f"the evidence log could not be written ({exc})") from exc
        with self._seq_lock:
            for seq, _ in deferred:
                self._deferred.pop(seq, None)

    def rows(self, case_id: str | None = None) -> list[dict[str, Any]]:
        """Committed rows as dicts (JSON columns decoded, BLOBs as bytes), in arrival order (``seq``)."""
        return [_decoded(row[0], row[1:]) for row in self._engine.rows(case_id)]


class _Ticket:
    """One appended row on its way into a group commit."""

    def __init__(self, seq: int, stored: dict[str, Any]):
        self.seq, self.stored = seq, stored
        self.done = threading.Event()
        self._error: BaseException | None = None

    def finish(self, error: BaseException | None) -> None:
        self._error = error
        self.done.set()

    def outcome(self) -> None:
        if self._error is not None:
            raise EvidenceUnavailable(str(self._error))


def _stored_row(fields: dict[str, Any]) -> dict[str, Any]:
    """Validated fields as stored in their columns. Unknown field names are a programming error."""
    unknown = set(fields) - set(COLUMNS)
    if unknown:
        raise KeyError(f"not evidence columns: {sorted(unknown)}")
    return {name: _stored(name, fields.get(name)) for name in COLUMNS}


def _decoded(seq: int, values) -> dict[str, Any]:
    item: dict[str, Any] = {"seq": seq}
    for name, value in zip(COLUMNS, values):
        if COLUMNS[name] == "JSON":
            value = json.loads(value)
        elif isinstance(value, memoryview):
            value = bytes(value)
        item[name] = value
    return item


def chain_head(db: Path | str) -> tuple[int, str]:
    """(number of rows, hash of the last row in chain order) — what a report states so that
    removing the *last* rows is detectable too."""
    conn = open_reader(db)
    try:
        count = conn.execute("SELECT COUNT(*) FROM exchanges").fetchone()[0]
        last = conn.execute("SELECT row_hash FROM exchanges ORDER BY pos DESC LIMIT 1").fetchone()
        return count, last[0] if last else GENESIS
    finally:
        conn.close()


def export_chain(url: str, target: Path) -> int:
    """Copy the rows of a shared (PostgreSQL) evidence log into a new SQLite evidence file, values and
    hashes as recorded (the hashes cover the stored values, which both engines keep alike); returns
    how many. Open arrivals are not rows: an export of a running gateway may end in a gap."""
    source = open_reader(url)
    sink = open_engine(target, list(COLUMNS), busy_timeout=5.0)
    try:
        names = ["pos", "seq", *COLUMNS, "prev_hash", "row_hash"]
        count = 0
        with sink.db.transaction() as db:
            for row in source.execute(f"SELECT {', '.join(names)} FROM exchanges ORDER BY pos"):
                db.execute(f"INSERT INTO exchanges ({', '.join(names)}) VALUES ({', '.join('?' for _ in names)})", row)
                count += 1
        return count
    finally:
        source.close()
        sink.close()


def verify_chain(db: Path | str, *, unwritten: Iterable[int] = ()) -> tuple[bool, int | None]:
    """``(True, None)`` when the evidence database is whole, else ``(False, seq)`` naming the first
    problem of ``check_chain``."""
    problems = check_chain(db, unwritten=unwritten)
    return (False, problems[0][1]) if problems else (True, None)


def check_chain(db: Path | str, *, unwritten: Iterable[int] = ()) -> list[tuple[str, int]]:
    """Problems of an evidence database, most telling first, each ``(kind, seq)``:

    * ``("missing", seq)`` — the lowest arrival number, below the highest recorded one, that has no
      row: a lost or deleted row (``unwritten``: numbers a running gateway has not committed yet —
      in flight or deferred — are not gaps; in a log shared by several processes, the numbers its live
      processes have not written yet are not gaps either);
    * ``("tampered", seq)`` — the first row, in chain order, that is not as recorded: an edited row,
      or the row that follows deleted ones.

    A slice of a shared gateway's chain (``evidence_slice``) starts at its first position after the head it
    states, and its arrival numbers are other sessions' too, so only its links are checked.
    """
    from .evidence_slice import slice_of

    conn = open_reader(db)
    try:
        problems = []
        part = slice_of(conn) if conn.engine == "sqlite" else None
        missing = _first_missing_seq(conn, set(unwritten) | open_arrivals(conn)) if part is None else None
        if missing is not None:
            problems.append(("missing", missing))
        expected, prev, withheld = (1, GENESIS, {}) if part is None else part
        names = list(COLUMNS)
        query = f"SELECT pos, seq, {', '.join(names)}, prev_hash, row_hash FROM exchanges ORDER BY pos"
        for row in conn.execute(query):
            pos, seq, values, stored_prev, stored_hash = row[0], row[1], row[2:-2], row[-2], row[-1]
            stored = dict(zip(names, values))
            stored.update(withheld.get(pos, {}))
            if pos != expected or stored_prev != prev or not _row_holds(prev, pos, seq, stored, stored_hash):
                problems.append(("tampered", seq))
                break
            prev, expected = stored_hash, pos + 1
        return problems
    finally:
        conn.close()


def _first_missing_seq(conn, unwritten: set[int]) -> int | None:
    expected = 1
    for (seq,) in conn.execute("SELECT seq FROM exchanges ORDER BY seq"):
        while expected < seq:
            if expected not in unwritten:
                return expected
            expected += 1
        expected = seq + 1
    return None
