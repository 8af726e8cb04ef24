"""Gateway defects against the CGW cases: every CGW MUST a case covers has a defect, each defect names an
existing CGW case, and ``ecdi mutants --party CGW --score`` counts a defect caught only when its case FAILs
on a requirement it breaks, the correct gateway passing the same cases. The score runs a fast subset here
(``--only``); the whole score is ``ecdi mutants --party CGW --score`` (docs/gateway-certification.md)."""

from __future__ import annotations

import subprocess

import pytest

from conformance.catalogue import all_cases
from conformance.commands.mutants import judge
from conformance.profile import load_profile
from mock_server.defects import DEFECTS

from conftest import SELFTEST_SCALE, ecdi_process, run_budget

FAST_SUBSET = ("unsigned-replies", "http-401-bad-password")


def ecdi(*args: str, timeout: int = 60) -> subprocess.CompletedProcess:
    return ecdi_process(*args, timeout=timeout)


def cgw_cases() -> dict:
    return {c.id: c for c in all_cases() if c.party == "CGW"}


def test_every_defect_names_an_existing_cgw_case_citing_a_requirement_it_breaks():
    cases = cgw_cases()
    for d in DEFECTS.values():
        assert d.caught_by in cases, f"{d.name}: no CGW case {d.caught_by}"
        assert set(d.breaks) & set(cases[d.caught_by].requirements), \
            f"{d.name}: {d.caught_by} cites none of {', '.join(d.breaks)}"


@pytest.mark.parametrize("profile_id", ["ecdi-1.0", "ecdi-1.1"])
def test_every_cgw_must_covered_by_a_case_has_a_defect(profile_id):
    profile = load_profile(profile_id)
    covered = {r for c in cgw_cases().values() for r in c.requirements
               if r in profile.requirements and profile.requirements[r].level_for("CGW") == "MUST"}
    broken = {r for d in DEFECTS.values() for r in d.breaks}
    assert sorted(covered - broken) == []


def test_caught_only_by_a_fail_of_its_case_on_a_requirement_it_breaks():
    defect = DEFECTS["http-401-bad-password"]

    def results(verdict, *failed_on, case_id=defect.caught_by):
        findings = [{"verdict": "FAIL", "requirement": r} for r in failed_on]
        return {"cases": [{"id": case_id, "verdict": verdict, "reason": "r", "findings": findings}]}

    assert judge(defect, results("FAIL", "TRN-06")) == (True, "FAIL on TRN-06")
    assert not judge(defect, results("FAIL", "TRN-12"))[0]
    assert not judge(defect, results("INCONCLUSIVE"))[0]
    assert not judge(defect, results("FAIL", "TRN-06", case_id="cgw-other.case"))[0]


def test_listing_and_usage_errors():
    listed = ecdi("mutants", "--party", "CGW")
    assert listed.returncode == 0
    assert all(f"{d.name} " in listed.stdout and d.caught_by in listed.stdout for d in DEFECTS.values())
    bogus = ecdi("mutants", "--party", "CGW", "--score", "--only", "bogus")
    assert bogus.returncode == 2 and "unknown gateway defect 'bogus'" in bogus.stderr
    gateway = ecdi("gateway", "--defect", "bogus", "--port", "0")
    assert gateway.returncode == 2 and gateway.stderr.startswith("ecdi: --defect: unknown gateway defect 'bogus'")


def test_score_of_a_fast_subset(tmp_path, pki_dir):
    only = [arg for name in FAST_SUBSET for arg in ("--only", name)]
    proc = ecdi("mutants", "--party", "CGW", "--score", *only, "--time-scale", SELFTEST_SCALE, "--jobs", "2",
                "--pki-dir", str(pki_dir), "--out", str(tmp_path), timeout=2 * run_budget())
    assert proc.returncode == 0, proc.stdout + proc.stderr
    for name in FAST_SUBSET:
        assert f"caught  {name} " in proc.stdout
    assert f"gateway defect score: {len(FAST_SUBSET)}/{len(FAST_SUBSET)} caught (100 %)" in proc.stdout
    assert "correct gateway: " in proc.stdout and "NOT-PASS" not in proc.stdout
