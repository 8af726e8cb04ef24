"""``ecdi mutants --score``: each mutant runs its own case alone and counts as caught only on a FAIL
of a requirement it breaks. Exercised on one mutant (``--only``); the self-test runs them all."""

from __future__ import annotations

import subprocess

from conformance.commands.mutants import judge
from conformance.reference_dts.mutants import MUTANTS

from conftest import SELFTEST_SCALE, ecdi_process, run_budget


def ecdi(*args: str, timeout: int = 60) -> subprocess.CompletedProcess:
    return ecdi_process(*args, timeout=timeout)


def _results(verdict: str, *failed_on: str, case_id: str = "reliability.honours-retry-after") -> dict:
    findings = [{"verdict": "FAIL", "requirement": r} for r in failed_on] + [{"verdict": "PASS", "requirement": "X"}]
    return {"cases": [{"id": case_id, "verdict": verdict, "reason": "r", "findings": findings}]}


def test_caught_only_by_a_fail_on_a_broken_requirement():
    mutant = MUTANTS["ignores-retry-after"]
    assert judge(mutant, _results("FAIL", "REL-06")) == (True, "FAIL on REL-06")
    caught, why = judge(mutant, _results("FAIL", "REL-05"))
    assert not caught and "breaks REL-06" in why
    caught, why = judge(mutant, _results("ERROR"))
    assert not caught and "gave ERROR" in why
    caught, why = judge(mutant, _results("FAIL", "REL-06", case_id="other.case"))
    assert not caught and "did not run" in why


def test_unknown_mutant_is_a_usage_error():
    proc = ecdi("mutants", "--score", "--only", "bogus")
    assert proc.returncode == 2 and "unknown mutant 'bogus'" in proc.stderr


def test_score_of_one_mutant(tmp_path, pki_dir):
    proc = ecdi("mutants", "--score", "--only", "ignores-retry-after", "--time-scale", SELFTEST_SCALE,
                "--pki-dir", str(pki_dir), "--out", str(tmp_path), timeout=run_budget())
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "caught  ignores-retry-after" in proc.stdout
    assert "mutant score: 1/1 caught (100 %)" in proc.stdout
    assert (tmp_path / "ignores-retry-after" / "results.json").exists()
