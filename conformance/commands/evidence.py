"""``ecdi evidence verify DB``: check a gateway evidence log's hash chain (SEC-07).

Exit 0 when every row is as recorded, 1 naming the first row that is not (edited, or following
deleted rows), 2 when DB is not a readable evidence log.
"""

from __future__ import annotations

import sqlite3
import sys
from pathlib import Path


def register(sub) -> None:
    evidence = sub.add_parser("evidence", help="work with a mock gateway's evidence log")
    actions = evidence.add_subparsers(dest="evidence_command", required=True)
    verify = actions.add_parser("verify", help="check the hash chain; name the first tampered row")
    verify.add_argument("db", help="the evidence SQLite file (evidence.sqlite3 of a run)")
    verify.set_defaults(func=_verify)


def _verify(args) -> int:
    from mock_server.evidence import chain_head, verify_chain

    db = Path(args.db)
    if not db.is_file():
        print(f"ecdi: evidence log {db} does not exist", file=sys.stderr)
        return 2
    try:
        ok, first_bad = verify_chain(db)
        rows, head = chain_head(db)
    except sqlite3.DatabaseError as exc:
        print(f"ecdi: {db} is not a gateway evidence log ({exc})", file=sys.stderr)
        return 2
    if not ok:
        print(f"TAMPERED: {db}: row seq={first_bad} is not as recorded (edited, or rows before it were deleted)")
        return 1
    print(f"OK: {db}: {rows} rows, hash chain intact, head {head}")
    return 0
