"""ECDI message signatures (§8, Table 8-1): sign an envelope, check the profile, verify the signature.

Canonicalisation and cryptography are signxml's (lxml's C14N when signing) and ``cryptography``'s; this module only decides
*which* signature is acceptable. Verification is split in three steps whose order the gateway
relies on (Table 7-3 step 9): the structural profile check (G0001), the SHA-1 decision (W0001 in
1.0, G0007 in 1.1, taken by the caller through the arguments), and cryptographic verification
(G0001). Whether the signer's certificate is trustworthy is *not* decided here: Table 8-2 is a
separate step with its own codes and order, applied by the caller with ``certs``.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from dataclasses import dataclass, field

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from cryptography.hazmat.primitives.serialization import Encoding
from lxml import etree
from signxml import (
    CanonicalizationMethod,
    DigestAlgorithm,
    SignatureConfiguration,
    SignatureMethod,
    XMLSigner,
    XMLVerifier,
)
from signxml.exceptions import SignXMLException

from . import safexml
from .envelope import ecdi_path, inside_signature
from .namespaces import DS, q

RSA_SHA256 = "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256"
ECDSA_SHA256 = "http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha256"
RSA_SHA1 = "http://www.w3.org/2000/09/xmldsig#rsa-sha1"
SHA256 = "http://www.w3.org/2001/04/xmlenc#sha256"
SHA1 = "http://www.w3.org/2000/09/xmldsig#sha1"
EXC_C14N = "http://www.w3.org/2001/10/xml-exc-c14n#"
ENVELOPED = "http://www.w3.org/2000/09/xmldsig#enveloped-signature"

# What SIG-06/SIG-07 call "SHA-1": rsa-sha1 as signature method or sha1 as digest (Table 8-1, 1.0 row).
SHA1_METHODS = frozenset({RSA_SHA1})
SHA1_DIGESTS = frozenset({SHA1})

XML_DECLARATION = b'<?xml version="1.0" encoding="UTF-8"?>\n'

_SIGNATURE = q(DS, "Signature")
_XML_SPACE = " \t\r\n"  # XML white space (S production); str.strip() would also eat NBSP etc.
_B64_WS = re.compile(r"[ \t\r\n]+")


def _ds(local: str) -> str:
    return q(DS, local)


@dataclass
class Signer:
    """A private key and its certificate chain: signer certificate first, then intermediates (no root).

    The key must be a loaded key object: signxml re-parses and re-checks PEM keys on every call,
    which costs ~50x the signature itself.
    """

    key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey
    chain: list[x509.Certificate]

    def __post_init__(self) -> None:
        if not self.chain:
            raise ValueError("Signer needs at least the signer certificate in its chain")
        if not isinstance(self.key, (rsa.RSAPrivateKey, ec.EllipticCurvePrivateKey)):
            raise TypeError(f"Signer key must be an RSA or EC private key object, not {type(self.key).__name__}")


class SignatureProblem(Exception):
    """The request or reply signature is unacceptable. ``code`` is the ECDI result code to answer."""

    def __init__(self, code: str, reason: str, field: str = ""):
        super().__init__(f"{code}: {reason}")
        self.code = code
        self.reason = reason
        self.field = field

    def __reduce__(self):                     # the gateway's CPU workers send it to the event loop
        return (type(self), (self.code, self.reason, self.field))


@dataclass
class VerifiedSignature:
    """Outcome of a cryptographically valid signature; ``signed_root`` is what was signed.

    Act on ``signed_root`` only, never on the tree parsed from the input: that is what defeats
    signature wrapping. It is the whole ``Envelope`` without its ``ds:Signature`` (removed by the
    enveloped-signature transform) and without comments (excluded by exclusive C14N).
    """

    signer: x509.Certificate
    intermediates: list[x509.Certificate]
    signature_method: str
    digest_method: str
    signed_root: etree._Element = field(repr=False)

    @property
    def uses_sha1(self) -> bool:
        """True if SIG-06/SIG-07 apply (W0001 in 1.0)."""
        return self.signature_method in SHA1_METHODS or self.digest_method in SHA1_DIGESTS


# --------------------------------------------------------------------------------------------
# Signing


class _Sha1CapableSigner(XMLSigner):
    """signxml refuses SHA-1 when signing; ECDI still needs SHA-1 signatures for SIG-06/SIG-07 cases.

    Only the DTS mutants and negative tests request it; the reference DTS never does (SEC-03).
    """

    def check_deprecated_methods(self) -> None:
        return None


def _key_info_annotator(sig_root: etree._Element, signing_settings) -> None:
    """KeyInfo exactly as Table 8-1: one X509Data, certificates as base64 DER *without line breaks*.

    signxml's own annotator copies PEM bodies (64-character lines); SIG-02 asks for none.
    """
    key_info = etree.SubElement(sig_root, _ds("KeyInfo"))
    x509_data = etree.SubElement(key_info, _ds("X509Data"))
    for cert in signing_settings.cert_chain:
        etree.SubElement(x509_data, _ds("X509Certificate")).text = base64.b64encode(
            cert.public_bytes(Encoding.DER)
        ).decode("ascii")


def _check_key_matches_method(key, signature_method: str) -> None:
    wants_ec = signature_method.startswith("http://www.w3.org/2001/04/xmldsig-more#ecdsa")
    if wants_ec and not isinstance(key, ec.EllipticCurvePrivateKey):
        raise ValueError(f"signature method {signature_method} needs an EC key, got {type(key).__name__}")
    if not wants_ec and not isinstance(key, rsa.RSAPrivateKey):
        raise ValueError(f"signature method {signature_method} needs an RSA key, got {type(key).__name__}")


def sign_envelope(
    root: etree._Element,
    signer: Signer,
    *,
    signature_method: str = RSA_SHA256,
    digest_method: str = SHA256,
) -> bytes:
    """Sign an unsigned envelope and return the message text to transmit as-is (SIG-02).

    The input tree is left as it was (``_sign_lean`` removes the signature it appended; signxml signs a
    copy). The result is UTF-8 with the XML
    declaration ``<?xml version="1.0" encoding="UTF-8"?>``; ``ds:Signature`` is the last child of the
    root, with exclusive C14N, one ``Reference URI=""`` (enveloped-signature, then exc-c14n) and
    ``KeyInfo/X509Data`` holding ``signer.chain``. ECDSA values are r||s (SIG-03): the DER signature
    of ``cryptography`` converted to the fixed-length form XMLDSig requires.
    """
    if root.find(f".//{_SIGNATURE}") is not None or root.tag == _SIGNATURE:
        raise ValueError("the envelope already holds a ds:Signature; ECDI allows exactly one")
    _check_key_matches_method(signer.key, signature_method)
    alone = root.getprevious() is None and root.getnext() is None   # URI="": no PI or comment beside it
    if signature_method in _LEAN_METHODS and digest_method in _LEAN_DIGESTS and alone:
        return _sign_lean(root, signer, signature_method, digest_method)
    return _sign_with_signxml(root, signer, signature_method, digest_method)


def _sign_with_signxml(root: etree._Element, signer: Signer, signature_method: str, digest_method: str) -> bytes:
    xml_signer = _Sha1CapableSigner(
        signature_algorithm=SignatureMethod(signature_method),
        digest_algorithm=DigestAlgorithm(digest_method),
        c14n_algorithm=CanonicalizationMethod.EXCLUSIVE_XML_CANONICALIZATION_1_0,
    )
    xml_signer.signature_annotators = [_key_info_annotator]
    signed = xml_signer.sign(root, key=signer.key, cert=list(signer.chain))
    return XML_DECLARATION + etree.tostring(signed, encoding="UTF-8", xml_declaration=False)


_LEAN_METHODS = {RSA_SHA256: hashes.SHA256, RSA_SHA1: hashes.SHA1, ECDSA_SHA256: hashes.SHA256}
_LEAN_DIGESTS = {SHA256: hashlib.sha256, SHA1: hashlib.sha1}
_DS_NSMAP = {"ds": DS}


def _sign_lean(root: etree._Element, signer: Signer, signature_method: str, digest_method: str) -> bytes:
    """What signxml's ``XMLSigner.sign`` gives for the profile's methods, octet for octet (an RSA
    signature is deterministic: tests/test_xmlsig.py compares the two), at a third of its cost:
    signxml copies and re-parses the document and builds its signature element by element in Python,
    which made signing the largest share of the gateway's own CPU per exchange (docs/performance.md).
    The same lxml exclusive C14N and ``cryptography`` key; the input tree is left as it was."""
    c14n = lambda el: etree.tostring(el, method="c14n", exclusive=True, with_comments=False)   # noqa: E731
    digest = base64.b64encode(_LEAN_DIGESTS[digest_method](c14n(root)).digest()).decode("ascii")
    signature = etree.SubElement(root, _SIGNATURE, nsmap=_DS_NSMAP)
    try:
        info = etree.SubElement(signature, _ds("SignedInfo"))
        etree.SubElement(info, _ds("CanonicalizationMethod"), Algorithm=EXC_C14N)
        etree.SubElement(info, _ds("SignatureMethod"), Algorithm=signature_method)
        reference = etree.SubElement(info, _ds("Reference"), URI="")
        transforms = etree.SubElement(reference, _ds("Transforms"))
        etree.SubElement(transforms, _ds("Transform"), Algorithm=ENVELOPED)
        etree.SubElement(transforms, _ds("Transform"), Algorithm=EXC_C14N)
        etree.SubElement(reference, _ds("DigestMethod"), Algorithm=digest_method)
        etree.SubElement(reference, _ds("DigestValue")).text = digest
        hash_ = _LEAN_METHODS[signature_method]()
        if isinstance(signer.key, rsa.RSAPrivateKey):
            value = signer.key.sign(c14n(info), padding.PKCS1v15(), hash_)
        else:                                  # XMLDSig's ECDSA value is r||s, each the key's length (SIG-03)
            r, s = decode_dss_signature(signer.key.sign(c14n(info), ec.ECDSA(hash_)))
            size = (signer.key.curve.key_size + 7) // 8
            value = r.to_bytes(size, "big") + s.to_bytes(size, "big")
        etree.SubElement(signature, _ds("SignatureValue")).text = base64.b64encode(value).decode("ascii")
        _key_info_annotator(signature, _Chain(signer.chain))
        return XML_DECLARATION + etree.tostring(root, encoding="UTF-8", xml_declaration=False)
    finally:
        root.remove(signature)


@dataclass
class _Chain:
    cert_chain: list[x509.Certificate]


# --------------------------------------------------------------------------------------------
# Structural check (Table 8-1)


class _Shape:
    """Collects Table 8-1 deviations while walking one ``ds:Signature``.

    ENV-01 forbids comments, PIs, stray text and unprescribed attributes everywhere, and Table 7-3
    leaves everything inside ``ds:Signature`` to the signature step, so they are deviations here.
    """

    def __init__(self) -> None:
        self.problems: list[str] = []

    def children(self, el: etree._Element, name: str, expected: list[str], *, at_least: bool = False) -> list | None:
        """Element children of ``el`` if they are exactly ``expected`` (ds local names), else None.

        With ``at_least`` the last expected name may repeat (one or more X509Certificate).
        """
        if el.text and el.text.strip(_XML_SPACE):
            self.problems.append(f"text inside {name}")
        kids = []
        for child in el:
            if not isinstance(child.tag, str):
                self.problems.append(f"comment or processing instruction inside {name}")
            else:
                kids.append(child)
            if child.tail and child.tail.strip(_XML_SPACE):
                self.problems.append(f"text inside {name}")
        got = [etree.QName(k).localname if etree.QName(k).namespace == DS else k.tag for k in kids]
        repeated_tail = got[len(expected):]
        ok = got == expected or (
            at_least and got[: len(expected)] == expected and all(g == expected[-1] for g in repeated_tail)
        )
        if not ok:
            self.problems.append(f"{name} contains {got or 'nothing'}; Table 8-1 requires {expected}"
                                 + (" (the last one or more times)" if at_least else ""))
            return None
        return kids

    def attributes(self, el: etree._Element, name: str, allowed: dict[str, object]) -> None:
        """Only ``allowed`` attributes; a value that is a set or a string must match."""
        for attr in el.attrib:
            if attr not in allowed:
                self.problems.append(f"{name} carries attribute {attr!r}, which Table 8-1 does not allow")
        for attr, wanted in allowed.items():
            value = el.get(attr)
            if value is None:
                self.problems.append(f"{name} lacks attribute {attr}")
            elif isinstance(wanted, (set, frozenset)) and value not in wanted:
                self.problems.append(f"{name} {attr}={value!r} is not allowed here (allowed: {sorted(wanted)})")
            elif isinstance(wanted, str) and value != wanted:
                self.problems.append(f"{name} {attr}={value!r}; Table 8-1 requires {wanted!r}")

    def empty(self, el: etree._Element, name: str) -> None:
        """No content at all: catches InclusiveNamespaces, HMACOutputLength, XPath and the like."""
        if len(el) or (el.text and el.text.strip(_XML_SPACE)):
            self.problems.append(f"{name} must be empty (found {[c.tag for c in el] or 'text'})")

    def base64_value(self, el: etree._Element, name: str) -> None:
        """Leaf holding base64; white space inside is allowed (SIG-05)."""
        self.attributes(el, name, {})
        if len(el):
            self.problems.append(f"{name} must hold only base64 text")
            return
        text = _B64_WS.sub("", el.text or "")
        if not text:
            self.problems.append(f"{name} is empty")
            return
        try:
            base64.b64decode(text, validate=True)
        except (binascii.Error, ValueError):
            self.problems.append(f"{name} is not valid base64")


def _find_signatures(root: etree._Element) -> list[etree._Element]:
    return [el for el in root.iter(_SIGNATURE)]


def signature_profile_problems(
    root: etree._Element,
    *,
    methods=(RSA_SHA256, ECDSA_SHA256),
    digests=(SHA256,),
) -> list[str]:
    """Every deviation of the signature in ``root`` from Table 8-1, as readable reasons (empty = OK).

    Purely structural: digests and values are not checked here. ``methods``/``digests`` are the
    algorithm URIs the profile allows (add RSA_SHA1/SHA1 for 1.0).
    """
    signatures = _find_signatures(root)
    if not signatures:
        return ["no ds:Signature in the message"]
    if len(signatures) > 1:
        return [f"{len(signatures)} ds:Signature elements; Table 8-1 allows exactly one"]
    sig = signatures[0]
    shape = _Shape()
    if sig.getparent() is not root:
        shape.problems.append(f"ds:Signature is at {ecdi_path(sig)}, not a child of the root Envelope")
    elif next(sig.itersiblings(), None) is not None:
        shape.problems.append("ds:Signature is not the last child of the Envelope")
    shape.attributes(sig, "ds:Signature", {})
    parts = shape.children(sig, "ds:Signature", ["SignedInfo", "SignatureValue", "KeyInfo"])
    if parts is None:
        return shape.problems
    signed_info, signature_value, key_info = parts
    _check_signed_info(shape, signed_info, frozenset(methods), frozenset(digests))
    shape.base64_value(signature_value, "ds:SignatureValue")
    _check_key_info(shape, key_info)
    return shape.problems


def _check_signed_info(shape: _Shape, signed_info, methods: frozenset, digests: frozenset) -> None:
    shape.attributes(signed_info, "ds:SignedInfo", {})
    parts = shape.children(signed_info, "ds:SignedInfo", ["CanonicalizationMethod", "SignatureMethod", "Reference"])
    if parts is None:
        return
    c14n, method, reference = parts
    shape.attributes(c14n, "ds:CanonicalizationMethod", {"Algorithm": EXC_C14N})
    shape.empty(c14n, "ds:CanonicalizationMethod")
    shape.attributes(method, "ds:SignatureMethod", {"Algorithm": methods})
    shape.empty(method, "ds:SignatureMethod")
    shape.attributes(reference, "ds:Reference", {"URI": ""})
    ref_parts = shape.children(reference, "ds:Reference", ["Transforms", "DigestMethod", "DigestValue"])
    if ref_parts is None:
        return
    transforms, digest_method, digest_value = ref_parts
    shape.attributes(transforms, "ds:Transforms", {})
    steps = shape.children(transforms, "ds:Transforms", ["Transform", "Transform"])
    if steps is not None:
        for i, (step, algorithm) in enumerate(zip(steps, (ENVELOPED, EXC_C14N)), start=1):
            shape.attributes(step, f"ds:Transform[{i}]", {"Algorithm": algorithm})
            shape.empty(step, f"ds:Transform[{i}]")
    shape.attributes(digest_method, "ds:DigestMethod", {"Algorithm": digests})
    shape.empty(digest_method, "ds:DigestMethod")
    shape.base64_value(digest_value, "ds:DigestValue")


def _check_key_info(shape: _Shape, key_info) -> None:
    shape.attributes(key_info, "ds:KeyInfo", {})
    data = shape.children(key_info, "ds:KeyInfo", ["X509Data"])
    if data is None:
        return
    shape.attributes(data[0], "ds:X509Data", {})
    certs = shape.children(data[0], "ds:X509Data", ["X509Certificate"], at_least=True)
    for i, cert in enumerate(certs or [], start=1):
        shape.base64_value(cert, f"ds:X509Certificate[{i}]")


# --------------------------------------------------------------------------------------------
# Verification


def _key_info_certificates(sig: etree._Element) -> list[x509.Certificate]:
    """The KeyInfo certificates, each proven readable here.

    ``cryptography`` parses names and dates lazily: a certificate with, say, a corrupt string type
    in its subject loads fine and raises KeyError on first use, deep inside signxml or a caller's
    Table 8-2 check. Touching those fields now turns such input into G0001 at one place.
    """
    certs = []
    for i, el in enumerate(sig.iterfind(f"{_ds('KeyInfo')}/{_ds('X509Data')}/{_ds('X509Certificate')}"), start=1):
        try:
            cert = x509.load_der_x509_certificate(base64.b64decode(_B64_WS.sub("", el.text or "")))
            cert.subject.rfc4514_string(), cert.issuer.rfc4514_string()
            cert.not_valid_before_utc, cert.not_valid_after_utc
        except (ValueError, KeyError, TypeError, UnsupportedAlgorithm, x509.InvalidVersion) as exc:
            raise SignatureProblem(
                "G0001", f"X509Certificate {i} in KeyInfo is not a readable DER certificate: {exc!r}") from None
        certs.append(cert)
    return certs


def verify_envelope(
    data: bytes,
    *,
    methods=(RSA_SHA256, ECDSA_SHA256),
    digests=(SHA256,),
    sha1_refused_code: str | None = None,
) -> VerifiedSignature:
    """Verify the signature of a message text per Table 8-1; raise SignatureProblem otherwise.

    Order: parse (hardened; malformed input raises ``safexml.XmlRefused``; a ``ds:Signature`` nesting
    deeper than ``safexml.MAX_DEPTH`` is G0001, depth elsewhere is not this check's), structure (G0001),
    SHA-1 refusal (``sha1_refused_code``, G0007 in 1.1: a SHA-1 signature is refused before its value
    is even checked), cryptographic verification with the first KeyInfo certificate (G0001).
    Without ``sha1_refused_code`` a SHA-1 algorithm not in ``methods``/``digests`` is simply another
    algorithm, i.e. G0001. Certificate trust, validity and revocation are the caller's (Table 8-2).
    """
    root, beyond = safexml.read_message_text(data)
    if beyond is not None and inside_signature(beyond):
        raise SignatureProblem("G0001", f"ds:Signature nests elements deeper than {safexml.MAX_DEPTH} levels")
    allowed_methods, allowed_digests = frozenset(methods), frozenset(digests)
    shape_methods, shape_digests = allowed_methods, allowed_digests
    if sha1_refused_code:
        shape_methods, shape_digests = shape_methods | SHA1_METHODS, shape_digests | SHA1_DIGESTS
    problems = signature_profile_problems(root, methods=shape_methods, digests=shape_digests)
    signatures = _find_signatures(root)
    if problems:
        where = ecdi_path(signatures[0]) if len(signatures) == 1 else ""
        raise SignatureProblem("G0001", "; ".join(problems), field=where)
    sig = signatures[0]
    method = sig.find(f"{_ds('SignedInfo')}/{_ds('SignatureMethod')}").get("Algorithm")
    digest = sig.find(f"{_ds('SignedInfo')}/{_ds('Reference')}/{_ds('DigestMethod')}").get("Algorithm")
    if method not in allowed_methods or digest not in allowed_digests:
        detail = f"SignatureMethod {method}, DigestMethod {digest}"
        raise SignatureProblem(sha1_refused_code or "G0001", f"SHA-1 refused ({detail})")
    certs = _key_info_certificates(sig)
    signed_root = _verify_crypto(data, certs[0], method, digest)
    if etree.QName(signed_root).text != etree.QName(root).text:
        raise SignatureProblem("G0001", f"the signed data is {signed_root.tag}, not the whole {root.tag}")
    return VerifiedSignature(certs[0], certs[1:], method, digest, signed_root)


def _verify_crypto(data: bytes, signer: x509.Certificate, method: str, digest: str) -> etree._Element:
    """signxml verification restricted to the one allowed shape; returns the signed Envelope.

    ``verification_time`` is set inside the signer's validity period on purpose: signxml would
    otherwise fail an expired certificate here, and expiry is G0002 in Table 8-2, not G0001.
    """
    try:
        config = SignatureConfiguration(
            require_x509=True,
            location="./",
            expect_references=1,
            signature_methods=frozenset({SignatureMethod(method)}),
            digest_algorithms=frozenset({DigestAlgorithm(digest)}),
            verification_time=signer.not_valid_before_utc,
        )
        result = XMLVerifier().verify(data, x509_cert=signer, parser=safexml.hardened_parser(), expect_config=config)
    except SignXMLException as exc:
        raise SignatureProblem("G0001", f"signature does not verify: {type(exc).__name__}: {exc}") from None
    except (etree.LxmlError, ValueError, TypeError, binascii.Error, UnsupportedAlgorithm) as exc:
        # Hostile input must end as G0001, never as a traceback in the gateway.
        raise SignatureProblem("G0001", f"signature could not be verified: {type(exc).__name__}: {exc}") from None
    if result.signed_xml is None:
        raise SignatureProblem("G0001", "the signed data is not an XML element")
    return result.signed_xml
