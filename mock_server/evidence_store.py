"""Where the evidence log's rows go: the SQL of ``evidence.EvidenceLog`` for each engine (database.py).

The log itself (group commit, deferred rows, redaction, hashing) is engine-blind; an engine here gives
it arrival numbers, appends rows to the one hash chain, and reads them back.

* ``SqliteEvidence``: one process owns the file; arrival numbers are counted in memory from the
  highest recorded one, and the chain head is the last row (the file's write lock serialises writers).
* ``PostgresEvidence``: any number of gateway processes share the chain. The chain head is a row
  (``chain_head``) that each writing transaction locks ``FOR UPDATE`` — never a process-local lock —
  so rows enter the chain one transaction at a time, in one order, committed before any reply leaves.
  Arrival numbers come from a counter row and are noted in ``arrivals`` with the process that took
  them until their row is written: a listing or a verification excuses the open ones of live
  processes, and those of a process that died (kill -9: its advisory lock is gone and its heartbeat
  stale) are closed by a survivor with a row saying no reply was sent, so numbers stay gapless.
  When the database cannot be reached an arrival gets a provisional (negative) number, replaced by
  the next real one when its row is written.
"""

from __future__ import annotations

import logging
import os
import secrets
import socket
import threading
import time
from pathlib import Path
from typing import Callable

from .database import (
    AlreadyRecorded,
    Database,
    PostgresDatabase,
    SqliteDatabase,
    StorageUnavailable,
    is_url,
)

GENESIS = "0" * 64
log = logging.getLogger("mock_server")
HEARTBEAT_S = 1.0
STREAMED_OCTETS = 1 << 20     # octets this large are written into their SQLite row without the interpreter held
STALE_S = 5.0                 # a process silent this long, without its lock, has died (not restarting)
RetryableErrors = (StorageUnavailable, AlreadyRecorded)

HashRow = Callable[[str, int, int, dict], str]
_DB_NOW = "EXTRACT(EPOCH FROM clock_timestamp())::DOUBLE PRECISION"


def open_engine(target: Path | str, columns: list[str], *, busy_timeout: float):
    return PostgresEvidence(str(target), columns, busy_timeout) if is_url(target) \
        else SqliteEvidence(Path(target), columns, busy_timeout)


def open_reader(target: Path | str) -> Database:
    """A read-only view of an evidence log (a file that must exist, or a URL)."""
    if is_url(target):
        return PostgresDatabase(str(target), application_name="ecdi-evidence-reader")
    return SqliteDatabase(Path(target), readonly=True)


class _Engine:
    def __init__(self, columns: list[str]):
        self._columns = columns
        names = ", ".join(columns)
        self._insert_into = f"INSERT INTO exchanges (pos, seq, {names}, prev_hash, row_hash) VALUES "
        self._insert = self._insert_with(["?"] * len(columns))
        self._select = f"SELECT seq, {names} FROM exchanges"

    def _insert_with(self, marks: list[str]) -> str:
        """The INSERT of one row, the columns' values bound through ``marks`` (one per column)."""
        return self._insert_into + f"(?, ?, {', '.join(marks)}, ?, ?)"

    def _chain(self, db: Database, rows: list[tuple[int, dict]], pos: int, prev: str, hash_row: HashRow):
        for seq, stored in rows:
            digest = hash_row(prev, pos, seq, stored)
            db.execute(self._insert, (pos, seq, *(stored[name] for name in self._columns), prev, digest))
            pos, prev = pos + 1, digest
        return pos - 1, prev

    @property
    def last_seq(self) -> int:
        """The highest arrival number written (an engine counting in memory knows the allocated one too)."""
        return self.reader.execute("SELECT COALESCE(MAX(seq), 0) FROM exchanges").fetchone()[0]

    def rows(self, case_id: str | None) -> list[tuple]:
        sql, args = self._select, ()
        if case_id is not None:
            sql, args = sql + " WHERE case_id = ?", (case_id,)
        return self.reader.execute(sql + " ORDER BY seq", args).fetchall()


class SqliteEvidence(_Engine):
    def __init__(self, path: Path, columns: list[str], busy_timeout: float):
        super().__init__(columns)
        self.path = path
        self.db = db = SqliteDatabase(path, "FULL", timeout=busy_timeout)
        db.migrate("evidence")
        # Reads never wait for the writer (WAL), so the control API stays responsive while a commit waits.
        self.reader = SqliteDatabase(path, timeout=busy_timeout)
        self._last_seq = db.execute("SELECT COALESCE(MAX(seq), 0) FROM exchanges").fetchone()[0]
        self._lock = threading.Lock()

    def next_seq(self) -> int | None:
        with self._lock:
            self._last_seq += 1
            return self._last_seq

    @property
    def last_seq(self) -> int:
        return self._last_seq

    def _chain(self, db: Database, rows: list[tuple[int, dict]], pos: int, prev: str, hash_row: HashRow):
        """As any engine's, but octets of ``STREAMED_OCTETS`` or more go into their row through ``blobopen``:
        SQLite copies them without holding the interpreter (binding them copied 14 MB holding it, stalling
        every other request, issue 13)."""
        connection = self.db.connection
        for seq, stored in rows:
            digest = hash_row(prev, pos, seq, stored)
            large = {name for name in self._columns
                     if isinstance(stored[name], (bytes, bytearray)) and len(stored[name]) >= STREAMED_OCTETS}
            db.execute(self._insert_with(["zeroblob(?)" if name in large else "?" for name in self._columns]),
                       (pos, seq, *(len(stored[n]) if n in large else stored[n] for n in self._columns), prev, digest))
            for name in large:
                with connection.blobopen("exchanges", name, pos) as blob:
                    blob.write(stored[name])
            pos, prev = pos + 1, digest
        return pos - 1, prev

    def append(self, deferred: list[tuple[int, dict]], rows: list[tuple[int, dict]], hash_row: HashRow) -> None:
        with self.db.transaction() as db:
            written = "SELECT 1 FROM exchanges WHERE seq = ?"     # a deferred row never doubles one
            todo = [d for d in deferred if not db.execute(written, (d[0],)).fetchone()] + rows
            last = db.execute("SELECT pos, row_hash FROM exchanges ORDER BY pos DESC LIMIT 1").fetchone()
            self._chain(db, todo, *((last[0] + 1, last[1]) if last else (1, GENESIS)), hash_row)

    def close(self) -> None:
        self.db.close()
        self.reader.close()


class PostgresEvidence(_Engine):
    def __init__(self, url: str, columns: list[str], busy_timeout: float):
        super().__init__(columns)
        self.path = url
        self._busy_timeout = busy_timeout
        # the record that counts: synchronous; waits for the chain head at most busy_timeout (then 503, TRN-08)
        self.db = PostgresDatabase(url, lock_timeout=busy_timeout)
        self.db.migrate("evidence")
        self.reader = PostgresDatabase(url, application_name="ecdi-evidence-reader")
        # Numbering is on the event loop: not waiting for the disk. A number lost in a database crash is given
        # again only if no row holds it (the counter never goes below the highest row's seq).
        self._arrivals = PostgresDatabase(url, application_name="ecdi-arrivals", synchronous=False)
        self._liveness = PostgresDatabase(url, application_name="ecdi-liveness")
        self.process_id = f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(4)}"
        self._lock_key = int.from_bytes(secrets.token_bytes(7), "big")
        self._provisional = 0
        self._unreachable_until = 0.0
        self._seq_lock = threading.Lock()
        self._closed = threading.Event()
        self.stored_row: Callable[[dict], dict] | None = None     # set by EvidenceLog (for rows it closes)
        self.hash_row: HashRow | None = None
        self._register()
        self._heart = threading.Thread(target=self._beat, name="ecdi-evidence-heartbeat", daemon=True)
        self._heart.start()

    # -- processes ------------------------------------------------------------------------------
    def _register(self) -> None:
        """Hold this process's advisory lock and note it (again after the database restarted)."""
        self._liveness.execute("SELECT pg_advisory_lock(?)", (self._lock_key,))
        self._liveness.execute(
            f"INSERT INTO gateway_processes VALUES (?, ?, ?, ?, {_DB_NOW}, {_DB_NOW}) ON CONFLICT (process_id)"
            " DO UPDATE SET heartbeat_at = excluded.heartbeat_at",
            (self.process_id, self._lock_key, socket.gethostname(), os.getpid()))
        # After (re)connecting, others may not have re-taken their locks yet (a database restart drops them all):
        # judge no process dead before they have had the time to
        self._registered_at = time.monotonic()

    def _beat(self) -> None:
        registered = True
        while not self._closed.wait(HEARTBEAT_S):
            try:
                if not registered or self._liveness._conn is None:
                    self._register()
                    registered = True
                else:
                    self._liveness.execute(f"UPDATE gateway_processes SET heartbeat_at = {_DB_NOW} WHERE process_id = ?",
                                           (self.process_id,))
            except StorageUnavailable:
                registered = False
                continue
            try:                          # a reap that waited too long for the chain head is tried at the next beat
                self.reap()
            except StorageUnavailable as exc:
                log.warning("closing the arrivals of ended processes waits: %s", exc)
            except Exception:                                  # noqa: BLE001 - the heartbeat must go on
                log.exception("evidence heartbeat")

    def reap(self) -> int:
        """Close the open arrivals of processes that died: each gets a row saying no reply was sent."""
        if time.monotonic() - self._registered_at < STALE_S:
            return 0
        live = live_processes(self._liveness, self.process_id)
        orphans = [(seq, process, at) for seq, process, at in
                   self._liveness.execute("SELECT seq, process_id, arrived_at FROM arrivals ORDER BY seq").fetchall()
                   if process not in live]
        if not orphans:
            self._forget_dead(live)
            return 0
        rows = [(seq, self.stored_row({
            "received_at": at, "gateway_verdict": {
                "no_reply": f"the gateway process {process} ended before answering", "delivered": False,
                "closed_by": self.process_id}})) for seq, process, at in orphans]
        self.append(rows, [], self.hash_row)
        log.warning("closed %d arrivals of gateway processes that ended: %s", len(rows), [r[0] for r in rows])
        self._forget_dead(live)
        return len(rows)

    def _forget_dead(self, live: set[str]) -> None:
        for (process_id,) in self._liveness.execute("SELECT process_id FROM gateway_processes").fetchall():
            if process_id not in live:
                self._liveness.execute("DELETE FROM gateway_processes WHERE process_id = ?"
                                       " AND NOT EXISTS (SELECT 1 FROM arrivals WHERE arrivals.process_id = ?)",
                                       (process_id, process_id))

    # -- arrivals -------------------------------------------------------------------------------
    def next_seq(self) -> int:
        """The next arrival number, noted as open for this process; a provisional negative number while the
        database cannot be reached (its row gets a real one when it is written)."""
        if time.monotonic() >= self._unreachable_until:
            try:
                return self._arrivals.execute(
                    "WITH n AS (UPDATE arrival_counter SET last_seq = GREATEST(last_seq,"
                    " (SELECT COALESCE(MAX(seq), 0) FROM exchanges)) + 1 RETURNING last_seq)"
                    " INSERT INTO arrivals SELECT last_seq, ?, ? FROM n RETURNING seq",
                    (self.process_id, time.time())).fetchone()[0]
            except StorageUnavailable:
                self._unreachable_until = time.monotonic() + 0.5   # no reconnect attempt per request
        with self._seq_lock:
            self._provisional -= 1
            return self._provisional

    # -- rows -----------------------------------------------------------------------------------
    def append(self, deferred: list[tuple[int, dict]], rows: list[tuple[int, dict]], hash_row: HashRow) -> None:
        with self.db.transaction() as db:
            pos, prev = db.execute("SELECT pos, row_hash FROM chain_head" + db.for_update).fetchone()
            written = "SELECT 1 FROM exchanges WHERE seq = ?"     # checked under the head's lock
            todo = [d for d in deferred if d[0] < 0 or not db.execute(written, (d[0],)).fetchone()] + rows
            numbered = []
            for seq, stored in todo:
                if seq < 0:          # taken while the database was away: its number is given now
                    seq = db.execute("UPDATE arrival_counter SET last_seq = last_seq + 1 RETURNING last_seq").fetchone()[0]
                numbered.append((seq, stored))
            pos, prev = self._chain(db, numbered, pos + 1, prev, hash_row)
            db.execute("WITH closed AS (DELETE FROM arrivals WHERE seq = ANY(?))"
                       " UPDATE chain_head SET pos = ?, row_hash = ?", ([seq for seq, _ in numbered], pos, prev))

    def close(self) -> None:
        self._closed.set()
        for db in (self.db, self.reader, self._arrivals, self._liveness):
            try:
                if db is self._liveness:
                    db.execute("DELETE FROM gateway_processes WHERE process_id = ?"
                               " AND NOT EXISTS (SELECT 1 FROM arrivals WHERE process_id = ?)",
                               (self.process_id, self.process_id))
            except StorageUnavailable:
                pass
            db.close()


def live_processes(db: Database, own: str | None = None) -> set[str]:
    """Gateway processes sharing the database that live: ``own``, those heard from within ``STALE_S``
    (restarting their connection), and those holding their advisory lock."""
    live = set()
    for process_id, key, silent in db.execute(            # times on the database's clock: one for all machines
            f"SELECT process_id, lock_key, {_DB_NOW} - heartbeat_at FROM gateway_processes").fetchall():
        if process_id == own or silent < STALE_S:
            live.add(process_id)
            continue
        held = not db.execute("SELECT pg_try_advisory_lock(?)", (key,)).fetchone()[0]
        if not held:
            db.execute("SELECT pg_advisory_unlock(?)", (key,))
        else:
            live.add(process_id)
    return live


def open_arrivals(db: Database) -> set[int]:
    """Arrival numbers live gateway processes took and have not written yet (in flight, or deferred); none
    for a file (its one process is the caller, which knows its own)."""
    if db.engine != "postgresql":
        return set()
    live = live_processes(db)
    return {seq for seq, process in db.execute("SELECT seq, process_id FROM arrivals").fetchall() if process in live}
