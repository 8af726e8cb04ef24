"""Signature family (SIG): requests are signed exactly as Table 8-1, with SHA-256 only."""

from conformance import checks
from conformance.case import case


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
