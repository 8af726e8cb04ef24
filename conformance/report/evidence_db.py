"""Reading the gateway's evidence database (``<out>/evidence/evidence.sqlite3``) as plain data.

The report layer never imports ``mock_server``: the database file is the interface. Here we only
*read* what the gateway wrote — the chain's head (the last row's ``row_hash`` in chain order) for
the certificate, and the rows of a case for replay. Checking the chain itself is the gateway's
``verify_chain`` (used by ``ecdi verify --evidence``), never re-implemented here.
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

_JSON_COLUMNS = ("request_headers", "response_headers", "reply_codes", "gateway_verdict")


class EvidenceUnreadable(Exception):
    """The evidence database is missing or not an ECDI evidence log; the message says which."""


def _connect(db: Path) -> sqlite3.Connection:
    if not Path(db).is_file():
        raise EvidenceUnreadable(f"no evidence database at {db}")
    try:
        conn = sqlite3.connect(f"file:{Path(db)}?mode=ro", uri=True)
        conn.execute("SELECT pos, seq, row_hash FROM exchanges LIMIT 1").fetchall()
        return conn
    except sqlite3.DatabaseError as exc:
        raise EvidenceUnreadable(f"{db} is not an ECDI evidence log ({exc})") from None


def settle(db: Path) -> None:
    """Fold the write-ahead log into the database file once the gateway has stopped.

    The gateway writes in WAL mode; until a read-write connection closes last, recent rows live in
    ``evidence.sqlite3-wal``, and a bundle copied without that file would lose them. A checkpoint
    changes no row, so the chain and its head are unaffected.
    """
    if Path(db).is_file():
        conn = sqlite3.connect(str(db))
        try:
            conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        except sqlite3.DatabaseError:
            pass  # not our format: chain_head will say so
        finally:
            conn.close()


def chain_head(db: Path) -> dict:
    """``{"head_hash", "rows"}``: the hash that commits to every row, and how many rows it covers.

    The row count is stated next to the head because removing the *last* rows leaves a shorter but
    valid chain; the certificate's head hash is what pins the whole log.
    """
    conn = _connect(db)
    try:
        last = conn.execute("SELECT row_hash FROM exchanges ORDER BY pos DESC LIMIT 1").fetchone()
        count = conn.execute("SELECT COUNT(*) FROM exchanges").fetchone()[0]
    finally:
        conn.close()
    return {"head_hash": last[0] if last else None, "rows": count}


def case_rows(db: Path, case_id: str | None) -> dict[int, dict]:
    """The exchanges recorded for ``case_id`` (None: every case) keyed by arrival number, JSON columns decoded."""
    conn = _connect(db)
    try:
        if case_id is None:
            cursor = conn.execute("SELECT * FROM exchanges ORDER BY seq")
        else:
            cursor = conn.execute("SELECT * FROM exchanges WHERE case_id = ? ORDER BY seq", (case_id,))
        names = [d[0] for d in cursor.description]
        out = {}
        for values in cursor:
            row = dict(zip(names, values))
            for name in _JSON_COLUMNS:
                if isinstance(row.get(name), str):
                    row[name] = json.loads(row[name])
            out[row["seq"]] = row
        return out
    finally:
        conn.close()
