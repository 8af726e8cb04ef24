"""The gateway's side of §8 from a plain client: every certificate of the matrix (``pki_matrix``) gets
exactly the code ECDI assigns it (Table 8-2 order), SHA-1 is W0001 in 1.0 and G0007 in 1.1
(SIG-06/07), and signature-wrapping attempts are G0001 (SIG-05).

The matrix is data shared with the DTS-side cases and the report, so a new entry is tested here
without a new test. Requests are built and signed by the plain wire client of ``test_gateway``.
"""

from __future__ import annotations


import pytest
from lxml import etree

from conformance import pki_matrix
from conformance.evaluation_order import WRAPPINGS
from conformance.codec import safexml, xmlsig
from conformance.codec.envelope import Header, build_envelope, content_child, read_header
from conformance.codec.namespaces import DS, q
from mock_server import Account, GatewayConfig, run_in_thread
from test_gateway import PASSWORD, TIME_SCALE, USER, Client, case, control, parse_reply, pki  # noqa: F401 — fixtures


@pytest.fixture(scope="module")
def matrix(pki) -> dict[str, object]:
    """Each matrix entry's identity (issued once, cached in the session's PKI folder)."""
    return {entry.name: pki_matrix.identity(pki, entry) for entry in pki_matrix.MATRIX}


def branch(pki, n: int) -> str:
    """The tax code of the declarant's n-th branch (SIG-09: ``NNNNNNNNNN-NNN``)."""
    return f"{pki.tax_code}-{n:03d}"


@pytest.fixture(scope="module")
def gateway(pki, matrix, tmp_path_factory):
    """Profiles 1.0 and 1.1 side by side; every matrix certificate marked ``registered`` is registered
    (SIG-11) for the declarant's tax code, so only the defect the entry names can fail."""
    folder = tmp_path_factory.mktemp("gateway-signature-matrix")
    registered = [pki.declarant.cert] + [matrix[e.name].cert for e in pki_matrix.MATRIX if e.registered]
    running = run_in_thread(GatewayConfig(
        profiles=["ecdi-1.0", "ecdi-1.1"], pki_folder=pki.folder, evidence_db=folder / "evidence.sqlite3",
        time_scale=TIME_SCALE, accounts=[Account(USER, PASSWORD, [pki.tax_code])],
        registered_certs={pki.tax_code: registered, branch(pki, 1): [pki.declarant.cert]},
    ))
    yield running
    running.stop()


@pytest.fixture(scope="module")
def client(gateway, pki) -> Client:
    return Client(gateway, pki)


def outcome(client: Client, text: bytes) -> tuple[str, str, list[str]]:
    """(reply function, resultCode, every Error/code) of the gateway's answer to ``text``."""
    _, reply = client.send(text)
    header, result = parse_reply(reply)
    return header.function, result.result_code, [e.code for e in result.errors]


@pytest.mark.parametrize("entry", pki_matrix.MATRIX, ids=[e.name for e in pki_matrix.MATRIX])
def test_each_matrix_certificate_gets_its_code(client, case, matrix, entry):
    signer = matrix[entry.name].signer()
    method = xmlsig.ECDSA_SHA256 if entry.capability == "ecdsa" else xmlsig.RSA_SHA256
    function, code, codes = outcome(client, client.message(signer=signer, signature_method=method))
    if entry.expected_code is None:
        assert (function, code) == ("29", "00000"), codes
    else:
        assert (function, code) == ("271", entry.expected_code), codes
        assert [c for c in codes if not c.startswith("W")] == [entry.expected_code], "only the first failing check"


def test_a_branch_signs_with_its_parents_certificate_registered_for_it(client, case, pki):
    """SIG-09: the parent's certificate covers From/identity ``<parent>-NNN``; SIG-11: only where it is
    registered for that branch (G0005 otherwise)."""
    function, code, codes = outcome(client, client.message(from_identity=branch(pki, 1)))
    assert (function, code) == ("29", "00000"), codes
    assert outcome(client, client.message(from_identity=branch(pki, 2)))[:2] == ("271", "G0005")


def test_a_branch_certificate_does_not_cover_its_parent(client, case, pki):
    """The branch rule is one-way: a certificate for ``<parent>-001`` signing for the parent is G0006."""
    branch_identity = pki.issue_declarant("matrix-branch-001", branch(pki, 1))
    assert outcome(client, client.message(signer=branch_identity.signer()))[:2] == ("271", "G0006")


def unsigned(text: bytes) -> etree._Element:
    root = safexml.parse_message_text(text)
    root.remove(root.find(q(DS, "Signature")))
    return root


def resigned_as_1_1(client: Client, *, signature_method: str, digest_method: str) -> bytes:
    """The client's 1.0 request made a 1.1 one (Reference/version, mandatory certificationId) and signed."""
    root = unsigned(client.message())
    fields = dict(read_header(root).fields, **{"Reference/version": "1.1",
                                               "SendApplication/certificationId": "ECDI-0000-00000"})
    return xmlsig.sign_envelope(build_envelope(Header(fields), content_child(root)), client.pki.declarant.signer(),
                                signature_method=signature_method, digest_method=digest_method)


def test_sha1_is_accepted_with_W0001_in_1_0(client, case):
    assert outcome(client, client.message(signature_method=xmlsig.RSA_SHA1, digest_method=xmlsig.SHA1)) == (
        "29", "00000", ["W0001"])


@pytest.mark.parametrize("method,digest", [(xmlsig.RSA_SHA1, xmlsig.SHA1), (xmlsig.RSA_SHA256, xmlsig.SHA1),
                                           (xmlsig.RSA_SHA1, xmlsig.SHA256)], ids=["both", "digest", "method"])
def test_sha1_is_G0007_in_1_1(client, case, method, digest):
    function, code, _ = outcome(client, resigned_as_1_1(client, signature_method=method, digest_method=digest))
    assert (function, code) == ("271", "G0007")


def test_sha256_in_1_1_is_accepted(client, case):
    """The 1.1 request builder itself is sound: with SHA-256 the same request is recorded."""
    function, code, codes = outcome(client, resigned_as_1_1(client, signature_method=xmlsig.RSA_SHA256,
                                                            digest_method=xmlsig.SHA256))
    assert (function, code) == ("29", "00000"), codes


# ------------------------------------------------------------------------------------------
# Signature wrapping (SIG-05): the signed bytes must be the bytes acted on. Each attempt keeps the
# envelope itself valid (Table 7-3 step 7), so only the signature step can refuse it. The attempts are
# the CGW cases' own (``evaluation_order.WRAPPINGS``).


@pytest.mark.parametrize("attack", WRAPPINGS, ids=lambda w: w.make.__name__)
def test_signature_wrapping_is_G0001(client, case, attack):
    genuine = client.message()
    assert outcome(client, client.message())[:2] == ("29", "00000")   # the client's requests are sound
    assert outcome(client, attack.make(genuine))[:2] == ("271", "G0001")


def test_without_a_current_crl_the_answer_is_E9001(client, control, case):
    """SIG-10: when the issuing CA's CRL has passed its nextUpdate (the gateway clock moved beyond it),
    the gateway neither accepts nor refuses the certificate: 271 E9001, a retryable server condition."""
    from datetime import datetime, timedelta, timezone

    from conformance.pki import CRL_LIFETIME

    ahead = (CRL_LIFETIME + timedelta(days=1)).total_seconds()
    control.advance_clock(ahead)
    try:
        text = client.message(issued=datetime.now(timezone.utc) + timedelta(seconds=ahead))
        assert outcome(client, text)[:2] == ("271", "E9001")
    finally:
        control.advance_clock(-ahead)
    assert outcome(client, client.message())[:2] == ("29", "00000")   # a current CRL again: recorded
