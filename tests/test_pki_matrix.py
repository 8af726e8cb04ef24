"""The certificate matrix yields certificates with the property each entry names."""

from datetime import datetime, timezone

import pytest
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from conformance.codec import certs
from conformance.pki import TestPKI
from conformance.pki_matrix import BY_NAME, MATRIX, identity


@pytest.fixture(scope="module")
def pki(pki_dir):
    return TestPKI.ensure(pki_dir)


@pytest.mark.parametrize("entry", MATRIX, ids=[e.name for e in MATRIX])
def test_matrix_entry_has_its_defect(pki, entry):
    ident = identity(pki, entry)
    now = datetime.now(timezone.utc)
    anchors = [pki.root_ca]
    validity = certs.validity_problem(ident.cert, now)
    chain = certs.chain_problem(ident.cert, ident.chain, anchors, now)
    key = certs.key_problem(ident.cert)
    tax = certs.tax_code_of(ident.cert)
    facts = {
        "G0002": validity is not None,
        "G0004": chain is not None,
        "G0008": key is not None,
        "G0006": tax != pki.tax_code,
        "G0003": ident.cert.serial_number in {r.serial_number for r in pki.crl} if entry.name == "revoked" else False,
    }
    expected = entry.expected_code
    for code, present in facts.items():
        if code == expected:
            assert present, f"{entry.name} should show {code}"
        elif code != "G0003":
            assert not present, f"{entry.name} unexpectedly shows {code}"


def test_ecdsa_and_rsa_entries_use_the_right_keys(pki):
    assert isinstance(identity(pki, BY_NAME["ecdsa-p256"]).cert.public_key(), ec.EllipticCurvePublicKey)
    assert identity(pki, BY_NAME["rsa-1024"]).cert.public_key().key_size == 1024
    assert isinstance(identity(pki, BY_NAME["valid"]).cert.public_key(), rsa.RSAPublicKey)
