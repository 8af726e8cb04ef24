"""Signature family (SIG): requests are signed exactly as Table 8-1, with SHA-256 only."""

from conformance import checks
from conformance.case import case
from conformance.verdict import EvidenceKind


@case(
    "signature.sha256-only",
    requirements=["SIG-01", "SIG-04"],
    capability="import",
    purpose="Every request carries one enveloped XMLDSig per Table 8-1, made with SHA-256 digest and signature "
            "(even in profile 1.0, where the gateway tolerates SHA-1), by a certificate for From/identity.",
)
def test_sha256_only(ecdi):
    ecdi.lodge("declaration-import", type="929")
    sent = ecdi.requests()
    ecdi.check(checks.Check(bool(sent), f"{len(sent)} request(s) recorded"), "SIG-01", stop=True)
    for exchange in sent:
        ecdi.check(checks.signature_conforms(exchange, ecdi.profile), "SIG-04")


# Test certificates (see conformance/pki_matrix.py) the DTS must refuse before signing, and the cause
# SIG-12 says the user must be told for each.
UNFIT_CERTIFICATES = {
    "expired": "expired",
    "not-yet-valid": "not yet valid",
    "revoked": "revoked",
    "other-tax-code": "wrong tax code",
    "rsa-1024": "unsuitable key",
    "wrong-key-usage": "unsuitable key",
}


@case(
    "signature.refuses-unfit-certificate",
    requirements=["SIG-12", "SEC-09"],
    capability="import",
    purpose="With an expired, not-yet-valid, revoked, other-tax-code or unsuitable-key certificate installed, "
            "the DTS sends nothing and tells the user, as a local error, the specific cause.",
)
def test_refuses_unfit_certificate(ecdi):
    for certificate, cause in UNFIT_CERTIFICATES.items():
        ecdi.install_certificate(certificate)
        outcome = ecdi.lodge("declaration-import", type="929")
        ecdi.check(checks.nothing_sent(ecdi.requests(), f"with the {certificate} certificate"), "SIG-12")
        ecdi.check(checks.local_error_names_cause(outcome, cause), "SEC-09", evidence=EvidenceKind.DRIVER)
