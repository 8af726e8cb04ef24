"""Requirements coverage is computed from the profile and the catalogue, not asserted by hand."""

import pytest

from conformance.case import CaseSpec
from conformance.catalogue import all_cases
from conformance.coverage import coverage
from conformance.profile import load_profile

from conftest import ecdi_process


def test_coverage_lists_exactly_the_requirements_binding_the_dts():
    profile = load_profile("ecdi-1.0")
    cov = coverage(profile, all_cases())
    ids = {r.requirement for r in cov.rows}
    assert ids == {r.id for r in profile.requirements.values() if "DTS" in r.binds}
    assert "TRN-13" not in ids and "REL-05" in ids  # CGW-only vs DTS requirement


def test_a_requirement_counts_as_covered_only_through_a_case_that_declares_it():
    profile = load_profile("ecdi-1.0")
    spec = CaseSpec("x.y", ("REL-05",), "purpose")
    cov = coverage(profile, [spec])
    row = {r.requirement: r for r in cov.rows}
    assert row["REL-05"].cases == ("x.y",) and row["REL-06"].cases == ()
    covered, total = cov.level_figures("MUST")
    assert covered == 2 and total > 50 and "REL-06" in cov.uncovered()  # REL-05 and CAP-02 (harness)


def test_coverage_command_prints_the_figure():
    out = ecdi_process("cases", "--coverage").stdout
    assert "REL-05" in out and "reliability.resend-after-timeout" in out
    assert "MUST requirements binding the DTS covered by a case:" in out


def test_cap_02_is_verified_by_the_harness_not_by_a_case():
    """CAP-02 defines conformance; the verdict model is its test (tests/test_verdict.py)."""
    cov = coverage(load_profile("ecdi-1.0"), all_cases())
    row = {r.requirement: r for r in cov.rows}["CAP-02"]
    assert row.covered and not row.cases and "overall verdict" in row.harness
    assert "CAP-02" not in cov.uncovered()


@pytest.mark.parametrize("profile_id", ["ecdi-1.0", "ecdi-1.1"])
def test_every_must_binding_the_dts_is_covered(profile_id):
    """Issue 6's gate: a MUST requirement binding the DTS without a case (or the harness's own rule,
    CAP-02) fails the suite, for every profile."""
    cov = coverage(load_profile(profile_id), all_cases())
    assert cov.uncovered("MUST") == [] and cov.must_percent == 100.0


def test_cgw_coverage_lists_the_requirements_binding_the_cgw_at_their_cgw_level():
    profile = load_profile("ecdi-1.1")
    cov = coverage(profile, all_cases(), "CGW")
    ids = {r.requirement for r in cov.rows}
    assert ids == {r.id for r in profile.requirements.values() if "CGW" in r.binds} and len(ids) == 53
    assert "TRN-13" in ids and "REL-05" not in ids and "SIG-07" in ids
    assert {r.level for r in cov.rows} == {"MUST"}


def test_a_dts_case_never_covers_a_requirement_for_the_cgw():
    """TRN-01 binds both parties: a DTS case citing it covers the DTS side only."""
    profile = load_profile("ecdi-1.0")
    dts, cgw = CaseSpec("transport.x", ("TRN-01",), "p"), CaseSpec("cgw-transport.x", ("TRN-01",), "p", party="CGW")
    rows = {r.requirement: r for r in coverage(profile, [dts], "CGW").rows}
    assert rows["TRN-01"].cases == ()
    rows = {r.requirement: r for r in coverage(profile, [dts, cgw], "CGW").rows}
    assert rows["TRN-01"].cases == ("cgw-transport.x",)
    assert {r.requirement: r for r in coverage(profile, [dts, cgw]).rows}["TRN-01"].cases == ("transport.x",)


def test_coverage_command_reports_the_cgw_side():
    out = ecdi_process("cases", "--coverage", "--profile", "ecdi-1.1").stdout
    assert "MUST requirements binding the CGW covered by a case:" in out and "CGW MUST coverage:" in out


@pytest.mark.parametrize("profile_id", ["ecdi-1.0", "ecdi-1.1"])
def test_every_must_binding_the_cgw_is_covered(profile_id):
    """Issue 16's gate, as issue 6's for the DTS: every CGW MUST has a CGW case, in every profile."""
    cov = coverage(load_profile(profile_id), all_cases(), "CGW")
    assert cov.uncovered("MUST") == [] and cov.must_percent == 100.0
