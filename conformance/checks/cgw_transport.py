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


def wsdl_served(exchange, annex_d: bytes, endpoint: str) -> Check:
    """TRN-02: ``?wsdl`` answered 200 ``text/xml`` with Annex D, ``{cgw_endpoint}`` the endpoint; prefixes and
    white space between elements not significant (QName values compared by namespace, not prefix)."""
    media = _header(exchange, "Content-Type") or ""
    if exchange.response_status != 200 or media.split(";")[0].strip().lower() != "text/xml":
        return Check(False, f"GET {exchange.path} was answered HTTP {exchange.response_status} {media!r}, "
                            "not 200 text/xml with the WSDL")
    try:
        served = etree.fromstring(exchange.response_body, safexml.hardened_parser())
    except etree.XMLSyntaxError as exc:
        return Check(False, f"the WSDL served is not well-formed XML: {exc}")
    difference = _first_difference(_normal(served), _normal(etree.fromstring(annex_d)))
    if difference:
        return Check(False, f"the WSDL served differs from Annex D (with {{cgw_endpoint}} = {endpoint}): {difference}")
    return Check(True, f"GET {exchange.path} serves Annex D naming {endpoint}")


def wsdl_read_by_zeep(exchange, endpoint: str) -> Check:
    """TRN-02, as a client toolkit reads it: zeep finds service CISService, its port at ``endpoint`` and the
    operation Send with SOAPAction ``urn:ecdi:service:1#Send``."""
    import tempfile

    import zeep

    with tempfile.NamedTemporaryFile(suffix=".wsdl") as file:
        file.write(exchange.response_body or b"")
        file.flush()
        try:
            client = zeep.Client(file.name)
        except Exception as exc:  # noqa: BLE001 — whatever zeep refuses is the finding
            return Check(False, f"zeep cannot read the WSDL served: {type(exc).__name__}: {exc}")
    ports = [(p.binding_options.get("address"), {o.name: o.soapaction for o in p.binding._operations.values()})
             for s in client.wsdl.services.values() for p in s.ports.values()]
    good = [address for address, ops in ports if ops.get("Send") == "urn:ecdi:service:1#Send"]
    if good != [endpoint]:
        return Check(False, f"zeep reads port addresses and operations {ports}, not one port at {endpoint} with "
                            "Send (SOAPAction urn:ecdi:service:1#Send)")
    return Check(True, f"zeep reads the WSDL: Send at {endpoint}")


def _normal(el) -> tuple:
    """An element as (Clark tag, attributes with QName values in Clark form, text, children), white space
    between elements dropped."""
    attrs = {}
    for name, value in el.attrib.items():
        prefix, sep, local = value.partition(":")
        if sep and prefix in el.nsmap and "/" not in local:
            value = f"{{{el.nsmap[prefix]}}}{local}"
        attrs[name] = value
    children = [c for c in el if isinstance(c.tag, str)]
    return el.tag, attrs, (el.text or "").strip(), [_normal(c) for c in children]


def _first_difference(got: tuple, want: tuple, path: str = "") -> str | None:
    here = f"{path}/{etree.QName(want[0]).localname}"
    if got[0] != want[0]:
        return f"{here}: element {got[0]} where Annex D has {want[0]}"
    if got[1] != want[1]:
        return f"{here}: attributes {got[1]} where Annex D has {want[1]}"
    if got[2] != want[2]:
        return f"{here}: text {got[2]!r} where Annex D has {want[2]!r}"
    if len(got[3]) != len(want[3]):
        return f"{here}: {len(got[3])} child elements where Annex D has {len(want[3])}"
    return next((d for g, w in zip(got[3], want[3]) if (d := _first_difference(g, w, here))), None)


def allowed_overload_answer(exchange, sign_anchor: Path) -> Check:
    """TRN-08: under load each Send is answered normally (HTTP 200, signed reply), or 503 with a
    ``Retry-After`` of 1–300 seconds, or a signed 271 E9001."""
    if exchange.response_status == 503:
        after = _header(exchange, "Retry-After")
        ok = after is not None and after.strip().isdigit() and 1 <= int(after) <= 300
        return Check(ok, f"HTTP 503 with Retry-After {after!r}" + ("" if ok else ", not 1-300 seconds"))
    answered_ = send_answered(exchange, "a Send of the burst")
    if not answered_.ok:
        return answered_
    return reply_signed(exchange, sign_anchor, "a reply of the burst")


def no_session(result: dict, offered: str, control: dict) -> Check:
    """TRN-09: the gateway established no TLS session when the harness offered only ``offered``. ``control`` is
    the same hand-written ClientHello offering the mandatory suites: refused too, the refusal proves nothing
    about ``offered`` (the gateway may not read the harness's hello) and the finding is undecided."""
    if not control.get("established"):
        return Check(False, f"no session with {offered} offered only, but none either when the same ClientHello "
                            f"offers TLS 1.2 with the mandatory suites ({control.get('error')}): cannot judge",
                     {"offered": result, "control": control}, undecided=True)
    if result.get("established"):
        return Check(False, f"a TLS session was established with {offered} offered only "
                            f"({result.get('version')}, {result.get('cipher')})", result)
    return Check(True, f"no TLS session with {offered} offered only: {result.get('error')}", result)


def session_with_mandatory_suite(results: dict[str, dict]) -> Check:
    """TRN-09: over TLS 1.2 the CGW accepts at least one of the two mandatory ECDHE AES-128-GCM suites."""
    accepted = [suite for suite, r in results.items() if r.get("established")]
    if accepted:
        return Check(True, f"TLS 1.2 session established with {', '.join(accepted)}", results)
    tried = "; ".join(f"{suite}: {r.get('error') or r.get('unavailable')}" for suite, r in results.items())
    return Check(False, f"no TLS 1.2 session with either mandatory suite ({tried})", results)
