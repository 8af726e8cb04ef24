"""The evidence bundle, ``<out>/evidence/``: what a third party needs to re-derive every verdict.

    evidence.sqlite3       the gateway's hash-chained log: every raw exchange, octet for octet
    cases/<case id>.json   per case: its record (verdict, findings) and its tape — the scenarios it set,
                           the exchanges it read (by seq), every driver Outcome, journal and data draw
    results.json           the run's results, as in <out>/results.json
    manifest.json          profile, seed, time scale, SUT and the chain head that the certificate states

``ecdi replay <out>`` (or ``<out>/evidence``) reads nothing else.
"""

from __future__ import annotations

import base64
from pathlib import Path

from .outputs import write_json

BUNDLE_FORMAT = "ecdi-evidence-bundle/1"
EVIDENCE_DB = "evidence.sqlite3"


def evidence_dir(out_dir: Path) -> Path:
    return Path(out_dir) / "evidence"


def _jsonable(value):
    """A driver may hand back values JSON cannot hold; write them readably rather than lose the case's
    evidence (replay then reports the case as diverged instead of the run crashing here)."""
    if isinstance(value, (bytes, bytearray)):
        return {"base64": base64.b64encode(bytes(value)).decode("ascii")}
    return repr(value)


def _dump(path: Path, data) -> None:
    write_json(path, data, indent=1, default=_jsonable)


def case_file(bundle: Path, case_id: str) -> Path:
    return bundle / "cases" / f"{case_id}.json"


def write_case_bundle(out_dir: Path, record, ctx) -> None:
    """The finished case's record and tape (called by the plugin when the verdict is final)."""
    _dump(case_file(evidence_dir(out_dir), record.case_id),
          {"case": record.as_dict(), "tape": ctx.tape.events})


def write_run_bundle(out_dir: Path, results: dict, head: dict | None, *, statement: dict | None = None) -> None:
    bundle = evidence_dir(out_dir)
    _dump(bundle / "results.json", results)
    _dump(bundle / "manifest.json", {
        "format": BUNDLE_FORMAT,
        "profile": results.get("profile"), "seed": results.get("seed"), "time_scale": results.get("time_scale"),
        "sut": results.get("sut"), "statement": statement, "harness": results.get("harness"), "evidence": head,
        "cases": [c["id"] for c in results.get("cases", [])],
    })
