"""Who signs a conformance certificate, in which role, and how a signature is checked.

Two roles exist because customs approves vendors on the strength of the certificate:

* ``self-assessment`` — a vendor's local key, made on first use in the run's work folder. Anything
  it signs is headed SELF-ASSESSMENT, whatever the run's result.
* ``customs`` — the customs authority's key, configured by customs IT (``ECDI_ISSUER_KEY`` and
  ``ECDI_ISSUER_ROLE=customs``, or the plugin options ``--ecdi-issuer-key``/``--ecdi-issuer-role``).
  Only a certificate whose signature verifies with the key the verifier trusts as the customs key,
  and whose run met every condition of a certification, reads CERTIFIED.

The role written in a claim is only a statement; trust comes from the verifier's key. Keys are
Ed25519 (deterministic, small) or RSA (signed with RSA-PSS/SHA-256), both from ``cryptography``.
"""

from __future__ import annotations

import datetime
import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.x509.oid import NameOID

ROLES = ("self-assessment", "customs")
ED25519 = "Ed25519"
RSA_PSS = "RSA-PSS-SHA256"
ENV_KEY = "ECDI_ISSUER_KEY"
ENV_ROLE = "ECDI_ISSUER_ROLE"
ENV_CERT = "ECDI_ISSUER_CERT"
SELF_KEY_FILE = "self-assessment-ed25519.pem"


class IssuerError(Exception):
    """An issuer or trust key that cannot be used; the message names the file and the cause."""


def _pss() -> padding.PSS:
    return padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=padding.PSS.DIGEST_LENGTH)


def algorithm_of(public_key) -> str:
    if isinstance(public_key, Ed25519PublicKey):
        return ED25519
    if isinstance(public_key, rsa.RSAPublicKey):
        if public_key.key_size < 2048:
            raise IssuerError(f"an RSA issuer key needs at least 2048 bits, this one has {public_key.key_size}")
        return RSA_PSS
    raise IssuerError(f"issuer keys are Ed25519 or RSA, not {type(public_key).__name__}")


def public_pem(public_key) -> bytes:
    return public_key.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)


def key_id(public_key) -> str:
    """sha256 of the DER public key: names the key in the claim, so a verifier sees which key signed."""
    der = public_key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return hashlib.sha256(der).hexdigest()


def verify(public_key, algorithm: str, signature: bytes, data: bytes) -> bool:
    """True when ``signature`` over ``data`` verifies with ``public_key`` under ``algorithm``."""
    try:
        if algorithm != algorithm_of(public_key):
            return False
        if algorithm == ED25519:
            public_key.verify(signature, data)
        else:
            public_key.verify(signature, data, _pss(), hashes.SHA256())
        return True
    except (InvalidSignature, IssuerError, ValueError):
        return False


@dataclass(frozen=True)
class Issuer:
    role: str
    private_key: object
    source: str          # where the key came from, for messages
    chain_path: str | None = None   # PEM: the key's X.509 certificate first, then its CA chain (PDF signature)

    @property
    def public_key(self):
        return self.private_key.public_key()

    @property
    def algorithm(self) -> str:
        return algorithm_of(self.public_key)

    @property
    def key_id(self) -> str:
        return key_id(self.public_key)

    def sign(self, data: bytes) -> bytes:
        if self.algorithm == ED25519:
            return self.private_key.sign(data)
        return self.private_key.sign(data, _pss(), hashes.SHA256())


def _read(path: Path, what: str) -> bytes:
    try:
        return Path(path).read_bytes()
    except OSError as exc:
        raise IssuerError(f"{what} {path}: cannot be read: {exc.strerror or exc}") from None


def load_private_key(path: Path) -> object:
    data = _read(path, "issuer key")
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError) as exc:
        raise IssuerError(f"issuer key {path}: not an unencrypted PEM private key ({exc})") from None
    algorithm_of(key.public_key())
    return key


def load_trusted_key(path: Path) -> object:
    """A PEM public key, or an X.509 certificate bearing one, that the verifier trusts.

    A private key is refused: whoever holds it can sign anything, so a verifier handed one is
    trusting the file's own author, and the key must never travel beside a certificate.
    """
    data = _read(path, "trusted key")
    if b"PRIVATE KEY-----" in data:
        raise IssuerError(f"trusted key {path}: is a PRIVATE key; give the issuer's public key "
                          f"(certificate-issuer.pub.pem beside the certificate, or the one customs publishes)")
    try:
        key = (x509.load_pem_x509_certificate(data).public_key() if b"-----BEGIN CERTIFICATE" in data
               else serialization.load_pem_public_key(data))
    except (ValueError, TypeError) as exc:
        raise IssuerError(f"trusted key {path}: not a PEM public key ({exc})") from None
    algorithm_of(key)
    return key


def self_assessment_key(folder: Path) -> Ed25519PrivateKey:
    """The vendor's local self-assessment key, created once per work folder (mode 0600)."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / SELF_KEY_FILE
    return load_private_key(path) if path.exists() else generate_key(path)


def resolve_issuer(work_folder: Path, key_path: str | None = None, role: str | None = None) -> Issuer:
    """The issuer of this run: explicit options first, then the environment, else self-assessment.

    A role without a key is refused: a customs role must never fall back to a locally made key.
    """
    key_path = key_path or os.environ.get(ENV_KEY) or None
    role = role or os.environ.get(ENV_ROLE) or None
    if role is not None and role not in ROLES:
        raise IssuerError(f"issuer role {role!r} is not one of {', '.join(ROLES)}")
    if key_path is None:
        if role == "customs":
            raise IssuerError(f"issuer role 'customs' needs the customs key (--issuer-key or {ENV_KEY})")
        return Issuer("self-assessment", self_assessment_key(work_folder), "local self-assessment key")
    return Issuer(role or "self-assessment", load_private_key(Path(key_path)), str(key_path),
                  os.environ.get(ENV_CERT) or None)


def generate_key(path: Path, algorithm: str = ED25519) -> object:
    """Write a new unencrypted PEM issuer key (customs IT keeps it; tests use throw-away ones)."""
    key = Ed25519PrivateKey.generate() if algorithm == ED25519 else rsa.generate_private_key(65537, 2048)
    path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                       serialization.NoEncryption()))
    path.chmod(0o600)
    return key


SUBJECT_ORG = "ECDI Conformance"
CERT_YEARS = 10


def certificate_chain(issuer: Issuer, folder: Path) -> list[x509.Certificate]:
    """The X.509 chain a PDF signature carries: the issuer's certificate first, then its CAs.

    Customs IT names theirs in ``ECDI_ISSUER_CERT`` (PEM, the key's certificate first). Without one,
    a self-signed certificate naming the role in its subject is made once per key and kept beside
    the key (``issuer-<key id>.crt.pem``): a PDF signature needs a certificate, and what a verifier
    trusts is still the public key (``ecdi verify --trust``), never this self-issued name.
    """
    if issuer.chain_path:
        data = _read(Path(issuer.chain_path), "issuer certificate")
        try:
            chain = x509.load_pem_x509_certificates(data)
        except ValueError as exc:
            raise IssuerError(f"issuer certificate {issuer.chain_path}: not PEM X.509 certificates ({exc})") from None
        if key_id(chain[0].public_key()) != issuer.key_id:
            raise IssuerError(f"issuer certificate {issuer.chain_path}: its first certificate is not for the issuer key "
                              f"{issuer.source}")
        return chain
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"issuer-{issuer.role}-{issuer.key_id[:16]}.crt.pem"
    if path.exists():
        try:
            cert = x509.load_pem_x509_certificate(path.read_bytes())
            if key_id(cert.public_key()) == issuer.key_id and cert.not_valid_after_utc > _now():
                return [cert]
        except ValueError:
            pass  # a damaged cache is made again
    cert = self_signed_certificate(issuer)
    tmp = path.with_suffix(".tmp")
    tmp.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    tmp.replace(path)
    return [cert]


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.timezone.utc)


def self_signed_certificate(issuer: Issuer) -> x509.Certificate:
    name = x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, SUBJECT_ORG),
                      x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, f"role: {issuer.role}"),
                      x509.NameAttribute(NameOID.COMMON_NAME, f"ECDI certificate issuer ({issuer.role})")])
    now = _now()
    builder = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(issuer.public_key)
               .serial_number(x509.random_serial_number())
               .not_valid_before(now - datetime.timedelta(days=1))
               .not_valid_after(now + datetime.timedelta(days=365 * CERT_YEARS))
               .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
               .add_extension(x509.KeyUsage(digital_signature=True, content_commitment=True, key_encipherment=False,
                                            data_encipherment=False, key_agreement=False, key_cert_sign=False,
                                            crl_sign=False, encipher_only=False, decipher_only=False), critical=True)
               .add_extension(x509.SubjectKeyIdentifier.from_public_key(issuer.public_key), critical=False))
    algorithm = None if issuer.algorithm == ED25519 else hashes.SHA256()
    return builder.sign(issuer.private_key, algorithm)
