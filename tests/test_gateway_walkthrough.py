"""The 1.0 → 1.1 regression walk-through (issue 16 item 5, docs/gateway-certification.md): the mock gateway
certified on ecdi-1.0, then "the 1.0 gateway reconfigured for 1.1 with one change forgotten" (the
``otp-valid-120s`` defect: T_otp still 120 s) certified on ecdi-1.1; ``ecdi diff`` names exactly the
requirement whose verdict changed, PAY-04, and the Annex A item behind it (#1, T_otp)."""

from __future__ import annotations

import re

import pytest

from conformance.gateway_mutants import GatewayProcess, run_against

from conftest import ecdi_process, run_budget

SCALE = 0.05
VERDICTS = {"PASS", "FAIL", "INCONCLUSIVE", "NOT-APPLICABLE", "ERROR"}
CASES = ["cgw-payment.otp-validity", "cgw-payment.order-and-otp", "cgw-payment.maker-checker"]


def certify(pki_dir, folder, profile: str, defect: str | None) -> dict:
    with GatewayProcess(folder / "gateway", pki_dir, profile=profile, time_scale=SCALE, defect=defect) as gw:
        results = run_against(gw.statement, folder / "run", CASES, profile=profile, time_scale=SCALE)
    assert isinstance(results, dict), results
    return results


def verdict_changes(diff_output: str) -> dict[str, list[str]]:
    """Requirement rows of ``ecdi diff`` whose verdicts differ between the runs, with their causes (rows that
    differ only because a profile adds or withdraws the requirement are profile changes, not verdicts)."""
    rows, current = {}, None
    for line in diff_output.splitlines():
        row = re.match(r"  ([A-Z]{3}-[0-9]{2}) +(.*)$", line)
        if row:
            verdicts = [cell.split(" (")[0].strip() for cell in row.group(2).split(" | ")]
            judged = all(v in VERDICTS for v in verdicts)         # not "not tested" / "not in profile"
            current = row.group(1) if judged and len(set(verdicts)) > 1 else None
            if current:
                rows[current] = []
        elif current and line.strip().startswith("←"):
            rows[current].append(line.strip())
    return rows


@pytest.mark.long
def test_a_forgotten_1_1_change_is_found_and_explained(pki_dir, tmp_path):
    on_10 = certify(pki_dir, tmp_path / "cgw-1.0", "ecdi-1.0", None)       # a subset: INCOMPLETE, all PASS
    assert {c["id"]: c["verdict"] for c in on_10["cases"]} == dict.fromkeys(CASES, "PASS"), on_10["cases"]
    on_11 = certify(pki_dir, tmp_path / "cgw-1.1", "ecdi-1.1", "otp-valid-120s")
    assert {c["id"]: c["verdict"] for c in on_11["cases"]}["cgw-payment.otp-validity"] == "FAIL"
    proc = ecdi_process("diff", tmp_path / "cgw-1.0" / "run", tmp_path / "cgw-1.1" / "run", "--html",
                        tmp_path / "diff.html", timeout=run_budget())
    assert proc.returncode == 1, proc.stdout + proc.stderr
    changes = verdict_changes(proc.stdout)
    assert list(changes) == ["PAY-04"], proc.stdout
    assert any("Annex A #1" in cause and "T_otp" in cause for cause in changes["PAY-04"]), proc.stdout
