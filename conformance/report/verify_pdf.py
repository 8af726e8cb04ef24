"""Reading certificate.pdf for ``ecdi verify``: its PAdES signature, then the claim it carries.

The PDF signature must be the file's only one, by the trusted key, intact and covering every byte
of the file (nothing appended after signing); only then are the attached claim and claim signature
read, and ``verify`` judges them exactly as for the HTML page. pyhanko does the PDF work; any error
it raises on a hostile file becomes a ``Rejected`` sentence.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import io

from ..issuer import key_id
from .pdf import CLAIM_FILE, SIGNATURE_FILE
from .verify import Rejected


def _signature(data: bytes):
    from pyhanko.pdf_utils.reader import PdfFileReader

    try:
        reader = PdfFileReader(io.BytesIO(data), strict=False)
        signatures = reader.embedded_signatures
    except Exception as exc:  # noqa: BLE001 - pyhanko raises many types on a damaged file; each is one reason
        raise Rejected(f"the PDF cannot be read ({type(exc).__name__}: {exc}): it was cut or edited") from None
    if len(signatures) != 1:
        raise Rejected(f"the PDF holds {len(signatures)} signatures, expected exactly the issuer's one")
    return reader, signatures[0]


def _check_pades(signature, trusted_key) -> None:
    from pyhanko.sign.validation import validate_pdf_signature
    from pyhanko.sign.validation.status import SignatureCoverageLevel
    from pyhanko_certvalidator import ValidationContext

    try:
        cert = signature.signer_cert
        signer_key = hashlib.sha256(cert.public_key.dump()).hexdigest()
    except Exception as exc:  # noqa: BLE001
        raise Rejected(f"the PDF signature names no readable signing certificate ({exc})") from None
    if signer_key != key_id(trusted_key):
        raise Rejected(f"the PDF is signed by another key ({signer_key[:16]}…), not the trusted key "
                       f"({key_id(trusted_key)[:16]}…)")
    try:  # the trusted key is the anchor: its own certificate is the trust root, nothing is fetched
        status = validate_pdf_signature(signature, ValidationContext(trust_roots=[cert], allow_fetching=False))
    except Exception as exc:  # noqa: BLE001
        raise Rejected(f"the PDF signature cannot be checked ({type(exc).__name__}: {exc})") from None
    if not status.intact:
        raise Rejected("the PDF was altered after signing: its digest does not match the signed one")
    if not status.valid:
        raise Rejected("the PDF signature does not verify with the trusted key")
    if status.coverage != SignatureCoverageLevel.ENTIRE_FILE:
        raise Rejected("the PDF was changed after signing: bytes follow the signed revision")


def _check_container(signature) -> None:
    """What a CMS validator lets through: the container's unsigned parts (the certificate set, the
    outer digest list, the zero padding after it) can change without breaking the signature. The
    harness writes them one way, so anything else is an edit: the signer's certificate must be the
    one the signed ESS attribute hashes, every certificate must be signed by its issuer in the set,
    and nothing but zeros may follow the container."""
    from asn1crypto import cms, parser
    from cryptography import x509

    try:
        raw = signature.sig_object["/Contents"]
        _, _, _, header, body, _ = parser.parse(raw)
        info = cms.ContentInfo.load(raw[:len(header) + len(body)])
        signed, signer = info["content"], info["content"]["signer_infos"][0]
        ess = signer["signed_attrs"].native
        named = next(a["values"][0]["certs"][0] for a in ess if a["type"] == "signing_certificate_v2")
        bag = [x509.load_der_x509_certificate(c.chosen.dump()) for c in signed["certificates"]]
        by_subject = {c.subject.public_bytes(): c for c in bag}
        for c in bag:
            c.verify_directly_issued_by(by_subject[c.issuer.public_bytes()])
        shape = (signed["version"].native, [a["algorithm"].native for a in signed["digest_algorithms"]],
                 signed["encap_content_info"]["content"].native, signed["crls"].native,
                 signer["unsigned_attrs"].native, len(signed["signer_infos"]))
        ess_hash = hashlib.new(named["hash_algorithm"]["algorithm"], signature.signer_cert.dump()).digest()
    except Exception as exc:  # noqa: BLE001 - any unreadable or unsigned part is an edit
        raise Rejected(f"the PDF's signature container was edited ({type(exc).__name__}: {exc})") from None
    if raw[len(header) + len(body):].strip(b"\0"):
        raise Rejected("the PDF's signature container was edited: its padding is not zeros")
    if named["cert_hash"] != ess_hash:
        raise Rejected("the PDF's signing certificate is not the one its signature names")
    if shape != ("v1", [signer["digest_algorithm"]["algorithm"].native], None, None, None, 1):
        raise Rejected("the PDF's signature container was edited outside its signed attributes")


def _attachments(reader) -> dict[str, bytes]:
    try:
        names = reader.root["/Names"]["/EmbeddedFiles"]["/Names"]
        return {str(names[i]): names[i + 1].get_object()["/EF"]["/F"].get_object().data
                for i in range(0, len(names), 2)}
    except Exception:  # noqa: BLE001
        raise Rejected(f"the PDF carries no readable attachments ({CLAIM_FILE}, {SIGNATURE_FILE})") from None


def signed_pdf_claim(data: bytes, trusted_key) -> tuple[bytes, bytes, str]:
    """``(claim payload, claim signature, algorithm)`` from a PDF whose PAdES signature holds."""
    reader, signature = _signature(data)
    _check_pades(signature, trusted_key)
    _check_container(signature)
    files = _attachments(reader)
    if CLAIM_FILE not in files or SIGNATURE_FILE not in files:
        raise Rejected(f"the PDF lacks its {CLAIM_FILE} or {SIGNATURE_FILE} attachment")
    try:
        algorithm, b64 = files[SIGNATURE_FILE].decode("ascii").split()
        claim_signature = base64.b64decode(b64, validate=True)
    except (UnicodeDecodeError, ValueError, binascii.Error):
        raise Rejected(f"the PDF's {SIGNATURE_FILE} is not 'ALGORITHM BASE64'") from None
    return files[CLAIM_FILE], claim_signature, algorithm
