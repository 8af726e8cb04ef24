"""Table 7-3 as data: one defect per evaluation step, each made in a valid request the harness sends a CGW.

A defect names its step, the reply and code that step gives, the requirement(s) behind it, and how it is
made: a change to the unsigned envelope (re-signed afterwards), a change to the signed octets, another
signer, or other credentials. ``inflict`` applies one or several to a valid signed request, so the CGW
cases can send one bad thing at each step and two at once (RPL-05: the earlier step's code wins) without
knowing how each is made. Pure functions of octets; nothing here talks to a gateway.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Callable

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID
from lxml import etree

from .codec import safexml, xmlsig
from .codec.envelope import format_datetime
from .codec.namespaces import DEC, DS, ENV, q

BOM = b"\xef\xbb\xbf"
LONG_TEXT = "Máy tính xách tay " * 12          # 216 code points: over Text(200) (TXT-04), not over 500


@dataclass(frozen=True)
class Given:
    """What some defects need from the case: an earlier recorded submission of the same account."""

    recorded_reference: str | None = None      # its Subject/reference (step 15: E0074)


@dataclass(frozen=True)
class Defect:
    name: str
    step: int                          # Table 7-3 step that must catch it
    function: str                      # the reply that step gives
    code: str                          # and its code
    requirements: tuple[str, ...]      # the step's own requirement(s), besides RPL-05
    what: str                          # a sentence for the report
    field: str | None = None           # Error/field the spec fixes (path), None = not judged
    tree: Callable[[etree._Element, Given], None] | None = None   # on the unsigned envelope
    octets: Callable[[bytes, int], bytes] | None = None          # on the signed text (S_max given)
    rogue: bool = False                # signed by a certificate outside ca_trust_list
    credentials: str = ""              # "wrong-password" | "other-user" | ""
    replay: bool = False               # sent with the messageId of a recorded submission
    since: str = "1.0"                 # first profile where the step exists


# ------------------------------------------------------------------------------------------
# the changes


def _header(root, path: str) -> etree._Element:
    el = root.find(q(ENV, "Header"))
    for step in path.split("/"):
        el = el.find(q(ENV, step))
    return el


def _set(path: str, value: str):
    def change(root, given):
        _header(root, path).text = value
    return change


def _comment_in_header(root, given):
    root.find(q(ENV, "Header")).insert(0, etree.Comment(" ECDI forbids comments "))


def _future_issue(root, given):
    _header(root, "SendApplication/createMessageIssue").text = format_datetime(
        datetime.now(timezone.utc) + timedelta(days=1))


def _long_description(root, given):
    _first(root, "GoodsItem/description").text = LONG_TEXT.strip()


def _wrong_total(root, given):
    total = _first(root, "Invoice/totalValue")
    total.text = str(int(float(total.text)) + 1)


def _recorded_reference(root, given):
    if not given.recorded_reference:
        raise ValueError("the defect needs the reference of a recorded submission (Given.recorded_reference)")
    _header(root, "Subject/reference").text = given.recorded_reference


def _other_partner(root, given):
    _first(root, "Partner/name").text = "Another Partner Co., Ltd."


def _first(root, path: str) -> etree._Element:
    el = root.find(f".//{{{DEC}}}Declaration/" + "/".join(f"{{{DEC}}}{p}" for p in path.split("/")))
    if el is None:
        raise ValueError(f"the request has no dec:Declaration/{path} to change (a 929/930 declaration is needed)")
    return el


def _oversize(text: bytes, s_max: int) -> bytes:
    """White space after the root element (legal XML) until the text exceeds S_max by one octet."""
    return text + b" " * max(0, s_max + 1 - len(text))


def _bom(text: bytes, s_max: int) -> bytes:
    return BOM + text


def _broken_signature(text: bytes, s_max: int) -> bytes:
    """One character of the SignatureValue changed: the content is intact, the signature fails."""
    marker = b"SignatureValue>"
    at = text.index(marker) + len(marker)
    while text[at:at + 1] in b" \t\r\n":
        at += 1
    swapped = b"B" if text[at:at + 1] != b"B" else b"C"
    return text[:at] + swapped + text[at + 1:]


# ------------------------------------------------------------------------------------------
# Table 7-3, one defect per step the harness can reach from a valid request (step 1 is the transport
# family's; 17 and 18 need a declaration or order in some state: the flows and payment families)

STEPS: tuple[Defect, ...] = (
    Defect("oversize", 2, "271", "E0001", ("TRN-13",), "a message text one octet over S_max", "",
           octets=_oversize),
    Defect("wrong-password", 3, "271", "U0001", ("TRN-12",), "a wrong password", "", credentials="wrong-password"),
    Defect("bom", 4, "271", "X0001", ("TXT-01",), "a byte-order mark before the message text", "", octets=_bom),
    Defect("changed-text", 5, "271", "E0003", ("REL-10",),
           "a changed message text under the messageId of a recorded submission", "/Envelope/Header/Reference/messageId",
           tree=_other_partner, replay=True),
    Defect("unknown-version", 6, "271", "X0003", ("CAP-03",), "Reference/version 0.9, not an accepted version",
           "/Envelope/Header/Reference/version", tree=_set("Reference/version", "0.9")),
    Defect("header-comment", 7, "271", "X0002", ("ENV-01",), "a comment in the Header",
           "/Envelope/Header/comment()[1]", tree=_comment_in_header),
    Defect("unknown-certification", 8, "271", "X0005", ("ENV-08",),
           "a certificationId in no register (ECDI-1999-99999)", "/Envelope/Header/SendApplication/certificationId",
           tree=_set("SendApplication/certificationId", "ECDI-1999-99999"), since="1.1"),
    Defect("broken-signature", 9, "271", "G0001", ("SIG-05",), "one character of the SignatureValue changed",
           octets=_broken_signature),
    Defect("untrusted-signer", 10, "271", "G0004", ("SIG-08",),
           "signed by a certificate of a CA outside ca_trust_list", "", rogue=True),
    Defect("future-issue", 11, "271", "X0004", ("ENV-03",), "createMessageIssue one day ahead (beyond T_skew)",
           "/Envelope/Header/SendApplication/createMessageIssue", tree=_future_issue),
    Defect("unauthorised-user", 12, "271", "U0002", ("ENV-09",),
           "sent by a user not registered for From/identity", "/Envelope/Header/From/identity",
           credentials="other-user"),
    Defect("long-description", 13, "271", "X0002", ("DOC-01", "TXT-04"),
           f"a goods description of {len(LONG_TEXT.strip())} code points (Text(200))",
           "/Envelope/Body/Content/Declaration/GoodsItem[1]/description", tree=_long_description),
    Defect("duplicate-reference", 15, "272", "E0074", ("REL-11",),
           "the business reference of a receipted declaration", "/Envelope/Header/Subject/reference",
           tree=_recorded_reference),
    Defect("wrong-total", 16, "272", "S0005", ("DOC-03", "DOC-01"), "Invoice/totalValue one more than the sum",
           "/Envelope/Body/Content/Declaration/Invoice/totalValue", tree=_wrong_total),
)

# The rules of §11 and §4-6 a CGW must enforce (TXT, ENV, DOC), each by one defect at its own step, and the
# limits it must not enforce too early (SOUND: each of these requests must be recorded, 29).

def _declaration_text(old: bytes, new: bytes):
    def change(text: bytes, s_max: int) -> bytes:
        if old not in text:
            raise ValueError(f"the request has no {old!r} to change")
        return text.replace(old, new, 1)
    return change


def _decomposed_name(root, given):
    import unicodedata

    name = _header(root, "From/name")
    name.text = unicodedata.normalize("NFD", name.text + " Hải")


def _append(path: str, suffix: str):
    def change(root, given):
        _header(root, path).text += suffix
    return change


def _attribute(path: str, name: str):
    def change(root, given):
        _header(root, path).set(name, "1")
    return change


def _remove(path: str):
    def change(root, given):
        el = _header(root, path)
        el.getparent().remove(el)
    return change


def _country(code: str):
    def change(root, given):
        _first(root, "Partner/countryCode").text = code
    return change


def _description_of(length: int):
    def change(root, given):
        _first(root, "GoodsItem/description").text = ("Hàng hóa mới " * 20)[:length - 1] + "x"
    return change


RULES: tuple[Defect, ...] = (
    Defect("latin1-declaration", 4, "271", "X0001", ("TXT-01",), "an XML declaration naming ISO-8859-1", "",
           octets=_declaration_text(b'encoding="UTF-8"', b'encoding="ISO-8859-1"')),
    Defect("not-well-formed", 4, "271", "X0001", ("TXT-01",), "the end tag of the root cut short", "",
           octets=_declaration_text(b"</Envelope>", b"</Envelope")),
    Defect("doctype", 4, "271", "X0001", ("TXT-02",), "a DOCTYPE with an internal entity", "",
           octets=_declaration_text(b"?>", b'?><!DOCTYPE Envelope [<!ENTITY e "x">]>')),
    Defect("decomposed", 7, "271", "X0002", ("TXT-03",), "From/name in NFD (decomposed Vietnamese)",
           "/Envelope/Header/From/name", tree=_decomposed_name),
    Defect("control-character", 7, "271", "X0002", ("TXT-05",), "a DEL (U+007F) in To/name",
           "/Envelope/Header/To/name", tree=_append("To/name", "\x7f")),
    Defect("edge-space", 7, "271", "X0002", ("TXT-05",), "From/name ending in a space",
           "/Envelope/Header/From/name", tree=_append("From/name", " ")),
    Defect("header-attribute", 7, "271", "X0002", ("ENV-01",), "an attribute on Header/Subject",
           "/Envelope/Header/Subject/@n", tree=_attribute("Subject", "n")),
    Defect("not-a-table-4-2-row", 7, "271", "X0002", ("ENV-04",), "a declaration sent as function 16",
           tree=_set("Subject/function", "16")),
    Defect("no-certification", 7, "271", "X0002", ("ENV-08",), "no certificationId in a 1.1 request",
           tree=_remove("SendApplication/certificationId"), since="1.1"),
    Defect("unknown-country", 16, "272", "S0005", ("DOC-01",), "Partner/countryCode XX (no ISO 3166-1 country)",
           "/Envelope/Body/Content/Declaration/Partner/countryCode", tree=_country("XX")),
    Defect("unknown-office", 16, "272", "S0005", ("ENV-06",), "To/identity 99ZZ, an office that does not exist",
           "/Envelope/Header/To/identity", tree=_set("To/identity", "99ZZ")),
)

SOUND: tuple[Defect, ...] = (
    Defect("description-200", 19, "29", "00000", ("TXT-04",),
           "a goods description of exactly 200 code points (Vietnamese, more octets)", tree=_description_of(200)),
    Defect("test-certification-id", 19, "29", "00000", ("ENV-08",),
           "certificationId ECDI-0000-00000, which a test CGW must accept",
           tree=_set("SendApplication/certificationId", "ECDI-0000-00000"), since="1.1"),
)

BY_NAME = {d.name: d for d in STEPS + RULES + SOUND}

# Two defects at once, each pair's steps adjacent where the harness can reach both: the earlier one's code.
PAIRS: tuple[tuple[str, str], ...] = (
    ("oversize", "wrong-password"), ("wrong-password", "bom"), ("bom", "changed-text"),
    ("changed-text", "unknown-version"), ("unknown-version", "header-comment"),
    ("header-comment", "unknown-certification"), ("unknown-certification", "broken-signature"),
    ("broken-signature", "untrusted-signer"), ("untrusted-signer", "future-issue"),
    ("future-issue", "unauthorised-user"), ("unauthorised-user", "long-description"),
    ("long-description", "duplicate-reference"), ("duplicate-reference", "wrong-total"),
)


def applies(defects, version: str) -> bool:
    """Whether every defect's step exists in profile ``version``."""
    return all(tuple(map(int, version.split("."))) >= tuple(map(int, d.since.split("."))) for d in defects)


def winner(defects) -> Defect:
    return min(defects, key=lambda d: d.step)


def unsigned(text: bytes) -> etree._Element:
    """The envelope of a signed message text, its signature removed (to be changed and signed again)."""
    root = copy.deepcopy(safexml.parse_message_text(text))
    for sig in root.findall(q(DS, "Signature")):
        root.remove(sig)
    return root


def inflict(text: bytes, defects, *, signer: xmlsig.Signer, s_max: int, given: Given = Given(),
            rogue: xmlsig.Signer | None = None) -> bytes:
    """``text`` (a valid signed request) with every defect made: tree changes, signature (the rogue signer
    where a defect asks for it), then octet changes from the latest step to the earliest."""
    root = unsigned(text)
    for d in defects:
        if d.tree is not None:
            d.tree(root, given)
    if any(d.rogue for d in defects):
        if rogue is None:
            raise ValueError("a defect needs a rogue signer (rogue_signer)")
        signer = rogue
    out = xmlsig.sign_envelope(root, signer)
    for d in sorted(defects, key=lambda d: -d.step):
        if d.octets is not None:
            out = d.octets(out, s_max)
    return out


def rogue_signer(tax_code: str) -> xmlsig.Signer:
    """A declarant certificate for ``tax_code`` (UID=MST:, digitalSignature, RSA-2048) issued by a CA of
    the harness's own making, which no gateway trusts: Table 8-2's chain row (G0004) and nothing else."""
    now = datetime.now(timezone.utc)
    ca_key, key = (rsa.generate_private_key(public_exponent=65537, key_size=2048) for _ in range(2))
    ca_name = x509.Name([x509.NameAttribute(NameOID.COUNTRY_NAME, "VN"),
                         x509.NameAttribute(NameOID.COMMON_NAME, "ECDI harness look-alike CA (untrusted)")])
    ca = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name).public_key(ca_key.public_key())
          .serial_number(x509.random_serial_number()).not_valid_before(now - timedelta(days=1))
          .not_valid_after(now + timedelta(days=30))
          .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
          .add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True)
          .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
          .sign(ca_key, hashes.SHA256()))
    subject = x509.Name([x509.NameAttribute(NameOID.COUNTRY_NAME, "VN"),
                         x509.NameAttribute(NameOID.COMMON_NAME, f"Declarant {tax_code}"),
                         x509.NameAttribute(NameOID.USER_ID, f"MST:{tax_code}")])
    cert = (x509.CertificateBuilder().subject_name(subject).issuer_name(ca_name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - timedelta(days=1))
            .not_valid_after(now + timedelta(days=30))
            .add_extension(x509.KeyUsage(True, True, False, False, False, False, False, False, False), critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
            .sign(ca_key, hashes.SHA256()))
    return xmlsig.Signer(key, [cert])


# ------------------------------------------------------------------------------------------
# Signatures a gateway must refuse (SIG-05: G0001) or accept (white space inside base64)


def _serialise(root: etree._Element) -> bytes:
    return xmlsig.XML_DECLARATION + etree.tostring(root, encoding="UTF-8")


def _other_content(root: etree._Element) -> None:
    """The attacker's change: another reference and another From/name (still schema-valid)."""
    _header(root, "From/name").text += " (sửa)"


def wrap_copied_signature(text: bytes) -> bytes:
    """Altered content carrying the genuine signature of the original (a copied signature)."""
    root = safexml.parse_message_text(text)
    _other_content(root)
    return _serialise(root)


def wrap_second_signature(text: bytes) -> bytes:
    """The genuine signature twice: "exactly one ds:Signature"."""
    root = safexml.parse_message_text(text)
    root.append(copy.deepcopy(root.find(q(DS, "Signature"))))
    return _serialise(root)


def wrap_original_in_object(text: bytes) -> bytes:
    """Classic XSW: the original signed envelope tucked into a ds:Object, the visible content altered."""
    root = safexml.parse_message_text(text)
    original = copy.deepcopy(root)
    original.remove(original.find(q(DS, "Signature")))
    _other_content(root)
    etree.SubElement(root.find(q(DS, "Signature")), q(DS, "Object")).append(original)
    return _serialise(root)


def wrap_signature_first(text: bytes) -> bytes:
    """The signature moved before the Header: not the last child of Envelope."""
    root = safexml.parse_message_text(text)
    root.insert(0, root.find(q(DS, "Signature")))
    return _serialise(root)


def wrap_extra_reference(text: bytes) -> bytes:
    """A second ds:Reference in SignedInfo (Table 8-1: exactly one)."""
    root = safexml.parse_message_text(text)
    signed_info = root.find(f"{q(DS, 'Signature')}/{q(DS, 'SignedInfo')}")
    signed_info.append(copy.deepcopy(signed_info.find(q(DS, "Reference"))))
    return _serialise(root)


@dataclass(frozen=True)
class Wrapping:
    what: str
    make: Callable[[bytes], bytes]


WRAPPINGS = tuple(Wrapping((f.__doc__ or f.__name__).splitlines()[0], f) for f in (
    wrap_copied_signature, wrap_second_signature, wrap_original_in_object, wrap_signature_first,
    wrap_extra_reference))


def base64_line_breaks(text: bytes) -> bytes:
    """Line breaks every 64 characters inside SignatureValue and X509Certificate (outside what is digested):
    SIG-05 says the gateway MUST accept white space inside base64 values."""
    import re

    def fold(match: re.Match) -> bytes:
        value = re.sub(rb"\s", b"", match.group(2))
        return match.group(1) + b"\n".join(value[i:i + 64] for i in range(0, len(value), 64)) + match.group(3)

    return re.sub(rb"(<ds:(?:SignatureValue|X509Certificate)>)([^<]*)(</ds:)", fold, text)
