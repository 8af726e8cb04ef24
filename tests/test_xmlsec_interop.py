"""Cross-implementation checks of Table 8-1 with the independent ``xmlsec1`` command-line tool
(libxmlsec1 over OpenSSL, Debian package ``xmlsec1``; ``.ci/run`` installs it).

signxml signs and verifies on both sides of our wire; if it and our profile checks shared a
misreading of XMLDSig, every other test would still pass. Here another implementation signs a
request the gateway must accept (SIG-05, SIG-08), and verifies the gateway's reply signature
(SIG-14) and a request signed by the reference DTS's own signing code (SIG-01).
"""

from __future__ import annotations

import shutil
import subprocess
from datetime import datetime, timezone
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.serialization import BestAvailableEncryption, pkcs12
from lxml import etree

from conformance.codec import safexml, xmlsig
from conformance.codec.namespaces import DS, q
from conformance.reference_dts.signing import SigningKey
from test_gateway import case, client, control, gateway, parse_reply, pki  # noqa: F401 — fixtures

pytestmark = pytest.mark.skipif(shutil.which("xmlsec1") is None,
                                reason="xmlsec1 is not installed (Debian package xmlsec1; .ci/run installs it)")

# Table 8-1 as an xmlsec1 template: an empty ds:Signature, last child of the Envelope; xmlsec1 fills in
# DigestValue, SignatureValue and the certificate.
TEMPLATE = f"""<ds:Signature xmlns:ds="{DS}"><ds:SignedInfo>
<ds:CanonicalizationMethod Algorithm="{xmlsig.EXC_C14N}"/><ds:SignatureMethod Algorithm="{xmlsig.RSA_SHA256}"/>
<ds:Reference URI=""><ds:Transforms><ds:Transform Algorithm="{xmlsig.ENVELOPED}"/>
<ds:Transform Algorithm="{xmlsig.EXC_C14N}"/></ds:Transforms><ds:DigestMethod Algorithm="{xmlsig.SHA256}"/>
<ds:DigestValue/></ds:Reference></ds:SignedInfo><ds:SignatureValue/>
<ds:KeyInfo><ds:X509Data><ds:X509Certificate/></ds:X509Data></ds:KeyInfo></ds:Signature>"""


def xmlsec1(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["xmlsec1", *args], capture_output=True, text=True, timeout=30)


def verify_with_xmlsec1(text: bytes, trusted: Path, folder: Path) -> subprocess.CompletedProcess:
    """``xmlsec1 --verify`` trusting only ``trusted``; only the same-document reference "" is allowed."""
    path = folder / "signed.xml"
    path.write_bytes(text)
    return xmlsec1("--verify", "--trusted-pem", str(trusted), "--enabled-reference-uris", "empty", str(path))


@pytest.fixture
def signer_only_p12(pki, tmp_path) -> tuple[Path, str]:
    """The declarant's key and certificate alone in a PKCS#12.

    Given the declarant's own PKCS#12 (signer and issuing CA), xmlsec1 1.2 writes the CA's certificate
    *before* the signer's, which Table 8-1 forbids ("signer first"). The gateway knows the issuing CA
    (Table 8-2: intermediates "known to the CGW"), so the signer's certificate alone is enough.
    """
    key, cert, _ = pkcs12.load_key_and_certificates(pki.declarant.p12.read_bytes(), pki.p12_password.encode())
    password = "xmlsec1-interop"
    path = tmp_path / "signer-only.p12"
    path.write_bytes(pkcs12.serialize_key_and_certificates(b"declarant", key, cert, None,
                                                           BestAvailableEncryption(password.encode())))
    return path, password


def test_a_request_signed_by_xmlsec1_is_accepted(client, case, signer_only_p12, tmp_path):
    p12, password = signer_only_p12
    root = safexml.parse_message_text(client.message())
    root.remove(root.find(q(DS, "Signature")))                        # the client's content, unsigned
    root.append(etree.fromstring(TEMPLATE))
    template = tmp_path / "template.xml"
    template.write_bytes(xmlsig.XML_DECLARATION + etree.tostring(root, encoding="UTF-8"))
    signed = tmp_path / "signed-by-xmlsec1.xml"
    run = xmlsec1("--sign", "--pkcs12", str(p12), "--pwd", password, "--output", str(signed), str(template))
    assert run.returncode == 0, run.stderr
    text = signed.read_bytes()
    assert b"\n" in text.split(b"<ds:SignatureValue>")[1].split(b"</ds:SignatureValue>")[0], \
        "xmlsec1 wraps base64 lines: the gateway must accept white space inside base64 values (SIG-05)"
    header, result = parse_reply(client.send(text)[1])
    assert (header.function, result.result_code) == ("29", "00000"), result.errors


def test_the_gateways_reply_signature_verifies_with_xmlsec1(client, case, pki, tmp_path):
    """SIG-14: RSA-SHA256 per Table 8-1 by a certificate under cgw_sign_anchor — and nothing else trusted."""
    _, reply = client.send(client.message())
    run = verify_with_xmlsec1(reply, pki.sign_anchor_pem, tmp_path)
    assert run.returncode == 0 and "OK" in run.stdout + run.stderr, run.stderr
    refused = verify_with_xmlsec1(reply, pki.trust_list_pem, tmp_path)    # the declarant anchors do not do
    assert refused.returncode != 0


def test_a_reference_dts_request_verifies_with_xmlsec1(client, pki, tmp_path):
    """SIG-01: the reference DTS's signing code (SigningKey over its encrypted PKCS#12) makes a signature
    that xmlsec1 verifies with ca_trust_list as the only anchor; one altered byte makes it fail."""
    key = SigningKey(pki.declarant.p12, pki.p12_password, trust_list_pem=pki.trust_list_pem, crl_dir=pki.folder)
    key.check(pki.tax_code, datetime.now(timezone.utc))
    root = safexml.parse_message_text(client.message())
    root.remove(root.find(q(DS, "Signature")))
    text = key.sign(root, signature_method=xmlsig.RSA_SHA256, digest_method=xmlsig.SHA256)
    run = verify_with_xmlsec1(text, pki.trust_list_pem, tmp_path)
    assert run.returncode == 0 and "OK" in run.stdout + run.stderr, run.stderr
    tampered = text.replace("Máy tính".encode(), "Máy tinh".encode(), 1)
    assert verify_with_xmlsec1(tampered, pki.trust_list_pem, tmp_path).returncode != 0
