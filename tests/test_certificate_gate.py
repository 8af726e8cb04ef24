"""No CERTIFIED certificate from a bad run: each cause is named on the certificate."""

from __future__ import annotations

import re

import pytest

from conformance.cli import main
from conformance.issuer import ENV_KEY, ENV_ROLE, generate_key, load_private_key, public_pem
from conformance.profile import list_profiles, load_profile
from conformance.report.certification import released_hashes, refusal_reasons

HASH = "cd" * 32
CATALOGUE = {"a.must", "b.should"}


def results(**changes) -> dict:
    r = {
        "profile": {"id": "ecdi-1.0", "version": "1.0", "hash": HASH},
        "sut": {"mutant": None}, "time_scale": 1.0, "overall": "CONFORMANT", "setup_error": None,
        "cases": [{"id": "a.must", "requirements": ["TRN-01"], "verdict": "PASS"},      # TRN-01 is MUST
                  {"id": "b.should", "requirements": ["PAY-11"], "verdict": "PASS"}],  # PAY-11 is SHOULD in 1.0
    }
    r.update(changes)
    return r


def reasons(role="customs", interrupted=False, catalogue=CATALOGUE, **changes) -> list[str]:
    return refusal_reasons(results(**changes), role=role, interrupted=interrupted, catalogue=catalogue,
                           released={"ecdi-1.0": HASH})


def test_a_clean_customs_run_is_a_certification():
    assert reasons() == []


@pytest.mark.parametrize("kwargs,expected", [
    ({"role": "self-assessment"}, "local self-assessment key"),
    ({"interrupted": True}, "interrupted"),
    ({"time_scale": 0.5}, "time_scale 0.5 < 1"),
    ({"profile": {"id": "ecdi-1.0", "version": "1.0", "hash": "00" * 32}}, "profile ecdi-1.0 was modified"),
    ({"profile": {"id": "ecdi-9.9", "version": "9.9", "hash": HASH}}, "not a released profile"),
    ({"catalogue": CATALOGUE | {"c.more"}}, "only 2 of the 3 catalogued cases were run"),
    ({"sut": {"mutant": "sha1-signer"}}, "deliberate defect sha1-signer"),
    ({"overall": "NOT CONFORMANT"}, "NOT CONFORMANT"),
])
def test_each_bad_condition_is_a_stated_reason(kwargs, expected):
    found = reasons(**kwargs)
    assert len(found) == 1 and expected in found[0], found


def test_error_or_inconclusive_in_a_mandatory_case_is_named_but_not_in_a_should_case():
    cases = [{"id": "a.must", "requirements": ["TRN-01"], "verdict": "INCONCLUSIVE"},
             {"id": "b.should", "requirements": ["PAY-11"], "verdict": "ERROR"}]
    found = reasons(cases=cases, overall="NOT CONFORMANT")
    assert "mandatory case(s) without a clear verdict: a.must (INCONCLUSIVE)" in found
    assert not any("b.should" in r for r in found)


def test_released_registry_pins_every_shipped_profile():
    released = released_hashes()
    for pid in list_profiles():
        assert released.get(pid) == load_profile(pid).content_hash(), (
            f"{pid} differs from its released hash in fixtures/profiles/released.toml: a changed profile is not "
            f"the released standard (update the registry only when releasing it deliberately)")


def test_customs_key_on_a_scaled_partial_run_is_not_certified(tmp_path, run_ecdi, monkeypatch):
    key = tmp_path / "customs.pem"
    generate_key(key)
    monkeypatch.setenv(ENV_KEY, str(key))
    monkeypatch.setenv(ENV_ROLE, "customs")
    run = run_ecdi(tmp_path / "run", "--case", "signature.sha256-only")
    assert run.returncode == 3 and run.results["overall"] == "INCOMPLETE", run.stderr[-2000:]   # a partial run
    page = (run.out / "certificate.html").read_text(encoding="utf-8")
    assert "INCOMPLETE RUN" in page and "CERTIFIED · ĐÃ CHỨNG NHẬN" not in page
    assert re.search(r"timers scaled by time_scale 0.05 &lt; 1", page)
    assert "cases that apply to the product&#39;s claims were run" in page
    assert "local self-assessment key" not in page, "the customs key was used"
    customs_pub = tmp_path / "customs.pub.pem"   # the key customs publishes, not the copy beside the file
    customs_pub.write_bytes(public_pem(load_private_key(key).public_key()))
    for name in ("certificate.html", "certificate.pdf"):
        assert main(["verify", str(run.out / name), "--trust", str(customs_pub),
                     "--accept-self-assessment", "--evidence", str(run.out / "evidence")]) == 0, name


def test_customs_role_without_a_key_is_a_usage_error(tmp_path, run_ecdi, monkeypatch):
    monkeypatch.delenv(ENV_KEY, raising=False)
    monkeypatch.setenv(ENV_ROLE, "customs")
    run = run_ecdi(tmp_path / "run", "--case", "signature.sha256-only")
    assert run.returncode != 0
    assert "needs the customs key" in run.stdout + run.stderr
    assert "Traceback" not in run.stdout + run.stderr
