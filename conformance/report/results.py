"""results.json and the certificate, written from the case records at the end of a session."""

from __future__ import annotations

import json
from collections import Counter
from datetime import datetime, timezone
from pathlib import Path

from ..verdict import CaseRecord, overall
from .certificate import write_certificate

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
        "cases": [r.as_dict() for r in records],
    }


def write_outputs(out_dir: Path, harness, records: list[CaseRecord], setup_error: str | None) -> dict:
    out_dir.mkdir(parents=True, exist_ok=True)
    results = build_results(harness, records, setup_error)
    (out_dir / "results.json").write_text(json.dumps(results, ensure_ascii=False, indent=2), encoding="utf-8")
    if "profile" in results and not setup_error:  # no certificate for a session that never ran
        write_certificate(out_dir, results)
    return results
