"""results.json, the evidence bundle and the certificate, written from the case records at session end.

The overall verdict of a run (exit codes in README):

    CONFORMANT       every case of the catalogue that applies to the product's claims ran, and every
                     applicable one passed (NOT-APPLICABLE cases count as run: CAP-02)
    NOT CONFORMANT   some case that ran did not pass (a failure is one whether or not the run was partial)
    INCOMPLETE       every case that ran passed, but not every applicable case ran (``--case``):
                     no statement of conformance (``scope`` says how many ran of how many)
    INTERRUPTED      the session was stopped before every selected case finished

A requirement's status is read from the findings recorded against it (``requirement_status``), not
from the verdict of the case that cites it: a case failing PAY-08 says nothing against PAY-01.
"""

from __future__ import annotations

from collections import Counter
from datetime import datetime, timezone
from pathlib import Path

from ..verdict import CaseRecord, Verdict, overall
from .bundle import EVIDENCE_DB, evidence_dir, write_run_bundle
from .certificate import write_certificate
from .evidence_db import EvidenceUnreadable, chain_head, settle
from .outputs import end, publish, staged, stopped_early, write_json

RESULTS_FORMAT = "ecdi-results/1"
CONFORMANT, NOT_CONFORMANT, INCOMPLETE, INTERRUPTED = "CONFORMANT", "NOT CONFORMANT", "INCOMPLETE", "INTERRUPTED"
NO_OWN_FINDING = "no finding of its own: the case's verdict"


def applicable_cases(capabilities, party: str = "DTS") -> set[str]:
    """The catalogue's cases of ``party`` that apply to a product claiming ``capabilities`` (Table 13-1)."""
    from ..catalogue import all_cases

    claimed = set(capabilities or [])
    return {s.id for s in all_cases() if s.party == party and (not s.capability or s.capability in claimed)}


def run_scope(results: dict) -> dict:
    """How many of the applicable catalogue cases of the party under test ran, and which did not."""
    applicable = applicable_cases((results.get("sut") or {}).get("capabilities"), results.get("party", "DTS"))
    ran = {c["id"] for c in results["cases"]}
    return {"executed": len(ran), "applicable": len(applicable | ran),
            "missing": sorted(applicable - ran)}


def run_overall(verdicts: list[Verdict], scope: dict, *, interrupted: bool) -> str:
    if interrupted:
        return INTERRUPTED
    if any(v not in (Verdict.PASS, Verdict.NOT_APPLICABLE) for v in verdicts):
        return NOT_CONFORMANT
    if scope["missing"]:
        return INCOMPLETE
    return overall(verdicts)


def case_requirement_status(case: dict) -> dict[str, tuple[Verdict, str | None]]:
    """Per requirement of one case: the worst non-advisory finding naming it, or naming no requirement
    (a case-level finding — driver error, not applicable — bears on all); else the case's verdict."""
    findings = [f for f in case.get("findings", []) if not f.get("advisory")]
    general = [Verdict(f["verdict"]) for f in findings if not f.get("requirement")]
    rids = list(dict.fromkeys([*case["requirements"], *(f["requirement"] for f in findings if f.get("requirement"))]))
    out = {}
    for rid in rids:
        own = general + [Verdict(f["verdict"]) for f in findings if f.get("requirement") == rid]
        if own:
            worst = own[0]
            for v in own[1:]:
                worst = worst.worse(v)
            out[rid] = (worst, None)
        elif case.get("verdict"):
            out[rid] = (Verdict(case["verdict"]), NO_OWN_FINDING)
    return out


def requirement_status(cases: list[dict]) -> dict[str, dict]:
    """``{rid: {"status", "cases", "notes"}}``: the worst status over the cases that bear on ``rid``."""
    out: dict[str, dict] = {}
    for case in cases:
        for rid, (verdict, note) in case_requirement_status(case).items():
            entry = out.setdefault(rid, {"status": verdict, "cases": [], "notes": []})
            entry["status"] = entry["status"].worse(verdict)
            entry["cases"].append(case["id"])
            if note and verdict is not Verdict.PASS:
                entry["notes"].append(f"{case['id']}: {note}")
    return {rid: {**e, "status": e["status"].value} for rid, e in sorted(out.items())}


def build_results(harness, records: list[CaseRecord], setup_error: str | None, *, interrupted: bool = False) -> dict:
    facts = harness.describe() if harness is not None else {}
    verdicts = [r.verdict for r in records]
    results = {
        "format": RESULTS_FORMAT,
        **facts,
        "finished_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "setup_error": setup_error,
        "summary": dict(Counter(v.value for v in verdicts)),
        "setup_failures": setup_failures(records),
        "cases": [r.as_dict() for r in records],
    }
    results["scope"] = run_scope(results)
    results["overall"] = run_overall(verdicts, results["scope"], interrupted=interrupted)
    results["requirements"] = requirement_status(results["cases"])
    return results


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
                  interrupted: bool = False, claims: dict | None = None) -> dict:
    """The evidence bundle and results.json — staged (``outputs.staged``) when ``ecdi run`` prepared the
    folder, so that it appears only with the report beside it (``finish_outputs``)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    results = build_results(harness, records, setup_error, interrupted=interrupted)
    head = _head(out_dir)
    results["evidence"] = head
    results["claims"] = claims
    if certifiable(results):
        write_run_bundle(out_dir, results, head, statement=harness.sut.statement)
    staging = staged(out_dir, "results.json")
    write_json(staging if staging.parent.is_dir() else out_dir / "results.json", results, indent=2)
    return results


def certifiable(results: dict) -> bool:
    return "profile" in results and not results.get("setup_error")  # no certificate for a session that never ran


def finish_outputs(out_dir: Path, results: dict | None, *, issuer=None, interrupted: bool = False) -> None:
    """Once pytest-html and JUnit have written theirs: the staged files renamed into place (results.json
    last), then the certificate, then the RUNNING marker removed."""
    from ..catalogue import case_ids

    publish(out_dir, last="results.json")
    if results is None:
        stopped_early(out_dir, "the session stopped before any case was recorded" +
                      (" (interrupted)" if interrupted else ""))
    elif certifiable(results):
        write_certificate(out_dir, results, issuer=issuer, evidence=results.get("evidence"),
                          interrupted=interrupted, catalogue=case_ids(results.get("party", "DTS")))
    end(out_dir)
