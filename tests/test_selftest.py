"""Self-tests: the reference DTS passes every case; every mutant is caught by the case meant to catch it."""

from __future__ import annotations

import base64
import re
import sqlite3

import pytest
from cryptography.hazmat.primitives.serialization import load_pem_public_key

from conformance.catalogue import case_ids
from conformance.reference_dts.mutants import MUTANTS
from conformance.testdata import SAMPLE_TAX_CODE, TestData

VERDICTS = {"PASS", "FAIL", "INCONCLUSIVE", "NOT-APPLICABLE", "ERROR"}


def test_reference_dts_is_conformant(reference_run):
    run = reference_run
    assert run.returncode == 0, run.explain()
    results = run.results
    assert results["overall"] == "CONFORMANT"
    failing = {k: v for k, v in run.verdicts().items() if v != "PASS"}
    assert not failing, failing
    assert set(run.verdicts()) == case_ids("DTS"), "every catalogued DTS case ran"


def test_outputs_are_written_with_the_required_fields(reference_run):
    out = reference_run.out
    for name in ("report.html", "results.json", "junit.xml", "certificate.html"):
        assert (out / name).stat().st_size > 0, name
    r = reference_run.results
    assert r["profile"]["id"] == "ecdi-1.0" and re.fullmatch(r"[0-9a-f]{64}", r["profile"]["hash"])
    assert r["sut"]["product"] and r["sut"]["version"]
    for c in r["cases"]:
        assert set(c) >= {"id", "requirements", "verdict", "reason"}
        assert c["verdict"] in VERDICTS and c["requirements"]
    junit = (out / "junit.xml").read_text(encoding="utf-8")
    assert 'name="requirements"' in junit and 'name="verdict"' in junit


def test_the_run_acts_for_a_tax_code_drawn_from_its_seed(reference_run):
    """Anti-gaming: the declarant's tax code is the seed's, on the wire and in the documents."""
    r = reference_run.results
    drawn = TestData(r["seed"]).tax_code
    assert r["declarant_tax_code"] == drawn != SAMPLE_TAX_CODE
    with sqlite3.connect(reference_run.out / "evidence" / "evidence.sqlite3") as db:
        sent = db.execute("SELECT message_text FROM exchanges WHERE type = '929' AND function = '8' "
                          "AND message_text IS NOT NULL LIMIT 1").fetchone()[0]
    assert f"<identity>{drawn}</identity>".encode() in sent and f"<taxCode>{drawn}</taxCode>".encode() in sent


def test_certificate_states_scale_and_verifies(reference_run):
    page = (reference_run.out / "certificate.html").read_text(encoding="utf-8")
    assert "SELF-ASSESSMENT" in page and "This is a self-test, not a certification" in page
    assert "CONFORMANT" in page and "ecdi-1.0" in page
    claim = base64.b64decode(re.search(r'id="ecdi-claim"[^>]*>([^<]+)<', page).group(1))
    signature = base64.b64decode(re.search(r'id="ecdi-signature"[^>]*>([^<]+)<', page).group(1))
    key = load_pem_public_key((reference_run.out / "certificate-issuer.pub.pem").read_bytes())
    key.verify(signature, claim)  # raises if the claim was not signed by the issuer key
    with pytest.raises(Exception):
        key.verify(signature, claim.replace(b"CONFORMANT", b"CONFORMANX"))


def test_every_mutant_names_an_existing_case():
    assert MUTANTS, "the reference DTS has mutants"
    unknown = {m.name: m.caught_by for m in MUTANTS.values() if m.caught_by not in case_ids("DTS")}
    assert not unknown, unknown


def test_every_case_has_a_mutant_that_it_catches():
    caught = {m.caught_by for m in MUTANTS.values()}
    assert case_ids("DTS") <= caught, f"cases without a mutant: {sorted(case_ids('DTS') - caught)}"


@pytest.mark.parametrize("name", sorted(MUTANTS))
def test_mutant_is_caught_by_its_case(name, tmp_path, run_ecdi):
    """The case meant to catch the mutant FAILs it through a check — not an ERROR from a crash.

    Only that case runs: the unmutated reference run above shows every other case passes, and
    running the whole suite per mutant would grow as cases × mutants.
    """
    mutant = MUTANTS[name]
    profile = ("--profile", mutant.profile) if getattr(mutant, "profile", None) else ()   # CAP-02: SHOULD elsewhere
    run = run_ecdi(tmp_path / name, "--mutant", name, "--case", mutant.caught_by, *profile)
    verdicts = run.verdicts()
    assert verdicts == {mutant.caught_by: "FAIL"}, (
        f"{name} should be caught by {mutant.caught_by}: {run.results['cases']}"
    )
    failing = [f for f in run.results["cases"][0]["findings"] if f["verdict"] == "FAIL"]
    assert any(f["requirement"] in mutant.breaks for f in failing), (
        f"{name} breaks {mutant.breaks}, but its case failed on {[f['requirement'] for f in failing]}"
    )
    assert run.returncode == 1 and run.results["overall"] == "NOT CONFORMANT"
    assert run.results["sut"]["mutant"] == name


def test_every_declared_requirement_is_checked_in_the_run(reference_run):
    """A case covers only what it checks: each declared requirement must carry a finding."""
    for c in reference_run.results["cases"]:
        checked = {f["requirement"] for f in c["findings"]}
        assert set(c["requirements"]) <= checked, f"{c['id']} declares but never checks {set(c['requirements']) - checked}"


def test_results_compare_claimed_and_exhibited_capabilities(reference_run):
    claims = reference_run.results["claims"]
    assert "import" in claims["exhibited"], claims
    assert claims["exhibited_not_claimed"] == []
    assert "export" in claims["exhibited"]  # envelope.type-function-rows lodges an export declaration


@pytest.mark.parametrize("profile_id", ["ecdi-1.0", "ecdi-1.1"])
def test_every_must_binding_the_dts_is_broken_by_some_mutant(profile_id):
    """Beyond "every case has a mutant": for every MUST requirement a case covers, some mutant is declared
    to break it (and is caught by its case on one of the requirements it breaks, test above).
    CAP-02 is the definition of conformance, verified by the verdict model (tests/test_verdict.py)."""
    from conformance.catalogue import all_cases
    from conformance.coverage import coverage
    from conformance.profile import load_profile

    broken = {r for m in MUTANTS.values() for r in m.breaks}
    rows = coverage(load_profile(profile_id), all_cases()).rows
    unbroken = [r.requirement for r in rows if r.level == "MUST" and r.cases and r.requirement not in broken]
    assert unbroken == [], f"MUST requirements no mutant breaks: {unbroken}"
