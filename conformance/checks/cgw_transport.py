"""Checks of a gateway's HTTP and SOAP answers (§3, TRN-*), pure functions of what the harness's client
recorded (``gateway_control.Exchange`` rows of the harness-side evidence)."""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

from lxml import etree

from ..case import Check
from ..codec import certs, safexml, soap, xmlsig
from ..codec.envelope import parse_datetime, read_header
from ..codec.namespaces import SOAP, q

HTTP_ONLY_ERRORS = (401, 403)       # TRN-06: never used, authentication failures included


def _header(exchange, name: str) -> str | None:
    return next((v for k, v in (exchange.response_headers or {}).items() if k.lower() == name.lower()), None)


def answered(exchange, what: str = "the request") -> Check:
    """The endpoint answered over HTTPS at all (a TLS or connection failure is the transport error)."""
    error = (exchange.gateway_verdict or {}).get("transport_error")
    if exchange.response_status is None:
        return Check(False, f"{what} got no HTTP answer from {exchange.path}: {error or 'no response'}")
    return Check(True, f"{what} was answered HTTP {exchange.response_status} at {exchange.path} over HTTPS")


def send_answered(exchange, what: str = "the Send") -> Check:
    """TRN-06: HTTP 200, ``Content-Type: text/xml; charset=utf-8``, a ``SendResponse/SendResult`` holding the
    reply message text as escaped character data; never 401/403."""
    status, media = exchange.response_status, _header(exchange, "Content-Type")
    if status in HTTP_ONLY_ERRORS:
        return Check(False, f"{what} was answered HTTP {status}, which TRN-06 forbids (a 271 reply is due)")
    if status != 200:
        return Check(False, f"{what} was answered HTTP {status}, not 200 with a signed reply")
    if not soap.media_type_ok(media):
        return Check(False, f"{what} was answered with Content-Type {media!r}, not {soap.CONTENT_TYPE!r}")
    if exchange.reply_text is None:
        return Check(False, f"{what}'s HTTP 200 body is not a SendResponse whose SendResult holds a message text",
                     {"body": (exchange.response_body or b"")[:300].decode("utf-8", "replace")})
    if b"<![CDATA[" in (exchange.response_body or b""):
        return Check(False, f"{what}'s SendResult holds the reply as CDATA, not as escaped character data")
    return Check(True, f"{what} was answered HTTP 200 {soap.CONTENT_TYPE} with a SendResponse "
                       f"({exchange.reply_function or '?'} {' '.join(exchange.reply_codes)})".rstrip())


def reply_signed(exchange, sign_anchor: Path, what: str = "the reply") -> Check:
    """TRN-06 ("signed reply") with SIG-14's essentials: an RSA-SHA256 signature per Table 8-1 over the whole
    reply, by a certificate chaining to ``cgw_sign_anchor`` valid at the reply's createMessageIssue. The
    replies family judges Table 8-1 in full (and with xmlsec1)."""
    if exchange.reply_text is None:
        return Check(False, f"there is no reply message text to verify in {what}")
    try:
        verified = xmlsig.verify_envelope(exchange.reply_text, methods=(xmlsig.RSA_SHA256,), digests=(xmlsig.SHA256,))
        issued = parse_datetime(read_header(verified.signed_root)["SendApplication/createMessageIssue"])
    except (xmlsig.SignatureProblem, safexml.XmlRefused) as exc:
        return Check(False, f"{what} is not validly signed per Table 8-1: {exc.reason}")
    except (KeyError, ValueError) as exc:
        return Check(False, f"{what} has no readable createMessageIssue under its signature: {exc}")
    try:
        anchors = certs.load_pem_chain(sign_anchor)
    except (OSError, ValueError) as exc:
        return Check(False, f"cgw_sign_anchor {sign_anchor} is unreadable: {exc}", undecided=True)
    problem = certs.chain_problem(verified.signer, verified.intermediates, anchors, issued or datetime.now(timezone.utc))
    if problem:
        return Check(False, f"{what}'s signer is not issued under cgw_sign_anchor: {problem}")
    return Check(True, f"{what} is signed RSA-SHA256 by {verified.signer.subject.rfc4514_string()} "
                       "under cgw_sign_anchor", {"signature_method": verified.signature_method, "digest_method": verified.digest_method})


def soap_fault(exchange, faultcode: str, what: str) -> Check:
    """TRN-07: HTTP 500 with a SOAP Fault whose ``faultcode`` is ``faultcode`` (``soap:Client``, ``soap:Server``)."""
    status, body = exchange.response_status, exchange.response_body or b""
    try:
        root = etree.fromstring(body, safexml.hardened_parser()) if body else None
    except etree.XMLSyntaxError:
        root = None
    fault = root.find(f"{q(SOAP, 'Body')}/{q(SOAP, 'Fault')}") if root is not None else None
    code = (fault.findtext("faultcode") or "").strip() if fault is not None else None
    if status == 500 and code is not None and _qname_is(code, fault, faultcode):
        return Check(True, f"{what} was answered HTTP 500 with a SOAP Fault {code}")
    seen = f"a SOAP Fault {code}" if code is not None else "no SOAP Fault"
    return Check(False, f"{what} was answered HTTP {status} with {seen}, not HTTP 500 with {faultcode}")


def _qname_is(text: str, el, wanted: str) -> bool:
    """``soap:Client`` written with any prefix bound to the SOAP 1.1 namespace."""
    prefix, _, local = text.rpartition(":")
    return el.nsmap.get(prefix or None) == SOAP and local == wanted.split(":")[-1]
