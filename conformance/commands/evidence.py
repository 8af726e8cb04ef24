"""``ecdi evidence verify DB``: check a gateway evidence log's hash chain (SEC-07).

Exit 0 when every row is as recorded and arrival numbers (``seq``) run without a gap; 1 naming the
first missing arrival number (a lost or deleted row) and the first row that is not as recorded
(edited, or following deleted rows); 2 when DB is not a readable evidence log.
"""

from __future__ import annotations

import sqlite3
import sys
from pathlib import Path


def register(sub) -> None:
    evidence = sub.add_parser("evidence", help="work with a mock gateway's evidence log")
    actions = evidence.add_subparsers(dest="evidence_command", required=True)
    verify = actions.add_parser("verify", help="check the hash chain and arrival numbers; name the first "
                                               "missing or tampered row")
    verify.add_argument("db", help="the evidence SQLite file (evidence.sqlite3 of a run)")
    verify.set_defaults(func=_verify)


def _verify(args) -> int:
    from mock_server.evidence import chain_head, check_chain
    from mock_server.evidence_slice import describe as describe_slice

    db = Path(args.db)
    if not db.is_file():
        print(f"ecdi: evidence log {db} does not exist", file=sys.stderr)
        return 2
    try:
        problems = check_chain(db)
        rows, head = chain_head(db)
    except sqlite3.DatabaseError as exc:
        print(f"ecdi: {db} is not a gateway evidence log ({exc})", file=sys.stderr)
        return 2
    for kind, seq in problems:
        print(f"MISSING: {db}: no row for arrival seq={seq} (a lost or deleted row)" if kind == "missing" else
              f"TAMPERED: {db}: row seq={seq} is not as recorded (edited, or rows before it were deleted)")
    if problems:
        return 1
    part = describe_slice(db)
    print(f"OK: {db}: {rows} rows, hash chain intact, " + (f"{part}" if part else "no gap in arrival numbers")
          + f", head {head}")
    return 0
