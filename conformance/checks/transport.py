"""Transport: TRN-02, TRN-05, TRN-09, TRN-10, TRN-11, TRN-14, REL-04."""

from __future__ import annotations

from lxml import etree

from ..case import Check
from .reliability import resent_after_reply
from ..codec import safexml, soap


# ------------------------------------------------------------------------------------------
# Transport (issue 6): TRN-02, TRN-05, TRN-09, TRN-10, TRN-11, TRN-14, REL-04

from ..codec.namespaces import SVC  # noqa: E402

# Words by which a user learns that the failure is a TLS / certificate security error (TRN-10).
TLS_ERROR_WORDS = ("TLS", "SSL", "certificate", "chứng thư", "chứng chỉ", "bảo mật")
CREDENTIAL_HEADERS = ("authorization", "proxy-authorization", "cookie", "cookie2")


def no_http_at_probe(connections: list[dict], what: str) -> Check:
    """TRN-10 / TRN-09: not one octet of HTTP reached the TLS probe (the DTS aborted before sending)."""
    sent = [c for c in connections if c["http_bytes"]]
    if sent:
        c = sent[0]
        return Check(False, f"{what}: the DTS sent {c['http_bytes']} octet(s) of HTTP over connection #{c['seq']} "
                            f"({c['request_line']!r}, handshake {c['handshake']} {c['protocol'] or ''})",
                     {"connections": connections})
    return Check(True, f"{what}: {len(connections)} connection(s), no HTTP octet received",
                 {"connections": connections})


def probe_reached(connections: list[dict], what: str) -> Check:
    if connections:
        return Check(True, f"{what}: the DTS opened {len(connections)} connection(s) to the probe")
    return Check(False, f"{what}: the DTS never connected to the probe, so the refusal was not observed")


def no_session(connections: list[dict], what: str) -> Check:
    """TRN-09: no TLS session was (or, for a suite this OpenSSL cannot offer, would have been) established."""
    made = [c for c in connections if c["handshake"] in ("ok", "would-succeed")]
    if made:
        c = made[0]
        return Check(False, f"{what}: a session was established on connection #{c['seq']} "
                            f"({c['protocol'] or ''} {c['cipher'] or ''}{'; ' + c['error'] if c['error'] else ''})",
                     {"connections": connections})
    return Check(True, f"{what}: no TLS session established ({len(connections)} handshake(s) refused)")


def no_forbidden_offer(connections: list[dict], what: str) -> Check:
    """TRN-09: the ClientHellos offered no SSL 3.0 / TLS 1.0 / 1.1-only session and no forbidden suite."""
    for c in connections:
        if c["forbidden_offered"]:
            return Check(False, f"{what}: connection #{c['seq']} offered forbidden suite(s) "
                                f"{', '.join(c['forbidden_offered'][:3])}", {"connections": connections})
        if c["protocol"] in ("SSLv3", "TLSv1", "TLSv1.1"):
            return Check(False, f"{what}: connection #{c['seq']} negotiated {c['protocol']}")
    return Check(True, f"{what}: no NULL, EXPORT, anonymous, RC4, DES or 3DES suite offered")


def session_with(connections: list[dict], cipher: str, what: str) -> Check:
    """TRN-09: the DTS completed TLS 1.2 with the one suite the probe allowed and sent its request."""
    used = [c for c in connections if c["handshake"] == "ok" and c["cipher"] == cipher and c["http_bytes"]]
    if used:
        return Check(True, f"{what}: TLS 1.2 with {cipher}, request relayed to the gateway")
    seen = [(c["handshake"], c["protocol"], c["cipher"], c["error"]) for c in connections]
    return Check(False, f"{what}: the DTS sent no request over {cipher}: {seen}", {"connections": connections})


def journalled_attempts(journal: list[dict], expected: int, what: str) -> Check:
    """SEC-06 ``attempt`` events: the DTS made exactly ``expected`` attempt(s) (REL-04, TRN-10: no retry)."""
    attempts = [e for e in journal if e.get("event") == "attempt"]
    if len(attempts) == expected:
        return Check(True, f"{what}: {expected} attempt journalled, no retransmission")
    return Check(False, f"{what}: {len(attempts)} attempts journalled, expected {expected} (no automatic retry)")


def not_retransmitted(requests: list, what: str, t_send: float, tolerance: float) -> Check:
    """REL-04: the send operation ended after the attempt whose final outcome reached the DTS — no attempt is
    re-sent after its outcome could reach a DTS keeping REL-01 (an attempt it timed out on may be, REL-03)."""
    if not requests:
        return Check(False, f"{what}: the gateway received no attempt")
    early, detail = resent_after_reply(requests, t_send, tolerance)
    seqs = f"#{', #'.join(str(r.seq) for r in requests)}"
    if detail is None:
        return Check(True, f"{what}: {len(requests)} attempt(s) ({seqs}), none re-sent after its outcome could "
                           "reach the DTS")
    return Check(False, f"{what}: {len(requests)} attempts of {requests[0].message_id} ({seqs}); the outcome is "
                        f"final (REL-04): {early}", detail)


def _decoded(value: str) -> str:
    """The text of an ``Authorization: Basic …`` value (user:password), else the value itself."""
    import base64
    import binascii

    scheme, _, token = value.partition(" ")
    if scheme.lower() != "basic":
        return value
    try:
        return base64.b64decode(token.strip(), validate=True).decode("utf-8", "replace")
    except (binascii.Error, ValueError):
        return value


def credentials_only_in_body(exchange) -> Check:
    """TRN-11: UserId and Password appear only in the SOAP body — never in the URL, an Authorization header
    or a cookie (the Password in no header at all). What else a URL or those headers hold is not TRN-11's."""
    from urllib.parse import unquote

    try:
        call, _ = soap.parse_send_request(exchange.request_body)
    except soap.SoapFault as exc:
        return Check(False, f"request #{exchange.seq} is not a readable Send: {exc.faultstring}")
    problems = []
    headers = {k.lower(): _decoded(v) for k, v in exchange.request_headers.items()}
    for secret, label in ((call.password, "Password"), (call.user_id, "UserId")):
        if not secret:
            continue
        if secret in unquote(exchange.path):
            problems.append(f"the {label} appears in the URL")
        problems += [f"the {label} appears in the {name} header" for name, value in headers.items()
                     if secret in value and (label == "Password" or name in CREDENTIAL_HEADERS)]
    if problems:
        return Check(False, f"request #{exchange.seq}: " + "; ".join(problems))
    return Check(True, f"request #{exchange.seq}: credentials only in the SOAP body (no Authorization, Cookie, "
                       "or credentials in the URL)")


def _message_xml(exchange):
    """The request's ``MessageXML`` element and the raw octets between its tags (None if unreadable)."""
    try:
        root = etree.fromstring(exchange.request_body, safexml.hardened_parser())
    except etree.XMLSyntaxError:
        return None, b""
    found = root.find(f".//{{{SVC}}}MessageXML")
    raw = exchange.request_body
    start = raw.find(b"MessageXML")
    end = raw.rfind(b"MessageXML")
    return found, raw[start:end] if 0 <= start < end else b""


def message_xml_escaped(exchange) -> Check:
    """TRN-05: MessageXML holds the message text as character data — no child elements — and its
    value after XML unescaping is the message text the gateway read."""
    element, _ = _message_xml(exchange)
    if element is None:
        return Check(False, f"request #{exchange.seq}: no readable MessageXML")
    if len(element):
        return Check(False, f"request #{exchange.seq}: MessageXML has child element(s) "
                            f"<{etree.QName(element[0]).localname}>, not escaped character data")
    if not element.text or exchange.message_text is None or element.text.encode("utf-8") != exchange.message_text:
        return Check(False, f"request #{exchange.seq}: MessageXML's character data is not the message text")
    return Check(True, f"request #{exchange.seq}: MessageXML is character data holding the message text")


def no_cdata(exchange) -> Check:
    """TRN-05: the DTS SHOULD NOT use CDATA in MessageXML."""
    _, raw = _message_xml(exchange)
    if b"<![CDATA[" in raw:
        return Check(False, f"request #{exchange.seq}: MessageXML uses a CDATA section (SHOULD NOT)")
    return Check(True, f"request #{exchange.seq}: MessageXML escaped without CDATA")


def one_send_per_request(exchange) -> Check:
    """TRN-14: one ``svc:Send`` per HTTP request."""
    try:
        root = etree.fromstring(exchange.request_body, safexml.hardened_parser())
    except etree.XMLSyntaxError as exc:
        return Check(False, f"request #{exchange.seq} is not XML: {exc}")
    sends = root.findall(f".//{{{SVC}}}Send")
    if len(sends) == 1:
        return Check(True, f"request #{exchange.seq} carries one Send")
    return Check(False, f"request #{exchange.seq} carries {len(sends)} Send elements")


def at_most_concurrent(exchanges: list, limit: int) -> Check:
    """TRN-14: at most ``limit`` HTTP requests to the CGW in progress at once (SHOULD)."""
    events = sorted([(e.received_at, 1) for e in exchanges] +
                    [(e.responded_at if e.responded_at is not None else float("inf"), -1) for e in exchanges],
                    key=lambda t: (t[0], t[1]))
    current = peak = 0
    for _, delta in events:
        current += delta
        peak = max(peak, current)
    if peak <= limit:
        return Check(True, f"at most {peak} request(s) in progress at once ({len(exchanges)} in all)")
    return Check(False, f"{peak} requests were in progress at once (at most {limit} SHOULD be)")


