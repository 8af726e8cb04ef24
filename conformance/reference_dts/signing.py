"""The declarant's signing key: loaded once from the encrypted PKCS#12 (SEC-02), checked before
every signature (SIG-12), used to sign (SIG-01, SIG-04).

Failures are exceptions carrying what the user must be told: ``SigningUnavailable`` (SIG-13: the
key could not be used at all) and ``CertificateUnfit`` (SIG-12: the specific cause and its remedy).
In both cases the DTS sends nothing.
"""

from __future__ import annotations

import contextlib
import hashlib
import threading
import urllib.error
import urllib.request
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives.serialization import pkcs12
from lxml import etree

from ..codec import certs, xmlsig


class SigningUnavailable(Exception):
    """SIG-13: the key cannot be used (file missing, wrong password, no key in it, signing failed)."""


@dataclass
class CertificateUnfit(Exception):
    """SIG-12: the certificate must not be used; ``cause`` is the word the user sees first."""

    cause: str      # expired | not yet valid | revoked | wrong tax code | unsuitable key | untrusted issuer
    detail: str
    remedy: str

    def __str__(self) -> str:
        return f"{self.cause}: {self.detail}"


_REMEDY = {
    "expired": "renew the certificate with your certification authority and install the new one",
    "not yet valid": "wait until the certificate's validity starts, or check the computer's clock",
    "revoked": "obtain a new certificate from your certification authority; this one must not be used",
    "wrong tax code": "use the certificate issued for this declarant's tax code (UID=MST:<tax code>)",
    "unsuitable key": "use a signing certificate with digitalSignature or nonRepudiation and an RSA key of "
                      "at least 2048 bits or an EC P-256 key",
    "untrusted issuer": "use a certificate issued by a CA in the customs trust list",
}


def _unfit(cause: str, detail: str) -> CertificateUnfit:
    return CertificateUnfit(cause, detail, _REMEDY[cause])


CRL_FETCH_TIMEOUT_S = 5.0
_NO_PROXY = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def _fetch_crl(url: str, attempts: int = 2) -> bytes | None:
    """The octets at an http(s) distribution point, or None when it cannot be fetched now (a second
    attempt after a connection reset: a server going down as another comes up)."""
    if not url.lower().startswith(("http://", "https://")):
        return None
    for _ in range(attempts):
        try:
            with _NO_PROXY.open(url, timeout=CRL_FETCH_TIMEOUT_S) as resp:
                return resp.read()
        except urllib.error.HTTPError:
            return None
        except (OSError, ValueError):
            continue
    return None


def _order_chain(leaf: x509.Certificate, others: list[x509.Certificate]) -> list[x509.Certificate]:
    """Intermediates from the leaf's issuer upwards, without the self-signed root (Table 8-1 KeyInfo)."""
    pool = [c for c in others if c.subject != c.issuer]
    chain, current = [], leaf
    while True:
        issuer = certs.issuer_of(current, pool)
        if issuer is None:
            return chain
        chain.append(issuer)
        pool.remove(issuer)
        current = issuer


_OPENED: dict[tuple[bytes, str], tuple] = {}
_OPENED_LOCK = threading.Lock()


def _opened(data: bytes, password: str) -> tuple:
    """``pkcs12.load_key_and_certificates`` of these octets with this password, once per process: every case
    starts a fresh installation of the in-process reference DTS, and each opening costs two 50,000-round KDFs
    (~60 ms). Keyed by the file's digest and the password, so a renewed or damaged file, or a wrong password,
    is opened (and refused) afresh; the key stays in memory only (SEC-02)."""
    token = (hashlib.sha256(data).digest(), password)
    with _OPENED_LOCK:
        found = _OPENED.get(token)
    if found is None:
        found = pkcs12.load_key_and_certificates(data, password.encode("utf-8"))
        with _OPENED_LOCK:
            _OPENED[token] = found
    return found


class SigningKey:
    """The one signing key of this DTS installation, loaded once and kept in memory only."""

    def __init__(self, p12: Path, password: str, *, trust_list_pem: Path, crl_dir: Path | None = None):
        self._p12 = Path(p12)
        self._password = password
        self._trust_list_pem = Path(trust_list_pem)
        self._crl_dir = Path(crl_dir) if crl_dir is not None else None
        self._signer: xmlsig.Signer | None = None

    def signer(self) -> xmlsig.Signer:
        """Open the PKCS#12 on first use; signxml re-parses PEM keys on every call, so the key object is
        loaded once and reused (libraries.md)."""
        if self._signer is None:
            try:
                data = self._p12.read_bytes()
            except OSError as exc:
                raise SigningUnavailable(f"the key file {self._p12} cannot be read ({exc.strerror})") from None
            try:
                key, cert, extra = _opened(data, self._password)
            except ValueError:
                raise SigningUnavailable("the key file could not be opened: wrong password or damaged file") from None
            if key is None or cert is None:
                raise SigningUnavailable("the key file holds no private key with its certificate")
            try:
                self._signer = xmlsig.Signer(key=key, chain=[cert, *_order_chain(cert, list(extra))])
            except (TypeError, ValueError) as exc:
                raise SigningUnavailable(f"the key in the key file cannot sign ECDI messages: {exc}") from None
        return self._signer

    @property
    def certificate(self) -> x509.Certificate:
        return self.signer().chain[0]

    def check(self, from_identity: str, at: datetime) -> None:
        """SIG-12, before signing: validity, key usage and size, tax code, issuer, revocation."""
        signer = self.signer()
        cert, intermediates = signer.chain[0], signer.chain[1:]
        problem = certs.validity_problem(cert, at)
        if problem:
            raise _unfit("not yet valid" if problem.startswith("not yet valid") else "expired", problem)
        problem = certs.key_problem(cert)
        if problem:
            raise _unfit("unsuitable key", problem)
        problem = certs.tax_code_problem(cert, from_identity)
        if problem:
            raise _unfit("wrong tax code", problem)
        try:
            anchors = certs.load_pem_chain(self._trust_list_pem)
        except (OSError, ValueError) as exc:
            raise SigningUnavailable(f"the CA trust list cannot be read: {exc}") from None
        problem = certs.chain_problem(cert, intermediates, anchors, at)
        if problem:
            raise _unfit("untrusted issuer", problem)
        self._check_revocation(cert, intermediates + anchors, at)

    def _check_revocation(self, cert: x509.Certificate, cas: list[x509.Certificate], at: datetime) -> None:
        """SIG-12 asks for the CRL check "when that CRL is reachable at signing time". This DTS fetches
        each of the certificate's HTTP distribution points (a few seconds at most), else reads the file
        of that name in its local CRL folder if it has one. No usable CRL either way means "not
        reachable": the check is skipped, as SIG-12 allows."""
        issuer = certs.issuer_of(cert, cas)
        if issuer is None:
            return
        crls = []
        for url in certs.crl_urls(cert):
            data = _fetch_crl(url)
            if data is None and self._crl_dir is not None:
                with contextlib.suppress(OSError):
                    data = (self._crl_dir / certs.crl_file_name(url)).read_bytes()
            try:
                crls.append(x509.load_der_x509_crl(data) if not data.lstrip().startswith(b"-----")
                            else x509.load_pem_x509_crl(data))
            except (AttributeError, ValueError):      # None (not reachable) or not a CRL
                continue
        status = certs.revocation_status(cert, crls, issuer=issuer, at=at)
        if status.state is certs.RevocationState.REVOKED:
            raise _unfit("revoked", status.reason)

    def sign(self, root: etree._Element, *, signature_method: str, digest_method: str) -> bytes:
        """Sign the envelope; the returned octets are the message text, sent as-is (SIG-02)."""
        try:
            return xmlsig.sign_envelope(root, self.signer(), signature_method=signature_method,
                                        digest_method=digest_method)
        except Exception as exc:  # noqa: BLE001 — whatever the crypto library raises is SIG-13 "key error"
            raise SigningUnavailable(f"signing failed: {type(exc).__name__}: {exc}") from None
