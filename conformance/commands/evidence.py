"""``ecdi evidence verify DB``: check a gateway evidence log's hash chain (SEC-07); ``ecdi evidence export
URL FILE``: copy a PostgreSQL evidence log (a shared gateway's) into an SQLite file, which verifies alike.

DB is an evidence file, or the ``postgresql://`` URL of a shared gateway's database. Exit 0 when every row is as recorded and arrival numbers (``seq``) run without a gap; 1 naming the
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
    verify.add_argument("db", help="the evidence SQLite file (evidence.sqlite3 of a run) or a postgresql:// URL")
    verify.set_defaults(func=_verify)
    export = actions.add_parser("export", help="copy a shared gateway's evidence (a postgresql:// URL) into a "
                                               "new SQLite file, rows and hashes as recorded")
    export.add_argument("url", help="the postgresql:// URL the gateway processes were given (--database)")
    export.add_argument("file", help="the SQLite file to create (must not exist)")
    export.set_defaults(func=_export)


def _verify(args) -> int:
    from mock_server.database import StorageUnavailable, describe, is_url
    from mock_server.evidence import chain_head, check_chain
    from mock_server.evidence_slice import describe as describe_slice

    db = args.db if is_url(args.db) else Path(args.db)
    if not is_url(db) and not db.is_file():
        print(f"ecdi: evidence log {db} does not exist", file=sys.stderr)
        return 2
    try:
        problems = check_chain(db)
        rows, head = chain_head(db)
    except StorageUnavailable as exc:
        print(f"ecdi: {exc}", file=sys.stderr)
        return 2
    except Exception as exc:                        # noqa: BLE001 - sqlite3 or psycopg: not our format
        if not isinstance(exc, sqlite3.DatabaseError) and type(exc).__module__.split(".")[0] != "psycopg":
            raise
        print(f"ecdi: {describe(db)} is not a gateway evidence log ({str(exc).strip().splitlines()[0]})",
              file=sys.stderr)
        return 2
    part = None if is_url(db) else describe_slice(db)
    db = describe(db)
    for kind, seq in problems:
        print(f"MISSING: {db}: no row for arrival seq={seq} (a lost or deleted row)" if kind == "missing" else
              f"TAMPERED: {db}: row seq={seq} is not as recorded (edited, or rows before it were deleted)")
    if problems:
        return 1
    print(f"OK: {db}: {rows} rows, hash chain intact, " + (f"{part}" if part else "no gap in arrival numbers")
          + f", head {head}")
    return 0


def _export(args) -> int:
    from mock_server.database import StorageUnavailable, is_url
    from mock_server.evidence import export_chain

    target = Path(args.file)
    if not is_url(args.url):
        print(f"ecdi: {args.url} is not a postgresql:// URL", file=sys.stderr)
        return 2
    if target.exists():
        print(f"ecdi: {target} exists; the export goes into a new file", file=sys.stderr)
        return 2
    try:
        count = export_chain(args.url, target)
    except (StorageUnavailable, OSError) as exc:
        print(f"ecdi: {exc}", file=sys.stderr)
        return 2
    print(f"exported {count} rows to {target}   (check: ecdi evidence verify {target})")
    return 0
