"""The harness's test PKI: every certificate, key and CRL the gateway and the reference DTS use.

Three independent hierarchies mirror ECDI's three trust decisions:

* ``ca_trust_list`` (request signatures, Table 8-2): "ECDI Test Root CA" -> "ECDI Test Declarant
  CA" (intermediate) -> declarant certificates with ``UID=MST:<tax code>`` (SIG-09).
* ``cgw_sign_anchor`` (reply signatures, SIG-14/SIG-15): "ECDI Test Gateway Signing CA" ->
  the gateway's reply-signing certificate. It issues nothing else, so a declarant certificate can
  never pass for the gateway.
* TLS: "ECDI Test TLS CA" -> the server certificate for ``localhost`` / ``127.0.0.1``.

Revocation: declarant certificates name ``http://127.0.0.1:<crl_port>/crl/declarant-ca.crl`` as CRL
distribution point, a URL the harness really serves on loopback while a run is in flight
(``conformance/crl_server.py``), so a DTS reaches the CRL as it would in production (SIG-12). The port
is chosen once per PKI folder when it is generated (``ECDI_CRL_PORT`` overrides it) and kept in
``pki.json``: every run sharing the folder serves the same files on the same port (docs/decisions.md,
"CRL served on loopback"). The gateway never fetches: it maps a distribution point URL to the CRL file
it holds with the same file name (``certs.crl_file_name``), here ``declarant-ca.crl`` (DER).

Generation is cached in a folder and redone only when a file is missing, the parameters
fingerprint in ``pki.json`` differs (tax code or ``PKI_LAYOUT``), or a certificate is about to
expire. Private keys of the declarants exist only in encrypted PKCS#12 files (SEC-02); the gateway's
own TLS and signing keys, and the CA keys (under ``private/``, used to issue more certificates),
are unencrypted PEM: they are test material of the harness, not of a DTS.
"""

from __future__ import annotations

import contextlib
import copy
import fcntl
import hashlib
import ipaddress
import json
import os
import random
import re
import secrets
import shutil
import socket
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.serialization import pkcs12
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from conformance.codec.xmlsig import Signer
from conformance.files import atomic_write

PKI_LAYOUT = 2  # bump whenever generation changes, so that cached folders are regenerated
DEFAULT_TAX_CODE = "0312345678"
DECLARANT_COMPANY = "Công ty TNHH Thương mại Hải Đăng"
DECLARANT_CITY = "TP. Hồ Chí Minh"
CRL_HOST = "127.0.0.1"
CRL_PATH = "/crl/"                  # served by conformance/crl_server.py from the PKI folder
CRL_PORT_ENV = "ECDI_CRL_PORT"      # fixes the port when a PKI folder is (re)generated
_CRL_PORTS = range(20000, 32768)    # below Linux's ephemeral range: no client socket takes it meanwhile

BACKDATE = timedelta(days=1)  # certificates are valid from "now minus 1 day" at generation
CA_LIFETIME = timedelta(days=3652)
LEAF_LIFETIME = timedelta(days=730)
CRL_LIFETIME = timedelta(days=30)
RENEW_MARGIN = timedelta(days=1)  # regenerate / re-issue when validity ends sooner than this
GATEWAY_SIGNER_VARIANTS = ("renewed", "expired")   # TestPKI.gateway_signer_variant (SIG-15 cases)

DEFAULT_KEY_USAGE = frozenset({"digital_signature", "content_commitment"})
_KEY_USAGE_FIELDS = (
    "digital_signature", "content_commitment", "key_encipherment", "data_encipherment",
    "key_agreement", "key_cert_sign", "crl_sign", "encipher_only", "decipher_only",
)
_KEY_USAGE_ALIASES = {"non_repudiation": "content_commitment", "nonRepudiation": "content_commitment",
                      "digitalSignature": "digital_signature"}
_CURVES = {"p-256": ec.SECP256R1, "secp256r1": ec.SECP256R1, "p-384": ec.SECP384R1, "secp384r1": ec.SECP384R1,
           "p-521": ec.SECP521R1, "secp521r1": ec.SECP521R1}
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")


# --------------------------------------------------------------------------------------------
# Small X.509 helpers


def _now() -> datetime:
    return datetime.now(timezone.utc).replace(microsecond=0)


def _utc(moment: datetime) -> datetime:
    return moment.replace(tzinfo=timezone.utc) if moment.tzinfo is None else moment.astimezone(timezone.utc)


def _name(cn: str, *, o: str = "ECDI Test PKI", extra: list[x509.NameAttribute] | None = None) -> x509.Name:
    attrs = [x509.NameAttribute(NameOID.COUNTRY_NAME, "VN"), x509.NameAttribute(NameOID.ORGANIZATION_NAME, o),
             x509.NameAttribute(NameOID.COMMON_NAME, cn)]
    return x509.Name(attrs + (extra or []))


def _key_usage(names) -> x509.KeyUsage:
    wanted = {_KEY_USAGE_ALIASES.get(n, n) for n in names}
    unknown = wanted - set(_KEY_USAGE_FIELDS)
    if unknown:
        raise ValueError(f"unknown key usage(s) {sorted(unknown)}; known: {list(_KEY_USAGE_FIELDS)}")
    return x509.KeyUsage(**{f: f in wanted for f in _KEY_USAGE_FIELDS})


def _new_key(rsa_bits: int = 2048, curve: type[ec.EllipticCurve] | None = None):
    if curve is not None:
        return ec.generate_private_key(curve())
    return rsa.generate_private_key(public_exponent=65537, key_size=rsa_bits)


def _issue(subject: x509.Name, public_key, issuer: x509.Certificate | None, issuer_key, not_before: datetime,
           not_after: datetime, extensions: list[tuple[x509.ExtensionType, bool]]) -> x509.Certificate:
    """One certificate with SKI and AKI (chain building in signxml and ``cryptography`` needs them).

    ``issuer`` None means self-signed.
    """
    ski = x509.SubjectKeyIdentifier.from_public_key(public_key)
    if issuer is None:
        aki = x509.AuthorityKeyIdentifier.from_issuer_public_key(public_key)
    else:
        aki = x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(
            issuer.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value)
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject if issuer is None else issuer.subject)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(ski, critical=False)
        .add_extension(aki, critical=False)
    )
    for ext, critical in extensions:
        builder = builder.add_extension(ext, critical=critical)
    return builder.sign(issuer_key, hashes.SHA256())


def _ca_extensions(path_length: int | None) -> list[tuple[x509.ExtensionType, bool]]:
    return [(x509.BasicConstraints(ca=True, path_length=path_length), True),
            (_key_usage({"key_cert_sign", "crl_sign"}), True)]


def _pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def _key_pem(key) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def _load_cert(path: Path) -> x509.Certificate:
    return x509.load_pem_x509_certificate(path.read_bytes())


def _load_key(path: Path):
    # a key this module generated into the folder: OpenSSL 3's RSA consistency check costs 20-150 ms per key,
    # paid by every run that loads the PKI (the self-tests make ~150 runs)
    return serialization.load_pem_private_key(path.read_bytes(), password=None, unsafe_skip_rsa_key_validation=True)


@contextlib.contextmanager
def _locked(folder: Path):
    """Exclusive lock on the PKI folder, so that pytest-xdist workers generate it once."""
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / ".lock", "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


# --------------------------------------------------------------------------------------------


@dataclass
class Identity:
    """A certificate with its private key and intermediates (``chain``; never the root).

    Declarant identities have ``p12``/``p12_password`` and no ``key_pem`` (SEC-02: their key exists
    only in the encrypted PKCS#12); the gateway's identities have ``key_pem`` and no ``p12``.
    """

    name: str
    cert: x509.Certificate
    # the private key, or a ``_P12Key`` that reads it on first use (``key``): a PKCS#12's KDF costs ~40 ms, and
    # a run loads a dozen identities of which it signs with few
    _key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey | "_P12Key" = field(repr=False)
    chain: list[x509.Certificate]
    cert_pem: Path
    key_pem: Path | None = None
    p12: Path | None = None
    p12_password: str | None = field(default=None, repr=False)
    chain_pem: Path | None = None  # signer certificate then intermediates, the KeyInfo order

    @property
    def key(self) -> rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey:
        if isinstance(self._key, _P12Key):
            self._key = self._key(self.cert)
        return self._key

    def signer(self) -> Signer:
        return Signer(key=self.key, chain=[self.cert, *self.chain])


@dataclass(frozen=True)
class _DeclarantSpec:
    """Everything that determines a declarant certificate; its JSON is the cache fingerprint."""

    tax_code: str
    not_before: str
    not_after: str
    key_usage: list[str] | None
    rsa_bits: int
    curve: str | None
    uids: list[str]
    revoked: bool
    common_name: str
    organization: str
    issuer: str
    crl_url: str            # the CRL distribution point: the port the PKI folder's runs serve it on

    def fingerprint(self) -> str:
        return hashlib.sha256(json.dumps([PKI_LAYOUT, asdict(self)], sort_keys=True).encode()).hexdigest()


_VARIANTS = ("not_before", "not_after", "key_usage", "rsa_bits", "ec", "uid", "revoked",
             "common_name", "organization", "issuer")
_ISSUERS = ("declarant_ca", "rogue")


def crl_url(port: int, issuer: str = "declarant_ca") -> str:
    """The distribution point named in certificates of ``issuer`` (``"rogue"``: a CRL nobody serves)."""
    return f"http://{CRL_HOST}:{port}{CRL_PATH}{'declarant-ca' if issuer == 'declarant_ca' else 'rogue-ca'}.crl"


def _free_port() -> int:
    """A loopback port nothing listens on now, drawn from ``_CRL_PORTS``."""
    for port in random.sample(_CRL_PORTS, 64):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
            try:
                probe.bind((CRL_HOST, port))
            except OSError:
                continue
            return port
    raise OSError(f"no free loopback port in {_CRL_PORTS.start}-{_CRL_PORTS.stop - 1} for the CRL server")


def _crl_port(folder: Path) -> int:
    """The CRL port of the PKI folder: ``ECDI_CRL_PORT`` if set, else the one its ``pki.json`` records
    (kept across regenerations), else a free one."""
    override = os.environ.get(CRL_PORT_ENV, "").strip()
    if override:
        if not override.isdigit() or not 0 < int(override) < 65536:
            raise ValueError(f"{CRL_PORT_ENV}={override!r} is not a TCP port (1-65535)")
        return int(override)
    try:
        port = json.loads((folder / TestPKI.META).read_text())["params"]["crl_port"]
        if isinstance(port, int) and 0 < port < 65536:
            return port
    except (OSError, ValueError, KeyError, TypeError):
        pass
    return _free_port()


def _declarant_spec(start: datetime, tax_code: str, variant: dict, port: int) -> _DeclarantSpec:
    unknown = set(variant) - set(_VARIANTS)
    if unknown:
        raise TypeError(f"issue_declarant: unknown variant(s) {sorted(unknown)}; known: {list(_VARIANTS)}")
    not_before = _utc(variant.get("not_before", start))
    not_after = _utc(variant.get("not_after", start + LEAF_LIFETIME))
    key_usage = variant.get("key_usage", DEFAULT_KEY_USAGE)
    if key_usage is not None:
        key_usage = sorted({_KEY_USAGE_ALIASES.get(n, n) for n in key_usage})
        _key_usage(key_usage)  # validates the names now rather than at issue time
    ec_choice = variant.get("ec", False)
    curve = None
    if ec_choice:
        curve = "p-256" if ec_choice is True else str(ec_choice).lower()
        if curve not in _CURVES:
            raise ValueError(f"issue_declarant: unknown curve {ec_choice!r}; known: {sorted(_CURVES)}")
    uid = variant.get("uid", f"MST:{tax_code}")
    uids = [] if uid is None else [uid] if isinstance(uid, str) else list(uid)
    issuer = variant.get("issuer", "declarant_ca")
    if issuer not in _ISSUERS:
        raise ValueError(f"issue_declarant: unknown issuer {issuer!r}; known: {list(_ISSUERS)}")
    return _DeclarantSpec(
        tax_code=tax_code, not_before=not_before.isoformat(), not_after=not_after.isoformat(),
        key_usage=key_usage, rsa_bits=int(variant.get("rsa_bits", 2048)), curve=curve, uids=uids,
        revoked=bool(variant.get("revoked", False)),
        common_name=variant.get("common_name", DECLARANT_COMPANY),
        organization=variant.get("organization", DECLARANT_COMPANY), issuer=issuer, crl_url=crl_url(port, issuer),
    )


class TestPKI:
    """The generated PKI of one folder; obtain it with ``TestPKI.ensure(folder)``."""

    __test__ = False  # not a pytest test class despite its name

    ROOT = "root-ca.pem"
    DECLARANT_CA = "declarant-ca.pem"
    SIGN_ANCHOR = "sign-anchor.pem"
    TLS_CA = "tls-ca.pem"
    TRUST_LIST = "trust-list.pem"
    CRL = "declarant-ca.crl"
    META = "pki.json"
    _CERT_FILES = (ROOT, DECLARANT_CA, SIGN_ANCHOR, TLS_CA, TRUST_LIST, "gateway-signer.pem", "tls-server.pem",
                   "declarant.pem")
    _OTHER_FILES = (CRL, "declarant.p12", "declarant-chain.pem", "gateway-signer.key.pem", "tls-server.key.pem",
                    "private/root-ca.key.pem", "private/declarant-ca.key.pem", "private/sign-anchor.key.pem",
                    "private/tls-ca.key.pem")

    folder: Path
    tax_code: str
    crl_port: int  # the loopback port of every declarant certificate's CRL distribution point
    start: datetime  # the back-dated start of every default validity period
    root_ca: x509.Certificate
    declarant_ca: x509.Certificate
    sign_anchor: x509.Certificate
    tls_ca: x509.Certificate
    declarant: Identity
    revoked_declarant: Identity
    gateway_signer: Identity
    tls_server: Identity
    crl: x509.CertificateRevocationList
    trust_list_pem: Path
    sign_anchor_pem: Path
    tls_ca_pem: Path
    crl_der: Path
    declarant_chain_pem: Path
    p12_password: str

    @property
    def declarant_tax_code(self) -> str:
        """The tax code in the main declarant's ``UID=MST:`` (its ``From/identity``)."""
        return self.tax_code

    @property
    def crl_url(self) -> str:
        """The declarant CA's CRL distribution point, as every declarant certificate names it."""
        return crl_url(self.crl_port)

    @property
    def declarant_name(self) -> str:
        """The company named in the main declarant certificate (its ``From/name``)."""
        return self.declarant.cert.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)[0].value

    # ---------------------------------------------------------------- loading / generation

    @classmethod
    def ensure(cls, folder: Path | str, *, tax_code: str = DEFAULT_TAX_CODE) -> "TestPKI":
        """Load the PKI cached in ``folder``, generating it first if missing, stale or for other parameters."""
        folder = Path(folder)
        with _locked(folder):
            params = {"layout": PKI_LAYOUT, "tax_code": tax_code, "crl_port": _crl_port(folder),
                      "company": DECLARANT_COMPANY}
            if not cls._cache_usable(folder, params):
                cls._generate(folder, params)
            pki = cls._load(folder)
            pki._refresh_crl_if_due()
            pki.revoked_declarant = pki._issue_declarant_unlocked("revoked", tax_code, revoked=True)
            for variant in GATEWAY_SIGNER_VARIANTS:         # files added to an existing folder if missing
                pki._gateway_signer_variant_unlocked(variant)
        return pki

    def for_tax_code(self, tax_code: str) -> "TestPKI":
        """This PKI as seen by a run whose declarant has ``tax_code`` (anti-gaming: drawn from the run's
        seed): the same CAs, gateway and TLS identities, with a declarant and a revoked declarant issued
        for that tax code under ``declarants/`` (cached, so the CAs are not regenerated per tax code)."""
        if tax_code == self.tax_code:
            return self
        view = copy.copy(self)
        view.tax_code = tax_code
        view.declarant = self.issue_declarant(f"declarant-{tax_code}", tax_code)
        view.revoked_declarant = self.issue_declarant(f"revoked-{tax_code}", tax_code, revoked=True)
        view.crl = self.crl
        return view

    @staticmethod
    def _fingerprint(params: dict) -> str:
        return hashlib.sha256(json.dumps(params, sort_keys=True).encode()).hexdigest()

    @classmethod
    def _cache_usable(cls, folder: Path, params: dict) -> bool:
        try:
            meta = json.loads((folder / cls.META).read_text())
        except (OSError, ValueError):
            return False
        if meta.get("fingerprint") != cls._fingerprint(params):
            return False
        if not all((folder / name).is_file() for name in cls._CERT_FILES + cls._OTHER_FILES):
            return False
        horizon = _now() + RENEW_MARGIN
        try:
            certs = [_load_cert(folder / name) for name in cls._CERT_FILES]
        except ValueError:
            return False
        return all(c.not_valid_before_utc <= _now() and c.not_valid_after_utc > horizon for c in certs)

    @classmethod
    def _generate(cls, folder: Path, params: dict) -> None:
        """Create every file from scratch; ``pki.json`` is written last and marks a complete folder."""
        for sub in ("declarants", "rogue", "tls"):      # issued later under the old CAs: issue afresh
            shutil.rmtree(folder / sub, ignore_errors=True)
        with contextlib.suppress(FileNotFoundError):
            (folder / cls.META).unlink()
        start = _now() - BACKDATE
        ca_end = start + CA_LIFETIME
        leaf_end = start + LEAF_LIFETIME

        # the six keys at once: RSA key generation runs without the GIL, so on every core
        with ThreadPoolExecutor(6, thread_name_prefix="ecdi-pki-key") as pool:
            root_key, dca_key, anchor_key, gw_key, tls_ca_key, tls_key = pool.map(lambda _: _new_key(), range(6))
        root = _issue(_name("ECDI Test Root CA"), root_key.public_key(), None, root_key, start, ca_end,
                      _ca_extensions(1))
        dca = _issue(_name("ECDI Test Declarant CA"), dca_key.public_key(), root, root_key, start, ca_end,
                     _ca_extensions(0))
        anchor = _issue(_name("ECDI Test Gateway Signing CA"), anchor_key.public_key(), None, anchor_key, start,
                        ca_end, _ca_extensions(0))
        gw = _issue(_name("ECDI Test Gateway Reply Signing", o="ECDI Test Customs Gateway"), gw_key.public_key(),
                    anchor, anchor_key, start, leaf_end,
                    [(x509.BasicConstraints(ca=False, path_length=None), True),
                     (_key_usage({"digital_signature"}), True)])
        tls_ca = _issue(_name("ECDI Test TLS CA"), tls_ca_key.public_key(), None, tls_ca_key, start, ca_end,
                        _ca_extensions(0))
        tls = _issue(_name("localhost", o="ECDI Test Customs Gateway"), tls_key.public_key(), tls_ca, tls_ca_key,
                     start, leaf_end,
                     [(x509.BasicConstraints(ca=False, path_length=None), True),
                      (_key_usage({"digital_signature", "key_encipherment"}), True),
                      (x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), False),
                      (x509.SubjectAlternativeName([x509.DNSName("localhost"),
                                                    x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False)])
        for name, data in (
            (cls.ROOT, _pem(root)), (cls.TRUST_LIST, _pem(root)), ("private/root-ca.key.pem", _key_pem(root_key)),
            (cls.DECLARANT_CA, _pem(dca)), ("private/declarant-ca.key.pem", _key_pem(dca_key)),
            (cls.SIGN_ANCHOR, _pem(anchor)), ("private/sign-anchor.key.pem", _key_pem(anchor_key)),
            ("gateway-signer.pem", _pem(gw)), ("gateway-signer.key.pem", _key_pem(gw_key)),
            (cls.TLS_CA, _pem(tls_ca)), ("private/tls-ca.key.pem", _key_pem(tls_ca_key)),
            ("tls-server.pem", _pem(tls)), ("tls-server.key.pem", _key_pem(tls_key)),
        ):
            atomic_write(folder / name, data)
        atomic_write(folder / cls.CRL, _build_crl(dca, dca_key, [], start, number=1))
        password = secrets.token_urlsafe(12)
        spec = _declarant_spec(start, params["tax_code"], {}, params["crl_port"])
        _create_declarant(folder / "declarant", spec, dca, dca_key, password, name="declarant")
        meta = {"fingerprint": cls._fingerprint(params), "params": params, "start": start.isoformat(),
                "p12_password": password}
        atomic_write(folder / cls.META, json.dumps(meta, indent=2).encode())

    @classmethod
    def _load(cls, folder: Path) -> "TestPKI":
        meta = json.loads((folder / cls.META).read_text())
        pki = cls()
        pki.folder = folder
        pki.tax_code = meta["params"]["tax_code"]
        pki.crl_port = meta["params"]["crl_port"]
        pki.start = datetime.fromisoformat(meta["start"])
        pki.p12_password = meta["p12_password"]
        pki.root_ca = _load_cert(folder / cls.ROOT)
        pki.declarant_ca = _load_cert(folder / cls.DECLARANT_CA)
        pki.sign_anchor = _load_cert(folder / cls.SIGN_ANCHOR)
        pki.tls_ca = _load_cert(folder / cls.TLS_CA)
        pki.trust_list_pem = folder / cls.TRUST_LIST
        pki.sign_anchor_pem = folder / cls.SIGN_ANCHOR
        pki.tls_ca_pem = folder / cls.TLS_CA
        pki.crl_der = folder / cls.CRL
        pki.declarant_chain_pem = folder / "declarant-chain.pem"
        pki.crl = x509.load_der_x509_crl(pki.crl_der.read_bytes())
        pki.declarant = _load_declarant(folder / "declarant", "declarant", pki.p12_password)
        pki.gateway_signer = _load_pem_identity(folder, "gateway-signer")
        pki.tls_server = _load_pem_identity(folder, "tls-server")
        pki._ca_keys = {}
        return pki

    def _ca_key(self, name: str):
        """CA keys are loaded only when issuing: RSA key loading is the slow part of ``ensure``."""
        if name not in self._ca_keys:
            self._ca_keys[name] = _load_key(self.folder / "private" / f"{name}.key.pem")
        return self._ca_keys[name]

    # ---------------------------------------------------------------- CRL

    def _refresh_crl_if_due(self) -> None:
        if self.crl.next_update_utc is None or self.crl.next_update_utc < _now() + RENEW_MARGIN:
            self._reissue_crl(extra_serials=[])

    def _reissue_crl(self, extra_serials: list[int]) -> None:
        """Called under the folder lock; the CRL is read again first, since another process sharing the
        folder may have revoked a certificate since this one loaded it."""
        self.crl = x509.load_der_x509_crl(self.crl_der.read_bytes())
        entries = [(r.serial_number, r.revocation_date_utc) for r in self.crl]
        known = {serial for serial, _ in entries}
        entries += [(s, self.start) for s in extra_serials if s not in known]
        number = self.crl.extensions.get_extension_for_class(x509.CRLNumber).value.crl_number + 1
        data = _build_crl(self.declarant_ca, self._ca_key("declarant-ca"), entries, self.start, number=number)
        atomic_write(self.crl_der, data)
        self.crl = x509.load_der_x509_crl(data)

    # ---------------------------------------------------------------- more declarants

    def issue_declarant(self, name: str, tax_code: str, **variant) -> Identity:
        """A further declarant identity in ``declarants/<name>.*``, cached by its parameters.

        Variants (all optional): ``not_before``/``not_after`` (datetimes; derive them from
        ``self.start`` to keep the cache hit across runs), ``key_usage`` (names of ``x509.KeyUsage``
        fields, ``non_repudiation`` accepted; None omits the extension), ``rsa_bits``, ``ec`` (True
        for P-256 or a curve name such as ``"p-384"``), ``uid`` (None omits it, a list gives several
        UID attributes), ``revoked`` (adds it to a re-issued CRL), ``common_name``,
        ``organization``, ``issuer`` (``"declarant_ca"`` or ``"rogue"``: a look-alike CA pair with
        the same names but other keys, not in ``ca_trust_list``).
        """
        with _locked(self.folder):
            return self._issue_declarant_unlocked(name, tax_code, **variant)

    def _issue_declarant_unlocked(self, name: str, tax_code: str, **variant) -> Identity:
        if not _NAME.fullmatch(name):
            raise ValueError(f"identity name {name!r} must match {_NAME.pattern}")
        spec = _declarant_spec(self.start, tax_code, variant, self.crl_port)
        base = self.folder / "declarants" / name
        identity = None
        try:
            meta = json.loads(base.with_suffix(".json").read_text())
            if meta.get("fingerprint") == spec.fingerprint():
                identity = _load_declarant(base, name, self.p12_password)
        except (OSError, ValueError):
            identity = None
        if identity is None:
            if spec.issuer == "rogue":
                ca, ca_key = self._rogue_ca()
            else:
                ca, ca_key = self.declarant_ca, self._ca_key("declarant-ca")
            identity = _create_declarant(base, spec, ca, ca_key, self.p12_password, name=name)
            atomic_write(base.with_suffix(".json"), json.dumps({"fingerprint": spec.fingerprint(),
                                                          "spec": asdict(spec)}, indent=2).encode())
        if spec.revoked and spec.issuer == "declarant_ca":
            if self.crl.get_revoked_certificate_by_serial_number(identity.cert.serial_number) is None:
                self._reissue_crl(extra_serials=[identity.cert.serial_number])
        return identity

    # ---------------------------------------------------------------- further gateway signers

    def gateway_signer_variant(self, variant: str) -> Identity:
        """Another reply-signing certificate of the gateway (SIG-14/SIG-15), in ``gateway-signers/``:

        * ``renewed`` — a new key and certificate under the same ``cgw_sign_anchor``, valid now: what the
          gateway signs with after a routine renewal; a DTS must accept it (it trusts the anchor).
        * ``expired`` — under the same anchor, but its notAfter has passed: a DTS must refuse a reply
          signed with it (not valid at the reply's ``createMessageIssue``).

        Made once and reused; a missing or stale file is re-issued without touching anything else.
        """
        with _locked(self.folder):
            return self._gateway_signer_variant_unlocked(variant)

    def _gateway_signer_variant_unlocked(self, variant: str) -> Identity:
        if variant not in GATEWAY_SIGNER_VARIANTS:
            raise ValueError(f"no gateway signer variant {variant!r}; known: {', '.join(GATEWAY_SIGNER_VARIANTS)}")
        folder = self.folder / "gateway-signers"
        cert_pem, key_pem = folder / f"{variant}.pem", folder / f"{variant}.key.pem"
        try:
            identity = _load_pem_identity(folder, variant)
            usable = identity.cert.issuer == self.sign_anchor.subject and (
                identity.cert.not_valid_before_utc >= self.sign_anchor.not_valid_before_utc) and (
                variant == "expired" and identity.cert.not_valid_after_utc < _now()
                or variant == "renewed" and identity.cert.not_valid_after_utc > _now() + RENEW_MARGIN)
            if usable:
                return identity
        except (OSError, ValueError):
            pass
        now = _now()
        # expired: within the anchor's validity (a chain check alone must not refuse it), ended long ago
        not_before, not_after = ((self.start, self.start + timedelta(hours=1)) if variant == "expired"
                                 else (now - BACKDATE, now + LEAF_LIFETIME))
        key = _new_key()
        cert = _issue(_name(f"ECDI Test Gateway Reply Signing ({variant})", o="ECDI Test Customs Gateway"),
                      key.public_key(), self.sign_anchor, self._ca_key("sign-anchor"), not_before, not_after,
                      [(x509.BasicConstraints(ca=False, path_length=None), True),
                       (_key_usage({"digital_signature"}), True)])
        atomic_write(key_pem, _key_pem(key))
        atomic_write(cert_pem, _pem(cert))
        return _load_pem_identity(folder, variant)

    # ---------------------------------------------------------------- faulty TLS server certificates

    TLS_VARIANTS = ("expired", "self-signed", "wrong-host", "ecdsa")

    def tls_identity(self, variant: str) -> Identity:
        """A TLS server identity for the harness's TLS probe (TRN-09/TRN-10), in ``tls/<variant>.*``,
        issued once and then reused: ``expired`` (under the TLS CA, validity ended 30 days before the
        PKI start), ``self-signed`` (not under the TLS CA), ``wrong-host`` (under the TLS CA, SAN
        ``wrong-host.ecdi.test`` only), ``ecdsa`` (a valid P-256 certificate under the TLS CA).
        Every other one names ``localhost`` and ``127.0.0.1``."""
        if variant not in self.TLS_VARIANTS:
            raise ValueError(f"unknown TLS server variant {variant!r}; known: {', '.join(self.TLS_VARIANTS)}")
        folder = self.folder / "tls"
        if not ((folder / f"{variant}.pem").is_file() and (folder / f"{variant}.key.pem").is_file()):
            with _locked(self.folder):
                if not (folder / f"{variant}.key.pem").is_file() or not (folder / f"{variant}.pem").is_file():
                    self._issue_tls_variant(folder, variant)
        return _load_pem_identity(folder, variant)

    def _issue_tls_variant(self, folder: Path, variant: str) -> None:
        key = _new_key(curve=ec.SECP256R1 if variant == "ecdsa" else None)
        names = ([x509.DNSName("wrong-host.ecdi.test")] if variant == "wrong-host" else
                 [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))])
        start, end = self.start, self.start + LEAF_LIFETIME
        if variant == "expired":
            start, end = self.start - timedelta(days=395), self.start - timedelta(days=30)
        usage = {"digital_signature"} if variant == "ecdsa" else {"digital_signature", "key_encipherment"}
        issuer, issuer_key = (None, key) if variant == "self-signed" else (self.tls_ca, self._ca_key("tls-ca"))
        cert = _issue(_name(variant, o="ECDI Test TLS Probe"), key.public_key(), issuer, issuer_key, start, end,
                      [(x509.BasicConstraints(ca=False, path_length=None), True), (_key_usage(usage), True),
                       (x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), False),
                       (x509.SubjectAlternativeName(names), False)])
        atomic_write(folder / f"{variant}.key.pem", _key_pem(key))
        atomic_write(folder / f"{variant}.pem", _pem(cert))

    def _rogue_ca(self):
        """Look-alike "ECDI Test Root CA" / "ECDI Test Declarant CA" with other keys (G0004 cases)."""
        folder = self.folder / "rogue"
        cert_path, key_path = folder / "declarant-ca.pem", folder / "declarant-ca.key.pem"
        if cert_path.is_file() and key_path.is_file():
            return _load_cert(cert_path), _load_key(key_path)
        root_key = _new_key()
        root = _issue(self.root_ca.subject, root_key.public_key(), None, root_key, self.start,
                      self.start + CA_LIFETIME, _ca_extensions(1))
        ca_key = _new_key()
        ca = _issue(self.declarant_ca.subject, ca_key.public_key(), root, root_key, self.start,
                    self.start + CA_LIFETIME, _ca_extensions(0))
        atomic_write(folder / "root-ca.pem", _pem(root))
        atomic_write(key_path, _key_pem(ca_key))
        atomic_write(cert_path, _pem(ca))
        return ca, ca_key


def _build_crl(ca: x509.Certificate, ca_key, entries: list[tuple[int, datetime]], this_update: datetime,
               *, number: int) -> bytes:
    """A DER CRL of ``ca``: thisUpdate at the PKI start (valid for any clock the tester sets after
    it), nextUpdate ``CRL_LIFETIME`` from now (refreshed by ``ensure``)."""
    builder = (
        x509.CertificateRevocationListBuilder()
        .issuer_name(ca.subject)
        .last_update(this_update)
        .next_update(_now() + CRL_LIFETIME)
        .add_extension(x509.CRLNumber(number), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(
            ca.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value), critical=False)
    )
    for serial, when in entries:
        builder = builder.add_revoked_certificate(
            x509.RevokedCertificateBuilder().serial_number(serial).revocation_date(when)
            .add_extension(x509.CRLReason(x509.ReasonFlags.key_compromise), critical=False).build())
    return builder.sign(ca_key, hashes.SHA256()).public_bytes(serialization.Encoding.DER)


def _create_declarant(base: Path, spec: _DeclarantSpec, ca: x509.Certificate, ca_key, password: str,
                      *, name: str) -> Identity:
    """Issue a declarant certificate and write ``<base>.pem``, ``<base>-chain.pem`` and ``<base>.p12``."""
    key = _new_key(spec.rsa_bits, _CURVES[spec.curve] if spec.curve else None)
    extra = [x509.NameAttribute(NameOID.USER_ID, uid) for uid in spec.uids]
    subject = x509.Name([
        x509.NameAttribute(NameOID.COUNTRY_NAME, "VN"),
        x509.NameAttribute(NameOID.LOCALITY_NAME, DECLARANT_CITY),
        x509.NameAttribute(NameOID.ORGANIZATION_NAME, spec.organization),
        x509.NameAttribute(NameOID.COMMON_NAME, spec.common_name),
        *extra,
    ])
    extensions: list[tuple[x509.ExtensionType, bool]] = [
        (x509.BasicConstraints(ca=False, path_length=None), True),
        (x509.CRLDistributionPoints([x509.DistributionPoint(
            full_name=[x509.UniformResourceIdentifier(spec.crl_url)], relative_name=None, reasons=None,
            crl_issuer=None)]), False),
    ]
    if spec.key_usage is not None:
        extensions.append((_key_usage(spec.key_usage), True))
    cert = _issue(subject, key.public_key(), ca, ca_key, datetime.fromisoformat(spec.not_before),
                  datetime.fromisoformat(spec.not_after), extensions)
    encryption = (
        serialization.PrivateFormat.PKCS12.encryption_builder()
        .kdf_rounds(50_000)
        .key_cert_algorithm(pkcs12.PBES.PBESv2SHA256AndAES256CBC)
        .hmac_hash(hashes.SHA256())
        .build(password.encode())
    )
    p12 = pkcs12.serialize_key_and_certificates(name.encode(), key, cert, [ca], encryption)
    atomic_write(base.with_suffix(".pem"), _pem(cert))
    atomic_write(base.with_name(base.name + "-chain.pem"), _pem(cert) + _pem(ca))
    atomic_write(base.with_suffix(".p12"), p12)
    return Identity(name=name, cert=cert, _key=key, chain=[ca], cert_pem=base.with_suffix(".pem"),
                    p12=base.with_suffix(".p12"), p12_password=password,
                    chain_pem=base.with_name(base.name + "-chain.pem"))


@dataclass(frozen=True)
class _P12Key:
    """The private key of a declarant's PKCS#12, read when first needed."""

    path: Path
    password: str = field(repr=False)

    def __call__(self, cert: x509.Certificate):
        key, found, _ = pkcs12.load_key_and_certificates(self.path.read_bytes(), self.password.encode())
        if key is None or found != cert:
            raise ValueError(f"{self.path} does not hold the key of {cert.subject.rfc4514_string()}")
        return key


def _load_declarant(base: Path, name: str, password: str) -> Identity:
    """The identity written by ``_create_declarant``: its certificate and chain from their PEM files, its key
    from the PKCS#12 when first used (ValueError for files that are not whole)."""
    chain_pem = base.with_name(base.name + "-chain.pem")
    try:
        cert, *chain = x509.load_pem_x509_certificates(chain_pem.read_bytes())
    except ValueError:
        raise ValueError(f"{chain_pem} holds no certificate") from None
    if cert != _load_cert(base.with_suffix(".pem")) or not base.with_suffix(".p12").is_file():
        raise ValueError(f"{base}: its certificate, chain and PKCS#12 files do not belong together")
    return Identity(name=name, cert=cert, _key=_P12Key(base.with_suffix(".p12"), password), chain=chain,
                    cert_pem=base.with_suffix(".pem"), p12=base.with_suffix(".p12"), p12_password=password,
                    chain_pem=chain_pem)


def _load_pem_identity(folder: Path, name: str) -> Identity:
    """The gateway's identities are issued directly by their anchor: no intermediates."""
    cert_pem, key_pem = folder / f"{name}.pem", folder / f"{name}.key.pem"
    return Identity(name=name, cert=_load_cert(cert_pem), _key=_load_key(key_pem), chain=[], cert_pem=cert_pem,
                    key_pem=key_pem)
