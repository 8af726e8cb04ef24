"""The declarant-certificate matrix of issue 4: each named certificate, how it is made, and what
ECDI says the gateway answers when a request is signed with it (Table 8-2 order).

Data, not code paths: gateway tests, DTS-side SIG-12 cases and the report all read this one table.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta

from .pki import Identity, TestPKI

OTHER_TAX_CODE = "0109999999"


@dataclass(frozen=True)
class MatrixEntry:
    name: str
    purpose: str
    variant: dict = field(default_factory=dict)   # TestPKI.issue_declarant variants (dates relative to start)
    tax_code: str | None = None                    # subject tax code; None = the declarant's own
    registered: bool = True                        # registered with customs for From/identity (SIG-11)
    expected_code: str | None = None               # the gateway's answer; None = accepted (29)
    capability: str | None = None                  # Table 13-1 capability needed to use it
    # SIG-13: the PKCS#12 password the DTS is given instead of the right one (a wrong PIN), so the key
    # cannot be opened at all; None = the right password. The certificate itself stays valid.
    p12_password: str | None = None


MATRIX: tuple[MatrixEntry, ...] = (
    MatrixEntry("valid", "a valid RSA-2048 declarant certificate"),
    MatrixEntry("expired", "notAfter in the past", {"not_after": ("start", timedelta(hours=1))}, expected_code="G0002"),
    MatrixEntry("not-yet-valid", "notBefore in the future",
                {"not_before": ("start", timedelta(days=3650)), "not_after": ("start", timedelta(days=4000))},
                expected_code="G0002"),
    MatrixEntry("revoked", "listed in the issuing CA's CRL", {"revoked": True}, expected_code="G0003"),
    MatrixEntry("untrusted", "issued by a look-alike CA outside ca_trust_list", {"issuer": "rogue"},
                expected_code="G0004"),
    MatrixEntry("no-uid", "subject without UID=MST:", {"uid": None}, expected_code="G0006"),
    MatrixEntry("other-tax-code", "UID=MST: of another enterprise", tax_code=OTHER_TAX_CODE, expected_code="G0006"),
    MatrixEntry("wrong-key-usage", "keyUsage keyEncipherment only", {"key_usage": ["key_encipherment"]},
                expected_code="G0008"),
    MatrixEntry("rsa-1024", "an RSA key below 2048 bits", {"rsa_bits": 1024}, expected_code="G0008"),
    MatrixEntry("unregistered", "valid but not registered with customs for the tax code", registered=False,
                expected_code="G0005"),
    MatrixEntry("ecdsa-p256", "an ECDSA P-256 key", {"ec": True}, capability="ecdsa"),
    MatrixEntry("wrong-p12-password", "a valid certificate whose PKCS#12 the DTS is given a wrong password for",
                p12_password="not-the-p12-password"),
)

BY_NAME = {e.name: e for e in MATRIX}


def identity(pki: TestPKI, entry: MatrixEntry) -> Identity:
    """Issue (or load from the PKI folder's cache) the certificate of ``entry``.

    Dates are given relative to the PKI's fixed start so the cache hits across runs.
    """
    variant = {k: (pki.start + v[1] if isinstance(v, tuple) and v and v[0] == "start" else v)
               for k, v in entry.variant.items()}
    # Named by the run's tax code too: runs sharing a PKI folder with other tax codes keep their own.
    return pki.issue_declarant(f"matrix-{entry.name}-{pki.tax_code}", entry.tax_code or pki.tax_code, **variant)
