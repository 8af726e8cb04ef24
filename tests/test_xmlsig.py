"""Table 8-1 signatures: sign_envelope output, the structural profile check and verify_envelope.

Variants that are cryptographically valid but structurally wrong are signed with signxml directly
(other options), so that they can only be caught by the profile check; edited variants check that
a deviation is reported whatever else breaks.
"""

from __future__ import annotations

import base64
import random
import re
import shutil
import subprocess
from datetime import timedelta

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric.padding import PKCS1v15
from lxml import etree
from signxml import CanonicalizationMethod, DigestAlgorithm, SignatureMethod, XMLSigner

from conformance.codec import xmlsig
from conformance.codec.namespaces import DS, ENV
from conformance.codec.safexml import XmlRefused
from conformance.pki import TestPKI

# Annex B request (profile 1.1) without its signature; its white space is signed text.
UNSIGNED = """<?xml version="1.0" encoding="UTF-8"?>
<Envelope xmlns="urn:ecdi:envelope:1">
  <Header><procedureType>1</procedureType>
    <Reference><version>1.1</version><messageId>3f2b8c1e-7a4d-4e2f-9b1a-5c6d7e8f9a0b</messageId></Reference>
    <SendApplication><name>ViDu-Customs</name><version>3.2.1</version>
      <companyName>Công ty Cổ phần Phần mềm Ví Dụ</companyName><companyIdentity>0109876543</companyIdentity>
      <createMessageIssue>2025-03-14T09:15:02+07:00</createMessageIssue><certificationId>ECDI-2025-00042</certificationId>
    </SendApplication>
    <From><name>Công ty TNHH Thương mại Hải Đăng</name><identity>0312345678</identity></From>
    <To><name>Chi cục Hải quan 03TG</name><identity>03TG</identity></To>
    <Subject><type>929</type><function>8</function><reference>HD-2025/0315</reference>
      <sendApplication>6a1c0b7e-2d3f-4c5b-8e9a-0f1e2d3c4b5a</sendApplication><receiveApplication>CGW</receiveApplication></Subject>
  </Header>
  <Body><Content>
    <Declaration xmlns="urn:ecdi:declaration:1">
      <typeCode>A11</typeCode>
      <Trader><taxCode>0312345678</taxCode><name>Công ty TNHH Thương mại Hải Đăng</name>
        <address>12 Nguyễn Huệ, Quận 1, TP. Hồ Chí Minh</address></Trader>
      <GoodsItem><lineNo>1</lineNo><hsCode>84713020</hsCode><description>Máy tính xách tay, mới 100%</description>
        <originCountry>CN</originCountry><quantity>20</quantity><unit>H87</unit><value>8500</value></GoodsItem>
    </Declaration></Content></Body>
</Envelope>""".encode()

DS_NS = {"ds": DS}
SHA1_OK = dict(methods=(xmlsig.RSA_SHA256, xmlsig.ECDSA_SHA256, xmlsig.RSA_SHA1), digests=(xmlsig.SHA256, xmlsig.SHA1))


@pytest.fixture(scope="session")
def pki(tmp_path_factory) -> TestPKI:
    return TestPKI.ensure(tmp_path_factory.getbasetemp() / "pki")


def unsigned_root() -> etree._Element:
    return etree.fromstring(UNSIGNED)


@pytest.fixture(scope="session")
def signed(pki) -> bytes:
    return xmlsig.sign_envelope(unsigned_root(), pki.declarant.signer())


def parse(data: bytes) -> etree._Element:
    return etree.fromstring(data)


def serialise(root: etree._Element) -> bytes:
    return xmlsig.XML_DECLARATION + etree.tostring(root, encoding="UTF-8")


def signature_of(root: etree._Element) -> etree._Element:
    return root.find("ds:Signature", DS_NS)


def signxml_sign(pki, *, c14n=CanonicalizationMethod.EXCLUSIVE_XML_CANONICALIZATION_1_0,
                 method=SignatureMethod.RSA_SHA256, **sign_options) -> bytes:
    """A cryptographically valid signature made with signxml's own options (not ECDI's)."""
    signer = XMLSigner(signature_algorithm=method, digest_algorithm=DigestAlgorithm.SHA256, c14n_algorithm=c14n)
    identity = pki.declarant
    root = signer.sign(unsigned_root(), key=identity.key, cert=[identity.cert, *identity.chain], **sign_options)
    return serialise(root)


def expect_problem(data: bytes, code: str = "G0001", **kwargs) -> xmlsig.SignatureProblem:
    with pytest.raises(xmlsig.SignatureProblem) as info:
        xmlsig.verify_envelope(data, **kwargs)
    assert info.value.code == code, info.value.reason
    return info.value


# ------------------------------------------------------------------------------------------ signing


def test_round_trip_rsa(pki, signed):
    result = xmlsig.verify_envelope(signed)
    assert result.signer == pki.declarant.cert
    assert result.intermediates == [pki.declarant_ca]
    assert (result.signature_method, result.digest_method) == (xmlsig.RSA_SHA256, xmlsig.SHA256)
    assert not result.uses_sha1
    assert etree.QName(result.signed_root).text == f"{{{ENV}}}Envelope"
    assert result.signed_root.find(".//ds:Signature", DS_NS) is None
    assert result.signed_root.findtext(".//{urn:ecdi:declaration:1}description") == "Máy tính xách tay, mới 100%"


def test_output_is_the_transmittable_message_text(pki, signed):
    assert signed.startswith(b'<?xml version="1.0" encoding="UTF-8"?>\n<Envelope')
    assert "Công ty TNHH Thương mại Hải Đăng".encode() in signed  # raw UTF-8, no character references
    # SIG-02: the signed text keeps every character of the input, signature appended at the end.
    assert signed.startswith(UNSIGNED[: -len(b"</Envelope>")])
    assert signed.endswith(b"</ds:Signature></Envelope>")
    root = parse(signed)
    sig = signature_of(root)
    assert root[-1] is sig
    ref = sig.find("ds:SignedInfo/ds:Reference", DS_NS)
    assert dict(ref.attrib) == {"URI": ""}
    assert [t.get("Algorithm") for t in ref.findall("ds:Transforms/ds:Transform", DS_NS)] == [
        xmlsig.ENVELOPED, xmlsig.EXC_C14N]
    assert sig.find("ds:SignedInfo/ds:CanonicalizationMethod", DS_NS).get("Algorithm") == xmlsig.EXC_C14N
    key_info = sig.find("ds:KeyInfo", DS_NS)
    assert [etree.QName(c).localname for c in key_info] == ["X509Data"]
    certs = key_info.findall("ds:X509Data/ds:X509Certificate", DS_NS)
    assert [base64.b64decode(c.text) for c in certs] == [
        pki.declarant.cert.public_bytes(_der()), pki.declarant_ca.public_bytes(_der())]
    for el in sig.iter():
        assert "\n" not in (el.text or ""), f"line break in {el.tag}"
    assert xmlsig.signature_profile_problems(root) == []


def _der():
    from cryptography.hazmat.primitives.serialization import Encoding
    return Encoding.DER


def test_input_tree_is_not_modified(pki):
    root = unsigned_root()
    before = etree.tostring(root)
    xmlsig.sign_envelope(root, pki.declarant.signer())
    assert etree.tostring(root) == before


def test_signing_a_signed_envelope_is_refused(pki, signed):
    with pytest.raises(ValueError, match="already holds a ds:Signature"):
        xmlsig.sign_envelope(parse(signed), pki.declarant.signer())


def test_ecdsa_p256_round_trip_with_raw_r_s(pki):
    identity = pki.issue_declarant("ecdsa-p256", pki.tax_code, ec=True)
    data = xmlsig.sign_envelope(unsigned_root(), identity.signer(), signature_method=xmlsig.ECDSA_SHA256)
    value = base64.b64decode(signature_of(parse(data)).findtext("ds:SignatureValue", namespaces=DS_NS))
    assert len(value) == 64  # SIG-03: r || s, 32 octets each, not DER (which starts 0x30 and is 70-72 long)
    result = xmlsig.verify_envelope(data)
    assert result.signature_method == xmlsig.ECDSA_SHA256
    assert result.signer == identity.cert


def test_key_and_method_must_match(pki):
    with pytest.raises(ValueError, match="needs an EC key"):
        xmlsig.sign_envelope(unsigned_root(), pki.declarant.signer(), signature_method=xmlsig.ECDSA_SHA256)


def test_signature_from_expired_certificate_still_verifies(pki):
    """Expiry is G0002 (Table 8-2), decided by certs.validity_problem, never G0001 here."""
    expired = pki.issue_declarant("expired-for-xmlsig", pki.tax_code, not_before=pki.start,
                                  not_after=pki.start + timedelta(hours=1))
    data = xmlsig.sign_envelope(unsigned_root(), expired.signer())
    assert xmlsig.verify_envelope(data).signer == expired.cert


# ------------------------------------------------------------------------------------------ G0001


def test_one_changed_character_is_g0001(signed):
    tampered = signed.replace(b"<value>8500</value>", b"<value>8501</value>")
    assert tampered != signed
    problem = expect_problem(tampered)
    assert "InvalidDigest" in problem.reason


def test_changed_signature_value_is_g0001(signed):
    root = parse(signed)
    value = signature_of(root).find("ds:SignatureValue", DS_NS)
    raw = bytearray(base64.b64decode(value.text))
    raw[10] ^= 1
    value.text = base64.b64encode(bytes(raw)).decode()
    expect_problem(serialise(root))


def test_missing_signature_is_g0001():
    assert "no ds:Signature" in expect_problem(UNSIGNED).reason


def _move_signature(signed: bytes, where) -> bytes:
    root = parse(signed)
    sig = signature_of(root)
    where(root, sig)
    return serialise(root)


def _edit(signed: bytes, edit) -> bytes:
    root = parse(signed)
    edit(signature_of(root))
    return serialise(root)


def _extra_reference(sig):
    ref = sig.find("ds:SignedInfo/ds:Reference", DS_NS)
    ref.addnext(etree.fromstring(etree.tostring(ref)))


def _other_transform(sig):
    sig.findall(".//ds:Transform", DS_NS)[1].set("Algorithm", "http://www.w3.org/TR/2001/REC-xml-c14n-20010315")


def _reference_id(sig):
    sig.find(".//ds:Reference", DS_NS).set("Id", "ref-1")


def _key_value(sig):
    key_info = sig.find("ds:KeyInfo", DS_NS)
    etree.SubElement(key_info, f"{{{DS}}}KeyValue")


def _no_certificate(sig):
    data = sig.find("ds:KeyInfo/ds:X509Data", DS_NS)
    for cert in list(data):
        data.remove(cert)


def _signature_object(sig):
    etree.SubElement(sig, f"{{{DS}}}Object")


@pytest.mark.parametrize("edit, reason", [
    (_extra_reference, "SignedInfo contains"),
    (_other_transform, "Transform[2]"),
    (_reference_id, "attribute 'Id'"),
    (_key_value, "KeyInfo contains"),
    (_no_certificate, "X509Data contains nothing"),
    (_signature_object, "ds:Signature contains"),
], ids=["extra-reference", "other-transform", "reference-id", "key-value", "no-certificate", "object"])
def test_edited_signature_deviations_are_g0001(signed, edit, reason):
    assert reason in expect_problem(_edit(signed, edit)).reason


@pytest.mark.parametrize("move, reason", [
    (lambda root, sig: root.find(f"{{{ENV}}}Body").addprevious(sig), "not the last child"),
    (lambda root, sig: root.find(f"{{{ENV}}}Header").append(sig), "not a child of the root"),
    (lambda root, sig: root.append(etree.fromstring(etree.tostring(sig))), "2 ds:Signature elements"),
    (lambda root, sig: sig.addnext(etree.Comment(" after ")), "not the last child"),
], ids=["before-body", "inside-header", "two-signatures", "comment-after"])
def test_misplaced_signature_is_g0001_although_the_value_verifies(signed, move, reason):
    """The enveloped transform removes the signature wherever it stands, so these all verify
    cryptographically; only the placement rule of Table 8-1 catches them."""
    assert reason in expect_problem(_move_signature(signed, move)).reason


def test_misplaced_signature_problem_names_its_path(signed):
    moved = _move_signature(signed, lambda root, sig: root.find(f"{{{ENV}}}Header").append(sig))
    assert expect_problem(moved).field == "/Envelope/Header/Signature"


def test_signature_wrapped_in_another_envelope_is_g0001(signed):
    outer = etree.Element(f"{{{ENV}}}Envelope", nsmap={None: ENV})
    outer.append(etree.fromstring(signed))
    assert "not a child of the root" in expect_problem(serialise(outer)).reason


def test_comment_inside_signed_info_is_g0001(signed):
    data = signed.replace(b"<ds:SignedInfo>", b"<ds:SignedInfo><!-- x -->")
    assert "comment" in expect_problem(data).reason


@pytest.mark.parametrize("options, reason", [
    (dict(inclusive_ns_prefixes=["ds"]), "must be empty"),
    (dict(c14n=CanonicalizationMethod.CANONICAL_XML_1_0), "CanonicalizationMethod Algorithm"),
    (dict(c14n=CanonicalizationMethod.CANONICAL_XML_1_1), "Transform[2] Algorithm"),
    (dict(method=SignatureMethod.RSA_SHA512), "SignatureMethod Algorithm"),
    (dict(always_add_key_value=True), "KeyInfo contains"),
    (dict(key_name="declarant"), "KeyInfo contains"),
], ids=["inclusive-namespaces", "c14n-1.0", "c14n-1.1", "rsa-sha512", "key-value", "key-name"])
def test_crypto_valid_but_structurally_wrong_signatures_are_g0001(pki, options, reason):
    data = signxml_sign(pki, **options)
    problem = expect_problem(data)
    assert reason in problem.reason


def test_signxml_with_ecdi_options_is_accepted(pki):
    """Control for the test above: the same helper with the ECDI options passes."""
    assert xmlsig.verify_envelope(signxml_sign(pki)).signer == pki.declarant.cert


def test_prefixes_are_not_significant(pki):
    """§4.1: a signature in the default namespace instead of ``ds:`` is the same signature."""
    signer = XMLSigner(signature_algorithm=SignatureMethod.RSA_SHA256, digest_algorithm=DigestAlgorithm.SHA256,
                       c14n_algorithm=CanonicalizationMethod.EXCLUSIVE_XML_CANONICALIZATION_1_0)
    signer.namespaces = {None: DS}
    identity = pki.declarant
    data = serialise(signer.sign(unsigned_root(), key=identity.key, cert=[identity.cert, *identity.chain]))
    assert b"<Signature xmlns=" in data
    assert xmlsig.verify_envelope(data).signer == identity.cert


def test_certificate_of_another_key_is_g0001(pki, signed):
    root = parse(signed)
    first = signature_of(root).find("ds:KeyInfo/ds:X509Data/ds:X509Certificate", DS_NS)
    first.text = base64.b64encode(pki.revoked_declarant.cert.public_bytes(_der())).decode()
    assert "InvalidSignature" in expect_problem(serialise(root)).reason


def test_rsa_signature_claimed_as_ecdsa_is_g0001(signed):
    expect_problem(signed.replace(xmlsig.RSA_SHA256.encode(), xmlsig.ECDSA_SHA256.encode()))


def test_ecdsa_refused_when_not_allowed(pki):
    identity = pki.issue_declarant("ecdsa-p256", pki.tax_code, ec=True)
    data = xmlsig.sign_envelope(unsigned_root(), identity.signer(), signature_method=xmlsig.ECDSA_SHA256)
    expect_problem(data, methods=(xmlsig.RSA_SHA256,))  # SIG-15: replies are RSA-SHA256 only


# ------------------------------------------------------------------------------------------ SHA-1


@pytest.fixture(scope="session")
def sha1_signed(pki) -> bytes:
    return xmlsig.sign_envelope(unsigned_root(), pki.declarant.signer(), signature_method=xmlsig.RSA_SHA1,
                                digest_method=xmlsig.SHA1)


def test_sha1_accepted_when_allowed(sha1_signed):
    result = xmlsig.verify_envelope(sha1_signed, **SHA1_OK)
    assert result.uses_sha1
    assert (result.signature_method, result.digest_method) == (xmlsig.RSA_SHA1, xmlsig.SHA1)


def test_sha1_refused_with_the_given_code(sha1_signed):
    problem = expect_problem(sha1_signed, code="G0007", sha1_refused_code="G0007")
    assert "SHA-1" in problem.reason


def test_sha1_without_refusal_code_is_just_another_algorithm(sha1_signed):
    expect_problem(sha1_signed, code="G0001")


def test_sha1_digest_alone_counts_as_sha1(pki):
    data = xmlsig.sign_envelope(unsigned_root(), pki.declarant.signer(), digest_method=xmlsig.SHA1)
    expect_problem(data, code="G0007", sha1_refused_code="G0007")
    assert xmlsig.verify_envelope(data, **SHA1_OK).uses_sha1


def test_broken_sha1_signature_is_still_g0001_in_1_0(sha1_signed):
    expect_problem(sha1_signed.replace(b"<value>8500</value>", b"<value>8501</value>"), **SHA1_OK)


# ------------------------------------------------------------------------------------------ SIG-05 base64


def _wrap(text: str, width: int = 64, sep: str = "\r\n  ") -> str:
    return sep.join(text[i:i + width] for i in range(0, len(text), width))


def test_white_space_inside_base64_values_is_accepted(pki, signed):
    """SIG-05. SignatureValue and the certificates are outside SignedInfo and can be re-wrapped
    freely; DigestValue is inside, so that variant is re-signed over its wrapped SignedInfo."""
    root = parse(signed)
    sig = signature_of(root)
    digest = sig.find("ds:SignedInfo/ds:Reference/ds:DigestValue", DS_NS)
    digest.text = "\n  " + _wrap(digest.text, 16, " \n\t") + "\n"
    signed_info_c14n = etree.tostring(sig.find("ds:SignedInfo", DS_NS), method="c14n", exclusive=True)
    value = pki.declarant.key.sign(signed_info_c14n, PKCS1v15(), hashes.SHA256())
    sig.find("ds:SignatureValue", DS_NS).text = "\n" + _wrap(base64.b64encode(value).decode(), 76, "\n") + "\n"
    for cert in sig.iterfind("ds:KeyInfo/ds:X509Data/ds:X509Certificate", DS_NS):
        cert.text = "\n" + _wrap(cert.text) + "\n"
    data = serialise(root)
    assert data.count(b"\n") > signed.count(b"\n") + 20
    assert xmlsig.verify_envelope(data).signer == pki.declarant.cert


def test_invalid_base64_is_g0001(signed):
    root = parse(signed)
    value = signature_of(root).find("ds:SignatureValue", DS_NS)
    value.text = value.text[:10] + "!" + value.text[11:]
    assert "not valid base64" in expect_problem(serialise(root)).reason


# ------------------------------------------------------------------------------------------ hostile input


@pytest.mark.parametrize("data", [
    b"",
    b"not xml at all",
    b"<Envelope xmlns='urn:ecdi:envelope:1'><Header>",
    b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]><Envelope>&e;</Envelope>',
    b"\xff\xfe<\x00E\x00",
], ids=["empty", "text", "truncated", "doctype", "utf16"])
def test_malformed_input_is_refused_without_traceback(data):
    with pytest.raises(XmlRefused):
        xmlsig.verify_envelope(data)


def test_truncated_signed_message_is_refused(signed):
    with pytest.raises(XmlRefused):
        xmlsig.verify_envelope(signed[:-40])


def test_garbage_certificate_is_g0001(signed):
    root = parse(signed)
    signature_of(root).find("ds:KeyInfo/ds:X509Data/ds:X509Certificate", DS_NS).text = "AAAA"
    assert "not a readable DER certificate" in expect_problem(serialise(root)).reason


def test_wrong_signature_length_is_g0001(signed):
    root = parse(signed)
    signature_of(root).find("ds:SignatureValue", DS_NS).text = "AAAA"
    expect_problem(serialise(root))


def test_random_corruption_never_escapes_as_another_exception(signed):
    """Seeded corruption of the signed text: every outcome is a verdict, never a traceback, and
    whatever still verifies (a changed byte in a KeyInfo certificate outside its public key, which
    the caller's chain check then refuses) has exactly the original signed content."""
    original = etree.tostring(xmlsig.verify_envelope(signed).signed_root, method="c14n")
    rng = random.Random(20250314)
    verdicts = {"ok": 0, "refused": 0, "problem": 0}
    for _ in range(400):
        data = bytearray(signed)
        for _ in range(rng.randint(1, 3)):
            data[rng.randrange(len(data))] = rng.choice(b"aZ09+/= <>\"'&;:\n\xc3")
        try:
            result = xmlsig.verify_envelope(bytes(data))
        except XmlRefused:
            verdicts["refused"] += 1
        except xmlsig.SignatureProblem:
            verdicts["problem"] += 1
        else:
            verdicts["ok"] += 1
            assert etree.tostring(result.signed_root, method="c14n") == original
    assert verdicts["problem"] > 50 and verdicts["refused"] > 50, verdicts


# ------------------------------------------------------------------------------------------ interop


@pytest.mark.skipif(shutil.which("xmlsec1") is None, reason="Debian xmlsec1 command-line tool not installed")
@pytest.mark.parametrize("ecdsa", [False, True], ids=["rsa", "ecdsa"])
def test_independent_xmlsec1_verifies_our_signature(pki, tmp_path, ecdsa):
    """A third implementation (libxmlsec1/OpenSSL) checks signature *and* chain to the trust list."""
    if ecdsa:
        identity = pki.issue_declarant("ecdsa-p256", pki.tax_code, ec=True)
        data = xmlsig.sign_envelope(unsigned_root(), identity.signer(), signature_method=xmlsig.ECDSA_SHA256)
    else:
        data = xmlsig.sign_envelope(unsigned_root(), pki.declarant.signer())
    message = tmp_path / "message.xml"
    message.write_bytes(data)
    cmd = ["xmlsec1", "--verify", "--enabled-reference-uris", "empty", "--trusted-pem", str(pki.trust_list_pem),
           "--untrusted-pem", str(pki.folder / TestPKI.DECLARANT_CA), str(message)]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert re.search(r"^OK$", done.stdout + done.stderr, re.M)
    message.write_bytes(data.replace(b"<value>8500</value>", b"<value>8501</value>"))
    assert subprocess.run(cmd, capture_output=True, timeout=60).returncode != 0


# ------------------------------------------------------------------------------------------ lean signing


@pytest.mark.parametrize("method, digest", [(xmlsig.RSA_SHA256, xmlsig.SHA256), (xmlsig.RSA_SHA1, xmlsig.SHA1),
                                            (xmlsig.RSA_SHA256, xmlsig.SHA1), (xmlsig.RSA_SHA1, xmlsig.SHA256)])
def test_lean_signing_gives_signxml_octets(pki, method, digest):
    """RSA PKCS#1 v1.5 is deterministic, so the signer the gateway uses must give exactly signxml's text."""
    root = unsigned_root()
    root.find(f"{{{ENV}}}Body").insert(0, etree.Comment(" kept in the text, not in the digest "))
    before = etree.tostring(root)
    signer = pki.declarant.signer()
    lean = xmlsig.sign_envelope(root, signer, signature_method=method, digest_method=digest)
    assert etree.tostring(root) == before                   # the caller's tree is left as it was
    assert lean == xmlsig._sign_with_signxml(root, signer, method, digest)
    assert xmlsig.verify_envelope(lean, methods=(method,), digests=(digest,)).signature_method == method


def test_a_root_with_a_processing_instruction_beside_it_is_signed_by_signxml(pki):
    """URI="" covers the whole document: a PI or comment beside the root is signxml's business."""
    root = etree.fromstring(b"<?pi x?>" + UNSIGNED.split(b"?>", 1)[1])
    assert root.getprevious() is not None
    signer = pki.declarant.signer()
    assert xmlsig.sign_envelope(root, signer) == xmlsig._sign_with_signxml(root, signer, xmlsig.RSA_SHA256,
                                                                            xmlsig.SHA256)
