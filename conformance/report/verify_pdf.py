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
    files = _attachments(reader)
    if CLAIM_FILE not in files or SIGNATURE_FILE not in files:
        raise Rejected(f"the PDF lacks its {CLAIM_FILE} or {SIGNATURE_FILE} attachment")
    try:
        algorithm, b64 = files[SIGNATURE_FILE].decode("ascii").split()
        claim_signature = base64.b64decode(b64, validate=True)
    except (UnicodeDecodeError, ValueError, binascii.Error):
        raise Rejected(f"the PDF's {SIGNATURE_FILE} is not 'ALGORITHM BASE64'") from None
    return files[CLAIM_FILE], claim_signature, algorithm
