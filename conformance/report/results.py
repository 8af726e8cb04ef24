"""results.json, the evidence bundle and the certificate, written from the case records at session end."""

from __future__ import annotations

import json
from collections import Counter
from datetime import datetime, timezone
from pathlib import Path

from ..verdict import CaseRecord, overall
from .bundle import EVIDENCE_DB, evidence_dir, write_run_bundle
from .certificate import write_certificate
from .evidence_db import EvidenceUnreadable, chain_head, settle

RESULTS_FORMAT = "ecdi-results/1"


def build_results(harness, records: list[CaseRecord], setup_error: str | None) -> dict:
    facts = harness.describe() if harness is not None else {}
    verdicts = [r.verdict for r in records]
    return {
        "format": RESULTS_FORMAT,
        **facts,
        "finished_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "setup_error": setup_error,
        "overall": overall(verdicts),
        "summary": dict(Counter(v.value for v in verdicts)),
        "setup_failures": setup_failures(records),
        "cases": [r.as_dict() for r in records],
    }


def setup_failures(records: list[CaseRecord]) -> dict[str, list[str]]:
    """The cases left INCONCLUSIVE because their set-up failed, grouped by cause (e.g. "271 G0007")."""
    out: dict[str, list[str]] = {}
    for r in records:
        if r.setup_failure and r.verdict is not None and r.verdict.value == "INCONCLUSIVE":
            out.setdefault(r.setup_failure, []).append(r.case_id)
    return out


def _head(out_dir: Path) -> dict | None:
    db = evidence_dir(out_dir) / EVIDENCE_DB
    try:
        settle(db)
        return chain_head(db)
    except EvidenceUnreadable:
        return None


def write_outputs(out_dir: Path, harness, records: list[CaseRecord], setup_error: str | None, *,
                  issuer=None, interrupted: bool = False, claims: dict | None = None) -> dict:
    from ..catalogue import case_ids

    out_dir.mkdir(parents=True, exist_ok=True)
    results = build_results(harness, records, setup_error)
    head = _head(out_dir)
    results["evidence"] = head
    results["claims"] = claims
    (out_dir / "results.json").write_text(json.dumps(results, ensure_ascii=False, indent=2), encoding="utf-8")
    if "profile" in results and not setup_error:  # no certificate for a session that never ran
        write_run_bundle(out_dir, results, head, statement=harness.sut.statement)
        write_certificate(out_dir, results, issuer=issuer, evidence=head, interrupted=interrupted,
                          catalogue=case_ids())
    return results
