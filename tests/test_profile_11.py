"""Profile ecdi-1.1 is ecdi-1.0 changed exactly as Annex A says, and no more."""

from __future__ import annotations

import pytest

from conformance.profile import load_profile
from test_profile import envelope, paths  # the 1.0 tests' envelope builder (Annex B header)


@pytest.fixture(scope="module")
def p10():
    return load_profile("ecdi-1.0")


@pytest.fixture(scope="module")
def p11():
    return load_profile("ecdi-1.1")


def test_version_and_accepted_versions(p11):
    assert (p11.id, p11.version) == ("ecdi-1.1", "1.1")
    assert p11.deployment["accepted_versions"] == ["1.0", "1.1"]


def test_parameters_change_only_per_annex_a(p10, p11):
    changed = {k: (p10.params[k], p11.params[k]) for k in p10.params if p10.params[k] != p11.params[k]}
    assert changed == {
        "T_otp": (120, 300),                                   # Annex A #1
        "MC_required": ("optional", "mandatory"),              # #2
        "SHA1": ("accept-with-warning", "refuse"),             # #3
        "certification_id": ("absent", "mandatory"),          # #4
    }
    assert set(p10.params) == set(p11.params)


def test_requirements_change_only_per_annex_a(p10, p11):
    assert set(p10.requirements) - set(p11.requirements) == {"SIG-06"}
    assert set(p11.requirements) - set(p10.requirements) == {"SIG-07"}
    relevelled = {r: (p10.requirements[r].level, p11.requirements[r].level)
                  for r in set(p10.requirements) & set(p11.requirements)
                  if p10.requirements[r].level != p11.requirements[r].level}
    assert relevelled == {"PAY-11": ("SHOULD", "MUST")}
    assert p11.requirements["SIG-07"].since == "1.1"


def test_result_codes_change_only_per_annex_a(p10, p11):
    assert set(p10.result_codes) - set(p11.result_codes) == {"W0001"}
    assert set(p11.result_codes) - set(p10.result_codes) == {"X0005", "G0007"}
    assert p11.result_codes["X0005"].field == "path" and p11.result_codes["G0007"].reply == "271"


def test_certification_id_is_exactly_one_in_11(p10, p11):
    with_id = {"Reference/version": "1.1", "SendApplication/certificationId": "ECDI-2025-00042"}
    assert p11.validate_envelope(envelope(**with_id), "request") == []
    missing = p11.validate_envelope(envelope(**{"Reference/version": "1.1"}), "request")
    assert paths(missing) == ["/Envelope/Header/SendApplication"] and "certificationId" in missing[0].reason
    assert p10.validate_envelope(envelope(), "request") == [], "1.0's XSD leaves the element optional"


def test_reference_dts_claims_both_profiles():
    from conformance.reference_dts.config import reference_statement

    assert {"1.0", "1.1"} <= set(reference_statement()["profile"])


def test_a_gateway_started_with_11_accepts_what_its_deployment_lists():
    """CAP-03 / Annex A: accepted_versions comes from the profile's deployment, not only the start options."""
    from mock_server.app import accepted_profiles

    assert sorted(p.version for p in accepted_profiles(["ecdi-1.1"])) == ["1.0", "1.1"]
    assert [p.version for p in accepted_profiles(["ecdi-1.0"])] == ["1.0"]
