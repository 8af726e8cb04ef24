"""``ecdi diff RUN_A RUN_B [RUN ...]``: verdict changes requirement by requirement, with their causes.

Each RUN is a run's output folder (or its results.json). Prints the changes and writes an HTML page
(``--html``; default ``diff.html`` in the first run's folder, beside its report) with a summary table of
every run and the changes. Exit 0 when nothing changed, 1 when something did, 2 when a run cannot be read.
"""

from __future__ import annotations

import sys
from pathlib import Path


def register(sub) -> None:
    p = sub.add_parser("diff", help="compare runs requirement by requirement (regression across profiles/versions)")
    p.add_argument("runs", nargs="+", metavar="RUN", help="run output folders (two or more)")
    p.add_argument("--html", help="where to write the HTML page (default: diff.html in the first run's folder)")
    p.set_defaults(func=_diff)


def _diff(args) -> int:
    from ..report.diff import DiffError, compare, load_run, text, write_html

    if len(args.runs) < 2:
        print("ecdi: diff needs at least two runs", file=sys.stderr)
        return 2
    try:
        comparison = compare([load_run(Path(r)) for r in args.runs])
    except DiffError as exc:
        print(f"ecdi: {exc}", file=sys.stderr)
        return 2
    print(text(comparison))
    first = Path(args.runs[0])
    target = Path(args.html) if args.html else (first if first.is_dir() else first.parent) / "diff.html"
    try:
        path = write_html(comparison, target)
    except OSError as exc:
        print(f"ecdi: cannot write {target}: {exc.strerror or exc}", file=sys.stderr)
        return 2
    print(f"html: {path}")
    changed = any(r.changed for r in comparison.requirements) or comparison.params
    return 1 if changed else 0
