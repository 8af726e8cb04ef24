"""The test PKI (generation, cache, files) and the certificate facts of Table 8-2 (``codec.certs``)."""

from __future__ import annotations

import json
import shutil
from datetime import datetime, timedelta, timezone

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import pkcs12
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from cryptography.x509.verification import PolicyBuilder, Store

import conformance.pki as pki_module
from conformance.codec import certs
from conformance.pki import DECLARANT_COMPANY, TestPKI

NOW = datetime.now(timezone.utc)


@pytest.fixture(scope="session")
def pki(tmp_path_factory) -> TestPKI:
    return TestPKI.ensure(tmp_path_factory.getbasetemp() / "pki")


@pytest.fixture
def private_copy(pki, tmp_path):
    """A copy of the session PKI for tests that change files (cheaper than generating one)."""
    folder = tmp_path / "pki"
    shutil.copytree(pki.folder, folder)
    return folder


def ext(cert: x509.Certificate, kind):
    return cert.extensions.get_extension_for_class(kind)


# ------------------------------------------------------------------------------------------ cache


def test_second_ensure_loads_the_cache(pki):
    meta = pki.folder / TestPKI.META
    stamp = meta.stat().st_mtime_ns
    again = TestPKI.ensure(pki.folder)
    assert meta.stat().st_mtime_ns == stamp
    assert again.root_ca == pki.root_ca
    assert again.declarant.cert == pki.declarant.cert
    assert again.revoked_declarant.cert == pki.revoked_declarant.cert
    assert again.p12_password == pki.p12_password


def test_regenerated_when_parameters_change(private_copy, pki):
    other = TestPKI.ensure(private_copy, tax_code="0109876543")
    assert other.root_ca != pki.root_ca
    assert certs.tax_code_of(other.declarant.cert) == "0109876543"
    assert certs.tax_code_of(other.revoked_declarant.cert) == "0109876543"
    assert json.loads((private_copy / TestPKI.META).read_text())["params"]["tax_code"] == "0109876543"


def test_regenerated_when_a_file_is_missing(private_copy, pki):
    (private_copy / "declarant.p12").unlink()
    regenerated = TestPKI.ensure(private_copy)
    assert regenerated.declarant.cert != pki.declarant.cert
    assert (private_copy / "declarant.p12").is_file()


def test_stale_crl_is_reissued_with_its_entries(private_copy, pki, monkeypatch):
    later = pki_module._now() + pki_module.CRL_LIFETIME - timedelta(hours=12)
    monkeypatch.setattr(pki_module, "_now", lambda: later)
    refreshed = TestPKI.ensure(private_copy)
    assert refreshed.declarant.cert == pki.declarant.cert  # no regeneration, only a new CRL
    assert refreshed.crl.next_update_utc > later + timedelta(days=29)
    number = lambda crl: ext(crl, x509.CRLNumber).value.crl_number  # noqa: E731
    assert number(refreshed.crl) > number(pki.crl)
    assert refreshed.crl.get_revoked_certificate_by_serial_number(pki.revoked_declarant.cert.serial_number)


def test_a_run_with_another_tax_code_keeps_the_cas_and_gets_its_own_declarant(private_copy, pki):
    """Per-run tax codes (anti-gaming) issue a declarant per tax code, not a new PKI."""
    base = TestPKI.ensure(private_copy)
    run = base.for_tax_code("4512345670")
    assert base.for_tax_code(base.tax_code) is base
    assert (run.tax_code, run.declarant_tax_code, run.root_ca) == ("4512345670", "4512345670", base.root_ca)
    assert certs.tax_code_of(run.declarant.cert) == "4512345670" and run.declarant.p12.is_file()
    assert certs.chain_problem(run.declarant.cert, [base.declarant_ca], [base.root_ca], NOW) is None
    crl = x509.load_der_x509_crl(base.crl_der.read_bytes())
    assert crl.get_revoked_certificate_by_serial_number(run.revoked_declarant.cert.serial_number)
    assert crl.get_revoked_certificate_by_serial_number(base.revoked_declarant.cert.serial_number)  # kept
    assert base.declarant.cert == TestPKI.ensure(private_copy).declarant.cert          # nothing regenerated
    assert TestPKI.ensure(private_copy).for_tax_code("4512345670").declarant.cert == run.declarant.cert  # cached


def test_a_revocation_by_another_process_is_kept_when_the_crl_is_reissued(private_copy):
    """Two runs sharing a PKI folder (pytest-xdist, ``--pki-dir``) each revoke a certificate: the CRL is
    read again under the folder lock before it is reissued, so neither revocation is lost."""
    first, second = TestPKI.ensure(private_copy), TestPKI.ensure(private_copy)   # both load the same CRL
    a = first.issue_declarant("revoked-by-a", first.tax_code, revoked=True)
    b = second.issue_declarant("revoked-by-b", second.tax_code, revoked=True)
    crl = x509.load_der_x509_crl((private_copy / TestPKI.CRL).read_bytes())
    assert crl.get_revoked_certificate_by_serial_number(a.cert.serial_number)
    assert crl.get_revoked_certificate_by_serial_number(b.cert.serial_number)


# ------------------------------------------------------------------------------------------ contents


def test_declarant_certificate(pki):
    cert = pki.declarant.cert
    uid = cert.subject.get_attributes_for_oid(x509.ObjectIdentifier("0.9.2342.19200300.100.1.1"))
    assert [a.value for a in uid] == ["MST:0312345678"]
    assert cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == DECLARANT_COMPANY
    assert cert.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)[0].value == DECLARANT_COMPANY
    usage = ext(cert, x509.KeyUsage)
    assert usage.critical and usage.value.digital_signature and usage.value.content_commitment
    assert cert.public_key().key_size == 2048
    assert certs.crl_urls(cert) == [pki.crl_url] == [f"http://127.0.0.1:{pki.crl_port}/crl/declarant-ca.crl"]
    assert cert.issuer == pki.declarant_ca.subject
    assert cert.not_valid_before_utc == pki.start
    assert cert.not_valid_after_utc == pki.start + pki_module.LEAF_LIFETIME
    assert certs.validity_problem(cert, NOW) is None
    assert certs.key_problem(cert) is None
    assert certs.tax_code_of(cert) == pki.tax_code
    assert pki.declarant.chain == [pki.declarant_ca]


@pytest.mark.parametrize("attr", ["root_ca", "declarant_ca", "sign_anchor", "tls_ca"])
def test_ca_certificates(pki, attr):
    cert = getattr(pki, attr)
    constraints = ext(cert, x509.BasicConstraints)
    assert constraints.critical and constraints.value.ca
    usage = ext(cert, x509.KeyUsage).value
    assert usage.key_cert_sign and usage.crl_sign
    ski = ext(cert, x509.SubjectKeyIdentifier).value
    assert ext(cert, x509.AuthorityKeyIdentifier).value.key_identifier
    assert cert.not_valid_after_utc - cert.not_valid_before_utc >= timedelta(days=3650)
    if attr == "declarant_ca":
        assert ext(cert, x509.AuthorityKeyIdentifier).value.key_identifier == \
            ext(pki.root_ca, x509.SubjectKeyIdentifier).value.digest
    else:
        assert cert.issuer == cert.subject and ski.digest


def test_ca_names(pki):
    cn = lambda c: c.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value  # noqa: E731
    assert [cn(pki.root_ca), cn(pki.declarant_ca), cn(pki.sign_anchor)] == [
        "ECDI Test Root CA", "ECDI Test Declarant CA", "ECDI Test Gateway Signing CA"]


def test_gateway_signer_is_under_the_sign_anchor_only(pki):
    cert = pki.gateway_signer.cert
    assert ext(cert, x509.KeyUsage).value.digital_signature
    assert certs.chain_problem(cert, [], [pki.sign_anchor], NOW) is None
    assert certs.chain_problem(cert, [], [pki.root_ca], NOW) is not None
    assert certs.chain_problem(pki.declarant.cert, [pki.declarant_ca], [pki.sign_anchor], NOW) is not None
    assert pki.gateway_signer.key_pem.is_file() and pki.gateway_signer.p12 is None


def test_tls_server_certificate(pki):
    cert = pki.tls_server.cert
    assert ext(cert, x509.ExtendedKeyUsage).value == x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH])
    store = Store([pki.tls_ca])
    for subject in (x509.DNSName("localhost"), x509.IPAddress(__import__("ipaddress").ip_address("127.0.0.1"))):
        PolicyBuilder().store(store).build_server_verifier(subject).verify(cert, [])
    key = serialization.load_pem_private_key(pki.tls_server.key_pem.read_bytes(), None)
    assert key.public_key() == cert.public_key()


def test_bundle_files(pki):
    assert certs.load_pem_chain(pki.trust_list_pem) == [pki.root_ca]
    assert certs.load_pem_chain(pki.sign_anchor_pem) == [pki.sign_anchor]
    assert certs.load_pem_chain(pki.tls_ca_pem) == [pki.tls_ca]
    assert certs.load_pem_chain(pki.declarant_chain_pem) == [pki.declarant.cert, pki.declarant_ca]
    assert x509.load_der_x509_crl(pki.crl_der.read_bytes()) == pki.crl
    assert certs.crl_file_name(pki.crl_url) == pki.crl_der.name


def test_load_pem_chain_refuses_a_file_without_certificates(pki, tmp_path):
    empty = tmp_path / "empty.pem"
    empty.write_text("nothing here\n")
    with pytest.raises(ValueError, match="no readable PEM certificate"):
        certs.load_pem_chain(empty)


def test_declarant_key_exists_only_in_the_encrypted_p12(pki):
    data = pki.declarant.p12.read_bytes()
    with pytest.raises((ValueError, TypeError)):
        pkcs12.load_key_and_certificates(data, None)
    with pytest.raises(ValueError):
        pkcs12.load_key_and_certificates(data, b"wrong password")
    key, cert, extra = pkcs12.load_key_and_certificates(data, pki.p12_password.encode())
    assert cert == pki.declarant.cert and extra == [pki.declarant_ca]
    assert key.public_key() == cert.public_key()
    assert pki.declarant.key_pem is None
    for path in pki.folder.rglob("*"):  # no unencrypted copy of a declarant key anywhere
        if path.is_file() and b"PRIVATE KEY" in path.read_bytes():
            loaded = serialization.load_pem_private_key(path.read_bytes(), None)
            assert loaded.public_key() != cert.public_key(), path


def test_identity_signer_chain(pki):
    signer = pki.declarant.signer()
    assert signer.chain == [pki.declarant.cert, pki.declarant_ca]
    assert signer.key is pki.declarant.key


# ------------------------------------------------------------------------------------------ issue_declarant


def test_issue_declarant_is_cached_by_its_parameters(pki):
    first = pki.issue_declarant("cache-probe", "0312345678-001")
    assert pki.issue_declarant("cache-probe", "0312345678-001").cert == first.cert
    changed = pki.issue_declarant("cache-probe", "0312345678-001", rsa_bits=3072)
    assert changed.cert != first.cert and changed.cert.public_key().key_size == 3072
    assert certs.tax_code_of(first.cert) == "0312345678-001"
    assert first.p12.parent.name == "declarants" and first.chain_pem.is_file()


def test_issue_declarant_refuses_unknown_variants_and_names(pki):
    with pytest.raises(TypeError, match="unknown variant"):
        pki.issue_declarant("x", pki.tax_code, colour="blue")
    with pytest.raises(ValueError):
        pki.issue_declarant("../escape", pki.tax_code)
    with pytest.raises(ValueError, match="unknown key usage"):
        pki.issue_declarant("x", pki.tax_code, key_usage={"sign_everything"})


def test_revoked_identity_is_in_the_crl_file(pki):
    serial = pki.revoked_declarant.cert.serial_number
    crl = x509.load_der_x509_crl(pki.crl_der.read_bytes())
    assert crl.get_revoked_certificate_by_serial_number(serial) is not None
    assert crl.is_signature_valid(pki.declarant_ca.public_key())
    assert crl.next_update_utc > NOW
    newly = pki.issue_declarant("revoked-2", pki.tax_code, revoked=True)
    assert certs.revoked(newly.cert, [pki.crl], issuer=pki.declarant_ca)
    assert certs.revoked(pki.revoked_declarant.cert, [pki.crl], issuer=pki.declarant_ca)  # earlier entry kept


@pytest.mark.parametrize("variant, expected", [
    (dict(key_usage=None), "no keyUsage"),
    (dict(key_usage={"key_encipherment"}), "neither digitalSignature nor nonRepudiation"),
    (dict(rsa_bits=1024), "RSA key of 1024 bits"),
    (dict(ec="p-384"), "only P-256"),
    (dict(ec=True), None),
    (dict(key_usage={"non_repudiation"}), None),
    (dict(key_usage={"digital_signature"}), None),
], ids=["no-ku", "ku-encipher", "rsa1024", "p384", "p256", "nr-only", "ds-only"])
def test_key_problem(pki, request, variant, expected):
    identity = pki.issue_declarant("key-" + request.node.callspec.id, pki.tax_code, **variant)
    problem = certs.key_problem(identity.cert)
    assert (problem is None) if expected is None else (expected in problem), problem


# ------------------------------------------------------------------------------------------ SIG-09


@pytest.mark.parametrize("uid, expected", [
    (None, None),
    (["MST:0312345678", "MST:0312345679"], None),
    (["MST:0312345678", "CMND:012345678901"], "0312345678"),
    ("MST:03123456", None),
    ("MST:0312345678-002", "0312345678-002"),
], ids=["absent", "two-mst", "other-uid-ignored", "not-a-tax-code", "branch-cert"])
def test_tax_code_of(pki, request, uid, expected):
    identity = pki.issue_declarant("uid-" + request.node.callspec.id, pki.tax_code, uid=uid)
    assert certs.tax_code_of(identity.cert) == expected
    assert (certs.tax_code_problem(identity.cert, "0312345678") is None) == (expected == "0312345678")


@pytest.mark.parametrize("cert_code, identity, ok", [
    ("0312345678", "0312345678", True),
    ("0312345678", "0312345678-001", True),   # branch signing with its parent's certificate
    ("0312345678", "0312345678-01", False),
    ("0312345678", "0312345678-0001", False),
    ("0312345678", "0312345678-٠٠١", False),  # Arabic-Indic digits are not [0-9]
    ("0312345678-001", "0312345678", False),  # a branch certificate does not cover the parent
    ("0312345678-001", "0312345678-001", True),
    ("0312345678-001", "0312345678-002", False),
    ("0312345678", "0312345679", False),
    (None, "0312345678", False),
])
def test_tax_code_matches(cert_code, identity, ok):
    assert certs.tax_code_matches(cert_code, identity) is ok


def test_tax_code_problem_wording(pki):
    assert "not 0109876543" in certs.tax_code_problem(pki.declarant.cert, "0109876543")
    assert certs.tax_code_problem(pki.declarant.cert, "0312345678-123") is None


# ------------------------------------------------------------------------------------------ chain and validity


def test_trusted_chain(pki):
    assert certs.chain_problem(pki.declarant.cert, [pki.declarant_ca], [pki.root_ca], NOW) is None


def test_missing_intermediate_breaks_the_chain(pki):
    assert certs.chain_problem(pki.declarant.cert, [], [pki.root_ca], NOW) is not None


def test_no_anchor(pki):
    assert certs.chain_problem(pki.declarant.cert, [pki.declarant_ca], [], NOW) == "no trust anchor configured"


def test_look_alike_ca_is_untrusted(pki):
    rogue = pki.issue_declarant("rogue-signed", pki.tax_code, issuer="rogue")
    assert rogue.cert.issuer == pki.declarant_ca.subject  # same names, other keys
    problem = certs.chain_problem(rogue.cert, rogue.chain, [pki.root_ca], NOW)
    assert problem and "trust anchor" in problem
    # even when the genuine intermediate is offered too
    assert certs.chain_problem(rogue.cert, [*rogue.chain, pki.declarant_ca], [pki.root_ca], NOW) is not None
    assert certs.key_problem(rogue.cert) is None and certs.tax_code_of(rogue.cert) == pki.tax_code



def test_remembered_checks_are_of_the_very_certificates_checked(pki):
    """The gateway remembers what a certificate's and a chain's signatures showed: never across look-alikes."""
    rogue = pki.issue_declarant("rogue-signed", pki.tax_code, issuer="rogue")
    for _ in range(2):
        assert certs.chain_problem(pki.declarant.cert, [pki.declarant_ca], [pki.root_ca], NOW) is None
        assert certs.chain_problem(rogue.cert, [*rogue.chain, pki.declarant_ca], [pki.root_ca], NOW) is not None
        assert certs.chain_problem(pki.declarant.cert, [], [pki.root_ca], NOW) is not None
        assert certs.issuer_of(rogue.cert, [pki.declarant_ca]) is None
        assert certs.issuer_of(pki.declarant.cert, [*rogue.chain, pki.declarant_ca]) is pki.declarant_ca
    again = x509.load_der_x509_certificate(pki.declarant.cert.public_bytes(serialization.Encoding.DER))
    assert certs.chain_problem(again, [pki.declarant_ca], [pki.root_ca], NOW) is None
    assert certs.chain_problem(again, [pki.declarant_ca], [], NOW) == "no trust anchor configured"

def test_expired_certificate_is_expired_not_untrusted(pki):
    expired = pki.issue_declarant("expired", pki.tax_code, not_before=pki.start,
                                  not_after=pki.start + timedelta(hours=1))
    assert certs.validity_problem(expired.cert, NOW).startswith("expired")
    assert certs.chain_problem(expired.cert, expired.chain, [pki.root_ca], NOW) is None


def test_not_yet_valid_certificate(pki):
    future = pki.issue_declarant("not-yet-valid", pki.tax_code, not_before=pki.start + timedelta(days=400))
    assert certs.validity_problem(future.cert, NOW).startswith("not yet valid")
    assert certs.chain_problem(future.cert, future.chain, [pki.root_ca], NOW) is None


def test_tester_clock_far_ahead(pki):
    """§2.1: with the gateway clock 5 years on, the declarant is expired but still chains."""
    later = pki.start + timedelta(days=5 * 365)
    assert certs.validity_problem(pki.declarant.cert, later).startswith("expired")
    assert certs.chain_problem(pki.declarant.cert, [pki.declarant_ca], [pki.root_ca], later) is None


def test_validity_bounds_are_inclusive(pki):
    cert = pki.declarant.cert
    assert certs.validity_problem(cert, cert.not_valid_before_utc) is None
    assert certs.validity_problem(cert, cert.not_valid_after_utc) is None
    assert certs.validity_problem(cert, cert.not_valid_after_utc + timedelta(seconds=1)).startswith("expired")
    assert certs.validity_problem(cert, cert.not_valid_before_utc.replace(tzinfo=None) - timedelta(seconds=1)) \
        .startswith("not yet valid")  # naive datetimes are UTC


# ------------------------------------------------------------------------------------------ revocation


def test_revocation_states(pki):
    assert certs.revoked(pki.revoked_declarant.cert, [pki.crl], issuer=pki.declarant_ca) is True
    assert certs.revoked(pki.declarant.cert, [pki.crl], issuer=pki.declarant_ca) is False
    status = certs.revocation_status(pki.declarant.cert, [pki.crl], issuer=pki.declarant_ca)
    assert status.state is certs.RevocationState.GOOD


def test_no_crl_is_no_usable_crl(pki):
    with pytest.raises(certs.NoUsableCRL, match="no CRL available"):
        certs.revoked(pki.declarant.cert, [], issuer=pki.declarant_ca)


def test_stale_crl_is_not_used(pki):
    after_next_update = pki.crl.next_update_utc + timedelta(minutes=1)
    with pytest.raises(certs.NoUsableCRL, match="nextUpdate"):
        certs.revoked(pki.revoked_declarant.cert, [pki.crl], issuer=pki.declarant_ca, at=after_next_update)


def test_crl_signed_by_another_key_is_not_used(pki):
    """A CRL naming the declarant CA but signed by some other key must not count as evidence."""
    forger = ec.generate_private_key(ec.SECP256R1())
    forged = (x509.CertificateRevocationListBuilder().issuer_name(pki.declarant_ca.subject)
              .last_update(pki.start).next_update(NOW + timedelta(days=1)).sign(forger, hashes.SHA256()))
    check = certs.revocation_status(pki.revoked_declarant.cert, [forged], issuer=pki.declarant_ca)
    assert check.state is certs.RevocationState.UNKNOWN and "signature" in check.reason
    # a forged "clean" CRL next to the genuine one does not hide the revocation
    assert certs.revoked(pki.revoked_declarant.cert, [forged, pki.crl], issuer=pki.declarant_ca)


def test_crl_of_another_issuer_is_not_used(pki):
    check = certs.revocation_status(pki.declarant.cert, [pki.crl], issuer=pki.root_ca)
    assert check.state is certs.RevocationState.UNKNOWN
    with pytest.raises(certs.NoUsableCRL, match="not available"):
        certs.revoked(pki.declarant.cert, [pki.crl], issuer=None)


def test_declarant_name_and_tax_code(pki):
    assert (pki.declarant_name, pki.declarant_tax_code) == (DECLARANT_COMPANY, "0312345678")


def test_issuer_of(pki):
    rogue = pki.issue_declarant("rogue-signed", pki.tax_code, issuer="rogue")
    candidates = [*rogue.chain, pki.declarant_ca]
    assert certs.issuer_of(pki.declarant.cert, candidates) == pki.declarant_ca
    assert certs.issuer_of(rogue.cert, [pki.declarant_ca]) is None
