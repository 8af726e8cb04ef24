"""A run's share of a shared gateway's evidence chain: the slice of the chain that holds its rows.

When several runs share one gateway (``ecdi run --shared-gateway``), the gateway keeps one hash chain
for all of them, and each run's bundle must verify without holding the other runs' exchanges. The
bundle holds the chain's *slice* from the run's first row to its last, every row with its ``pos``,
``prev_hash`` and ``row_hash``, plus the hash before the slice (``prev_hash`` of its first row): the
head the slice continues. Rows of the run's own sessions are whole; rows of other sessions in between
keep their columns but not their octets (request, message, response and reply bodies): a row's hash
binds an octet column through its sha256 and length only (``evidence.row_hash``), so the digests stand
in for the octets and the slice re-hashes link by link (docs/decisions.md, "Evidence of a run on a
shared gateway").

    chain_slice(first_pos, prev_hash, sessions)     one row: where the slice starts, whose rows are whole
    withheld(pos, name, sha256, length)             an octet column of another session's row

``check_chain`` reads these two tables: a database without them is a whole chain from the genesis.
"""

from __future__ import annotations

import base64
import hashlib
import json
import sqlite3
from dataclasses import dataclass
from pathlib import Path

from .database import SqliteDatabase
from .evidence import COLUMNS, GENESIS
from .evidence_store import open_reader

OCTETS = tuple(name for name, kind in COLUMNS.items() if kind == "BLOB")
_SLICE_DDL = """
CREATE TABLE IF NOT EXISTS chain_slice (first_pos INTEGER NOT NULL, prev_hash TEXT NOT NULL, sessions TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS withheld (pos INTEGER NOT NULL, name TEXT NOT NULL, sha256 TEXT NOT NULL,
                                     length INTEGER NOT NULL, PRIMARY KEY (pos, name));
"""


@dataclass(frozen=True)
class Withheld:
    """An octet column whose octets are not in the slice: what the row's hash binds of them."""

    sha256: str
    length: int


def export_slice(db: Path | str, sessions: set[str]) -> dict:
    """The slice of the chain in ``db`` from the first to the last row of ``sessions`` (JSON-ready):
    ``{first_pos, prev_hash, head_hash, rows: [{pos, seq, prev_hash, row_hash, <column>: stored value
    (octets in base64), withheld: {column: {sha256, length}}}]}``; no rows: ``first_pos`` None."""
    conn = open_reader(db)
    try:
        marks = ", ".join("?" for _ in sessions)
        session = ("json_extract(gateway_verdict, '$.session')" if conn.engine == "sqlite"
                   else "(gateway_verdict::jsonb ->> 'session')")
        first, last = conn.execute(
            f"SELECT MIN(pos), MAX(pos) FROM exchanges WHERE {session} IN ({marks})", tuple(sessions)).fetchone()
        if first is None:
            return {"first_pos": None, "prev_hash": None, "head_hash": None, "rows": []}
        names = list(COLUMNS)
        cursor = conn.execute(f"SELECT pos, seq, {', '.join(names)}, prev_hash, row_hash FROM exchanges "
                              "WHERE pos BETWEEN ? AND ? ORDER BY pos", (first, last))
        rows = [_exported(dict(zip(["pos", "seq", *names, "prev_hash", "row_hash"], values)), sessions)
                for values in cursor]
    finally:
        conn.close()
    return {"first_pos": first, "prev_hash": rows[0]["prev_hash"], "head_hash": rows[-1]["row_hash"], "rows": rows}


def _exported(row: dict, sessions: set[str]) -> dict:
    own = json.loads(row["gateway_verdict"] or "{}").get("session") in sessions
    withheld = {}
    for name in OCTETS:
        value = row[name]
        if value is None:
            continue
        if own:
            row[name] = base64.b64encode(bytes(value)).decode("ascii")
        else:
            withheld[name] = {"sha256": hashlib.sha256(value).hexdigest(), "length": len(value)}
            row[name] = None
    row["withheld"] = withheld
    return row


def write_slice(db: Path | str, exported: dict, sessions: set[str]) -> int:
    """Write an ``export_slice`` answer as an evidence database at ``db`` (a new file); returns its rows."""
    schema = SqliteDatabase(Path(db))
    schema.migrate("evidence")
    schema.close()
    conn = sqlite3.connect(str(db), isolation_level=None)
    try:
        conn.executescript(_SLICE_DDL)
        conn.execute("BEGIN")
        names = list(COLUMNS)
        if exported["first_pos"] is not None:
            conn.execute("INSERT INTO chain_slice VALUES (?, ?, ?)",
                         (exported["first_pos"], exported["prev_hash"], json.dumps(sorted(sessions))))
        for row in exported["rows"]:
            values = [base64.b64decode(row[n]) if n in OCTETS and row[n] is not None else row[n] for n in names]
            conn.execute(f"INSERT INTO exchanges (pos, seq, {', '.join(names)}, prev_hash, row_hash) "
                         f"VALUES (?, ?, {', '.join('?' for _ in names)}, ?, ?)",
                         (row["pos"], row["seq"], *values, row["prev_hash"], row["row_hash"]))
            for name, digest in row["withheld"].items():
                conn.execute("INSERT INTO withheld VALUES (?, ?, ?, ?)", (row["pos"], name, digest["sha256"],
                                                                         digest["length"]))
        conn.execute("COMMIT")
        return len(exported["rows"])
    finally:
        conn.close()


def slice_of(conn: sqlite3.Connection) -> tuple[int, str, dict[int, dict[str, Withheld]]] | None:
    """``(first_pos, prev_hash, {pos: {column: withheld octets}})`` of a slice database, None for a whole chain."""
    try:
        start = conn.execute("SELECT first_pos, prev_hash FROM chain_slice").fetchone()
    except sqlite3.OperationalError:       # no such table: a whole chain
        return None
    if start is None:
        return None
    withheld: dict[int, dict[str, Withheld]] = {}
    for pos, name, sha, length in conn.execute("SELECT pos, name, sha256, length FROM withheld"):
        withheld.setdefault(pos, {})[name] = Withheld(sha, length)
    return start[0], start[1], withheld


def describe(db: Path | str) -> str | None:
    """One line on a slice database (None for a whole chain), for ``ecdi evidence verify``."""
    conn = sqlite3.connect(f"file:{Path(db)}?mode=ro", uri=True)
    try:
        found = slice_of(conn)
        if found is None:
            return None
        first, prev, withheld = found
        last, count = conn.execute("SELECT MAX(pos), COUNT(*) FROM exchanges").fetchone()
        foreign = len(withheld)
    finally:
        conn.close()
    start = "the genesis" if prev == GENESIS else f"head {prev}"
    return (f"a slice of a shared gateway's chain: positions {first}-{last} after {start}; "
            f"{count - foreign} rows whole, {foreign} rows of other sessions with their octets withheld")
