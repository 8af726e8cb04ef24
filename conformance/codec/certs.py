"""Facts about signer certificates, one function per row of Table 8-2 (plus SIG-12, SIG-15).

No policy order lives here: the gateway applies the rows in Table 8-2's order (G0008, G0004, G0002,
G0003, G0006, G0005) and the DTS in SIG-12's. Each function therefore answers exactly one question
and stays silent about the others; in particular ``chain_problem`` does not report expiry, which
is ``validity_problem``'s question with its own code (G0002) and place in the order.
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from urllib.parse import urlsplit

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID
from cryptography.x509.verification import (
    Criticality,
    ExtensionPolicy,
    PolicyBuilder,
    Store,
    VerificationError,
)

from .memo import BoundedMemo

MST_PREFIX = "MST:"
_TAX_CODE = re.compile(r"[0-9]{10}(-[0-9]{3})?", re.ASCII)


def _utc(moment: datetime) -> datetime:
    return moment.replace(tzinfo=timezone.utc) if moment.tzinfo is None else moment.astimezone(timezone.utc)


def _stamp(moment: datetime) -> str:
    return _utc(moment).strftime("%Y-%m-%dT%H:%M:%SZ")


# the signature checks that depend on nothing but the octets checked (a certificate's or CRL's signature under a
# key, a chain found valid while every certificate in it keeps its validity state): a gateway checks the same few
# certificates on every request, and these RSA operations were a fifth of its own CPU per exchange
# (docs/performance.md)
_MEMO = BoundedMemo(1024)


class _Same:
    """A memo key part: this very object (held by the key, so its id is not reused while remembered).
    A gateway checks the same certificate and CRL objects again and again (it loads each once); hashing
    their DER on every request cost as much as some of the checks."""

    __slots__ = ("obj",)

    def __init__(self, obj):
        self.obj = obj

    def __hash__(self) -> int:
        return id(self.obj)

    def __eq__(self, other) -> bool:
        return isinstance(other, _Same) and other.obj is self.obj


# --------------------------------------------------------------------------------------------
# SIG-09: tax code


def _mst_values(cert: x509.Certificate) -> list[str]:
    values = []
    for attr in cert.subject.get_attributes_for_oid(NameOID.USER_ID):
        value = attr.value if isinstance(attr.value, str) else attr.value.decode("utf-8", "replace")
        if value.startswith(MST_PREFIX):
            values.append(value[len(MST_PREFIX):])
    return values


def tax_code_of(cert: x509.Certificate) -> str | None:
    """The C of the subject's single ``UID=MST:<C>``; None if absent, repeated or C is not a TaxCode.

    UID values not starting with ``MST:`` are ignored (SIG-09).
    """
    values = _mst_values(cert)
    if len(values) != 1 or not _TAX_CODE.fullmatch(values[0]):
        return None
    return values[0]


def tax_code_problem(cert: x509.Certificate, from_identity: str) -> str | None:
    """Why SIG-09 fails for ``From/identity``, in words a user or tester can act on (SIG-12, G0006)."""
    values = _mst_values(cert)
    if not values:
        return "the certificate subject has no UID=MST:<tax code> attribute"
    if len(values) > 1:
        return f"the certificate subject has {len(values)} UID=MST: values; exactly one is required"
    if not _TAX_CODE.fullmatch(values[0]):
        return f"UID=MST:{values[0]} does not hold a tax code"
    if not tax_code_matches(values[0], from_identity):
        return f"the certificate is for tax code {values[0]}, not {from_identity}"
    return None


def tax_code_matches(cert_tax_code: str | None, from_identity: str) -> bool:
    """SIG-09: C equals ``From/identity``, or ``From/identity`` is C + ``-`` + three digits (a branch
    signing with its parent's certificate). Never the other way round: a branch certificate does not
    cover its parent."""
    if not cert_tax_code:
        return False
    if from_identity == cert_tax_code:
        return True
    return re.fullmatch(re.escape(cert_tax_code) + r"-[0-9]{3}", from_identity, re.ASCII) is not None


# --------------------------------------------------------------------------------------------
# Table 8-2 row 1: key and key usage (G0008)


def key_problem(cert: x509.Certificate) -> str | None:
    """Why the certificate's key is unsuitable for signing ECDI messages, or None."""
    return _MEMO.get(("key", _Same(cert)), lambda: _key_problem(cert))


def _key_problem(cert: x509.Certificate) -> str | None:
    try:
        usage = cert.extensions.get_extension_for_class(x509.KeyUsage).value
    except x509.ExtensionNotFound:
        return "the certificate has no keyUsage extension"
    except ValueError as exc:
        return f"the certificate extensions cannot be read: {exc}"
    if not (usage.digital_signature or usage.content_commitment):
        return "keyUsage allows neither digitalSignature nor nonRepudiation"
    try:
        key = cert.public_key()
    except (UnsupportedAlgorithm, ValueError) as exc:
        return f"the certificate's public key cannot be used: {exc}"
    if isinstance(key, rsa.RSAPublicKey):
        if key.key_size < 2048:
            return f"RSA key of {key.key_size} bits; at least 2048 bits are required"
        return None
    if isinstance(key, ec.EllipticCurvePublicKey):
        if not isinstance(key.curve, ec.SECP256R1):
            return f"EC key on curve {key.curve.name}; only P-256 is allowed"
        return None
    return f"{type(key).__name__.lstrip('_')} key; only RSA (2048 bits or more) or EC P-256 are allowed"


# --------------------------------------------------------------------------------------------
# Table 8-2 row 2: chain (G0004)


def _ca_policy() -> ExtensionPolicy:
    """Web PKI rules for CA certificates, except EKU: the client verifier would demand clientAuth in
    any EKU a CA carries, which says nothing about a CA issuing document-signing certificates."""
    return ExtensionPolicy.webpki_defaults_ca().may_be_present(
        x509.ExtendedKeyUsage, Criticality.AGNOSTIC, None
    )


def _ee_policy() -> ExtensionPolicy:
    """Signing certificates need no SAN or EKU; key usage and key size are ``key_problem``'s (G0008,
    checked before the chain), so the end entity's extensions are not judged here."""
    return ExtensionPolicy.permit_all()


def chain_problem(
    signer: x509.Certificate,
    intermediates: list[x509.Certificate],
    anchors: list[x509.Certificate],
    at: datetime,
) -> str | None:
    """Why no RFC 5280 path leads from ``signer`` via ``intermediates`` to one of ``anchors``, or None.

    The path is validated at ``at`` clamped into the signer's own validity period. Expiry of the
    signer is G0002, a later row of Table 8-2 with its own code: an expired certificate from a
    trusted CA must come out as "expired", never as "untrusted issuer". CA certificates in the path
    are still required to be valid at that moment (a CA that had expired while the signer was valid
    breaks the path). ``intermediates`` are the KeyInfo ones plus those known to the caller.
    """
    if not anchors:
        return "no trust anchor configured"
    moment = min(max(_utc(at), signer.not_valid_before_utc), signer.not_valid_after_utc)
    # a path found valid stays valid at any moment at which each certificate involved is as valid as now
    # (path validation reads the clock only through validity periods): only that finding is remembered
    involved = [signer, *intermediates, *anchors]
    key = ("chain", *map(_Same, involved), *(c.not_valid_before_utc <= moment <= c.not_valid_after_utc for c in involved))
    if key in _MEMO:
        return None
    verifier = (
        PolicyBuilder()
        .store(Store(list(anchors)))
        .time(moment)
        .extension_policies(ca_policy=_ca_policy(), ee_policy=_ee_policy())
        .build_client_verifier()
    )
    try:
        verifier.verify(signer, list(intermediates))
    except VerificationError as exc:
        return f"no valid chain from {signer.subject.rfc4514_string()} to a trust anchor: {exc}"
    _MEMO.put(key, True)
    return None


# --------------------------------------------------------------------------------------------
# Table 8-2 row 3: validity (G0002)


def validity_problem(cert: x509.Certificate, at: datetime) -> str | None:
    """"expired ..." or "not yet valid ..." at ``at``, or None. RFC 5280 bounds are inclusive."""
    moment = _utc(at)
    if moment < cert.not_valid_before_utc:
        return f"not yet valid: valid from {_stamp(cert.not_valid_before_utc)}, checked at {_stamp(moment)}"
    if moment > cert.not_valid_after_utc:
        return f"expired: valid until {_stamp(cert.not_valid_after_utc)}, checked at {_stamp(moment)}"
    return None


# --------------------------------------------------------------------------------------------
# Table 8-2 row 4: revocation (G0003, or E9001 without a usable CRL)


class RevocationState(enum.Enum):
    GOOD = "good"
    REVOKED = "revoked"
    UNKNOWN = "unknown"  # no usable CRL: SIG-10 wants E9001 from the gateway, not accept or refuse


@dataclass(frozen=True)
class RevocationCheck:
    state: RevocationState
    reason: str


class NoUsableCRL(Exception):
    """No CRL of the issuing CA that is correctly signed and current (SIG-10: answer E9001)."""


def crl_urls(cert: x509.Certificate) -> list[str]:
    """The certificate's CRL distribution point URIs, in order."""
    return list(_MEMO.get(("crl urls", _Same(cert)), lambda: tuple(_crl_urls(cert))))


def _crl_urls(cert: x509.Certificate) -> list[str]:
    try:
        points = cert.extensions.get_extension_for_class(x509.CRLDistributionPoints).value
    except x509.ExtensionNotFound:
        return []
    urls = []
    for point in points:
        for name in point.full_name or []:
            if isinstance(name, x509.UniformResourceIdentifier):
                urls.append(name.value)
    return urls


def crl_file_name(url: str) -> str:
    """The file name a CRL distribution point URL maps to (the harness never fetches the network:
    it holds CRLs as files named like the last path segment of their URL)."""
    return Path(urlsplit(url).path).name


def _crl_unusable(crl: x509.CertificateRevocationList, issuer: x509.Certificate, moment: datetime) -> str | None:
    if crl.issuer != issuer.subject:
        return f"CRL issued by {crl.issuer.rfc4514_string()}, not by {issuer.subject.rfc4514_string()}"
    try:
        usage = issuer.extensions.get_extension_for_class(x509.KeyUsage).value
        if not usage.crl_sign:
            return "the issuing CA's keyUsage lacks cRLSign"
    except x509.ExtensionNotFound:
        pass
    try:
        signed = _MEMO.get(("crl", _Same(crl), _Same(issuer)),
                           lambda: crl.is_signature_valid(issuer.public_key()))
    except (TypeError, ValueError, UnsupportedAlgorithm) as exc:
        return f"CRL signature cannot be checked: {exc}"
    if not signed:
        return "CRL signature does not verify with the issuing CA's key"
    if crl.last_update_utc > moment:
        return f"CRL thisUpdate {_stamp(crl.last_update_utc)} is in the future"
    if crl.next_update_utc is None:
        return "CRL has no nextUpdate"
    if crl.next_update_utc < moment:
        return f"CRL nextUpdate {_stamp(crl.next_update_utc)} has passed"
    return None


def revocation_status(
    cert: x509.Certificate,
    crls: list[x509.CertificateRevocationList],
    *,
    issuer: x509.Certificate | None,
    at: datetime | None = None,
) -> RevocationCheck:
    """Revocation state of ``cert`` from the CRLs of its ``issuer`` that are signed and current at ``at``.

    ``issuer`` is required because a CRL is only evidence once its signature is checked with the
    key of the CA that issued ``cert``; without it (None) no CRL is usable. CRLs of other issuers,
    badly signed or stale ones are skipped and named in the reason of an UNKNOWN result.
    """
    moment = _utc(at or datetime.now(timezone.utc))
    if issuer is None:
        return RevocationCheck(RevocationState.UNKNOWN, "the issuing CA's certificate is not available")
    if issuer.subject != cert.issuer:
        who = issuer.subject.rfc4514_string()
        return RevocationCheck(RevocationState.UNKNOWN, f"{who} did not issue the certificate")
    skipped = []
    usable = 0
    for crl in crls:
        why = _crl_unusable(crl, issuer, moment)
        if why:
            skipped.append(why)
            continue
        usable += 1
        entry = crl.get_revoked_certificate_by_serial_number(cert.serial_number)
        if entry is not None:
            return RevocationCheck(
                RevocationState.REVOKED, f"serial {cert.serial_number:x} revoked on {_stamp(entry.revocation_date_utc)}"
            )
    if not usable:
        detail = "; ".join(skipped) if skipped else "no CRL available"
        return RevocationCheck(RevocationState.UNKNOWN, f"no usable CRL of {cert.issuer.rfc4514_string()}: {detail}")
    return RevocationCheck(RevocationState.GOOD, f"not listed in {usable} current CRL(s)")


def revoked(
    cert: x509.Certificate,
    crls: list[x509.CertificateRevocationList],
    *,
    issuer: x509.Certificate | None,
    at: datetime | None = None,
) -> bool:
    """True if revoked, False if a usable CRL does not list it; raises NoUsableCRL otherwise.

    The third outcome is an exception so that it cannot be mistaken for "not revoked".
    """
    check = revocation_status(cert, crls, issuer=issuer, at=at)
    if check.state is RevocationState.UNKNOWN:
        raise NoUsableCRL(check.reason)
    return check.state is RevocationState.REVOKED


def issuer_of(cert: x509.Certificate, candidates: list[x509.Certificate]) -> x509.Certificate | None:
    """The candidate whose subject is the certificate's issuer and whose key verifies its signature."""
    for candidate in candidates:
        if candidate.subject != cert.issuer:
            continue
        if _MEMO.get(("issued", _Same(cert), _Same(candidate)), lambda: _directly_issued(cert, candidate)):
            return candidate
    return None


def _directly_issued(cert: x509.Certificate, candidate: x509.Certificate) -> bool:
    try:
        cert.verify_directly_issued_by(candidate)
    except (InvalidSignature, ValueError, TypeError, UnsupportedAlgorithm):
        return False
    return True


# --------------------------------------------------------------------------------------------


def load_pem_chain(path: Path | str) -> list[x509.Certificate]:
    """All certificates of a PEM file, in file order; a file without any is an error, not an empty list."""
    data = Path(path).read_bytes()
    try:
        certs = x509.load_pem_x509_certificates(data)
    except ValueError as exc:
        raise ValueError(f"{path}: no readable PEM certificate ({exc})") from None
    return certs
