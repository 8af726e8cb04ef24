"""Reply message texts: header per Table 4-3, one ``e:Result`` per Table 7-1, signed (SIG-14).

Every reply the gateway sends is built and signed here, once: history entries are stored as the
returned octets and redelivered unchanged (RPL-02), so this module is never asked to rebuild one.

"The request" (ENV-10) may be partly unreadable — a 271 answers requests that are not XML, or whose
header is invalid. Each reply header field therefore takes the request's value only if that value
is of the reply field's type, and otherwise the placeholder of Table 4-3. A DTS must not check
placeholders (SEC-04), so a wrong guess here would be the gateway's bug, not the DTS's.
"""

from __future__ import annotations

import dataclasses
import re
import unicodedata
from dataclasses import dataclass
from typing import Callable, Mapping

from lxml import etree

from conformance.codec import xmlsig
from conformance.codec.envelope import (
    Header,
    Result,
    build_envelope,
    content_child,
    format_datetime,
    new_message_id,
    read_header,
)
from conformance.codec.memo import BoundedMemo
from conformance.codec.safexml import hardened_parser

from .clock import Clock

# §4.2 lexical forms of the request values a reply header copies (Table 4-3 "Value" column).
_GUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
_TAX_CODE = re.compile(r"[0-9]{10}(-[0-9]{3})?")
_OFFICE = re.compile(r"[0-9]{2}[0-9A-Z]{2}")
_APP_ID = re.compile(r"[A-Za-z0-9-]{1,36}")
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
_TYPES = ("929", "930", "701", "702")
_PROCEDURE_TYPES = ("1", "2")


@dataclass(frozen=True)
class GatewayIdentity:
    """What the gateway writes about itself (Table 4-3 ``SendApplication``) and its placeholders."""

    product: str
    version: str
    operator_name: str
    operator_tax_code: str
    central_office: str
    accepted_versions: tuple[str, ...]

    @property
    def highest_version(self) -> str:
        return max(self.accepted_versions, key=lambda v: tuple(int(p) for p in v.split(".")))


def _text(value: str | None, limit: int = 255) -> str | None:
    """A Text(n) value (TXT-05: no control characters, no edge white space; NFC), else None."""
    if not value or len(value) > limit or value != value.strip() or _CONTROL.search(value):
        return None
    return value if unicodedata.is_normalized("NFC", value) else None


def _match(pattern: re.Pattern, value: str | None) -> str | None:
    return value if value is not None and pattern.fullmatch(value) else None


def _choose(value: str | None, allowed: tuple[str, ...]) -> str | None:
    return value if value in allowed else None


# How replies are signed (behaviour.reply_signature): SIG-14's RSA-SHA256, or a gateway defect's.
SIGNATURES = {"rsa-sha256": (xmlsig.RSA_SHA256, xmlsig.SHA256), "rsa-sha1": (xmlsig.RSA_SHA1, xmlsig.SHA1), "none": None}


class Replies:
    def __init__(self, signer: xmlsig.Signer, clock: Clock, identity: GatewayIdentity,
                 describe: Callable[[str], str], signature: str = "rsa-sha256",
                 fixed_fields: tuple[tuple[str, str], ...] = (), result_code: str | None = None):
        self._signer = signer
        self._fixed = dict(fixed_fields)             # header values written whatever the request (a defect's)
        self._result_code = result_code              # resultCode written whatever the errors (a defect's)
        self._signature = SIGNATURES[signature]
        self._clock = clock
        self.identity = identity
        self.describe = describe                 # result code -> Vietnamese description (RPL-01)

    @property
    def signer(self) -> xmlsig.Signer:
        """The gateway signing identity (faults re-sign altered replies with it)."""
        return self._signer

    def header(self, request: Mapping[str, str], function: str) -> Header:
        """The reply header of Table 4-3 for ``request`` (the request's header fields, by path)."""
        me = self.identity
        answers_query = request.get("Subject/function") == "13"
        reference = request.get("Subject/reference") if answers_query else request.get("Reference/messageId")
        return Header({
            "procedureType": _choose(request.get("procedureType"), _PROCEDURE_TYPES) or "0",
            "Reference/version": _choose(request.get("Reference/version"), me.accepted_versions) or me.highest_version,
            "Reference/messageId": new_message_id(),
            "SendApplication/name": me.product,
            "SendApplication/version": me.version,
            "SendApplication/companyName": me.operator_name,
            "SendApplication/companyIdentity": me.operator_tax_code,
            "SendApplication/createMessageIssue": format_datetime(self._clock.now()),
            "From/name": _text(request.get("To/name")) or "-",
            "From/identity": _match(_OFFICE, request.get("To/identity")) or me.central_office,
            "To/name": _text(request.get("From/name")) or "-",
            "To/identity": _match(_TAX_CODE, request.get("From/identity")) or "0000000000",
            "Subject/type": _choose(request.get("Subject/type"), _TYPES) or "000",
            "Subject/function": function,
            "Subject/reference": _match(_GUID, reference) or "",
            "Subject/sendApplication": "CGW",
            "Subject/receiveApplication": _match(_APP_ID, request.get("Subject/sendApplication")) or "-",
            **self._fixed,
        })

    def build(self, request: Mapping[str, str], function: str, result: Result) -> bytes:
        """Sign and return the reply message text (RSA-SHA256 with the gateway signing identity)."""
        header = self.header(request, function)
        if header["Subject/reference"] == "" and function != "271":
            raise ValueError(f"a {function} reply needs a readable request reference (Table 4-3)")
        if self._result_code is not None:
            result = dataclasses.replace(result, result_code=self._result_code)
        root = build_envelope(header, result.to_element())
        if self._signature is None:
            text = xmlsig.XML_DECLARATION + etree.tostring(root, encoding="UTF-8", xml_declaration=False)
        else:
            method, digest = self._signature
            text = xmlsig.sign_envelope(root, self._signer, signature_method=method, digest_method=digest)
        _remember_summary(text, header.get("Subject/function"), [e.code for e in result.errors])
        return text


# reply text -> its summary, as built: the last few hundred (≈ 1 MB), enough for the replies being sent now;
# a reply held back longer (a delay) is read again
_BUILT = BoundedMemo(256)


def _remember_summary(text: bytes, function: str | None, codes: list[str]) -> None:
    _BUILT.put(text, (function, tuple(codes)))


def reply_summary(text: bytes) -> tuple[str | None, list[str]]:
    """(function, error codes) of a reply text this gateway built — for evidence rows. Known without
    reading it again when it was built here lately (re-reading every reply was a tenth of the event
    loop's time per exchange); a text a fault rewrote is read."""
    known = _BUILT.lookup(text)
    if known is not None:
        return known[0], list(known[1])
    root = etree.fromstring(text, hardened_parser())
    result = Result.from_element(content_child(root))
    return read_header(root).get("Subject/function"), [e.code for e in result.errors]
