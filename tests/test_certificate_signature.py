"""Issue 4 on the certificate page: the signature algorithm the product used and the test
certificate(s) each case ran with are visible facts derived from the signed claim."""

from __future__ import annotations

import pytest

from conformance.codec import xmlsig
from conformance.issuer import Issuer, generate_key
from conformance.report.certificate import build_claim, render, signature_algorithms
from conformance.report.verify import Rejected, verify_certificate
from test_certificate import CASES, PROFILE, results


def signature_case(method: str, digest: str) -> dict:
    detail = {"signature_method": method, "digest_method": digest}
    return {"id": "signature.sha256-only", "family": "signature", "requirements": ["SIG-01", "SIG-04"],
            "verdict": "PASS", "evidence": ["wire"], "certificates": ["declarant", "wrong-p12-password"],
            "findings": [{"verdict": "PASS", "requirement": "SIG-04", "evidence": "wire", "message": "",
                          "detail": detail}]}


@pytest.fixture(scope="module")
def issuer(tmp_path_factory) -> Issuer:
    path = tmp_path_factory.mktemp("issuer") / "key.pem"
    return Issuer("self-assessment", generate_key(path), str(path))


def page(issuer: Issuer, cases: list[dict]) -> bytes:
    claim = build_claim(results(cases=cases), issuer, evidence=None, interrupted=False,
                        catalogue={c["id"] for c in cases}, released={PROFILE["id"]: PROFILE["hash"]})
    return render(claim, issuer)


def test_the_algorithm_used_is_read_from_the_signature_findings():
    cases = [signature_case(xmlsig.RSA_SHA256, xmlsig.SHA256), signature_case(xmlsig.RSA_SHA256, xmlsig.SHA256)]
    assert signature_algorithms(results(cases=cases)) == [f"{xmlsig.RSA_SHA256} {xmlsig.SHA256}"]
    assert signature_algorithms(results()) == []


def test_the_page_shows_algorithm_and_certificates_and_verifies(issuer):
    data = page(issuer, [*CASES, signature_case(xmlsig.RSA_SHA1, xmlsig.SHA1)])
    text = data.decode("utf-8")
    assert 'data-claim="signature_algorithms">rsa-sha1 / sha1<' in text
    assert 'data-claim="cases.2.certificates">declarant, wrong-p12-password<' in text
    verify_certificate(data, issuer.public_key, accept_self_assessment=True)   # raises Rejected if not


def test_an_edited_algorithm_is_named(issuer):
    data = page(issuer, [signature_case(xmlsig.RSA_SHA256, xmlsig.SHA256)])
    forged = data.replace(b">rsa-sha256 / sha256<", b">ecdsa-sha256 / sha256<")
    with pytest.raises(Rejected, match="signature_algorithms"):
        verify_certificate(forged, issuer.public_key, accept_self_assessment=True)
