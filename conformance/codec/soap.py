"""SOAP 1.1 framing of the single ECDI operation ``Send`` (spec §3, TRN-03..07).

The message text travels as *escaped character data* inside ``MessageXML`` / ``SendResult``
(TRN-05). Its octets are the UTF-8 encoding of that element's string value — all of its character
data, CDATA sections included, comments not (XML's string value; never the first text node alone);
nothing here re-serialises the message text, so the octets a DTS signed are the octets a gateway
reads (SIG-02). A request is read strictly (SOAP 1.1 §3, §4.2.3; TRN-04, TRN-07): no processing
instruction, no element inside an ``xs:string`` field, a ``soap:Header`` first if present, and no
mandatory header block (``mustUnderstand="1"``) aimed at the gateway, which understands none.
"""

from __future__ import annotations

from dataclasses import dataclass

from lxml import etree

from .namespaces import SOAP, SVC, q
from .safexml import hardened_parser, has_doctype

SOAP_ACTION = '"urn:ecdi:service:1#Send"'
SOAP_ACTOR_NEXT = "http://schemas.xmlsoap.org/soap/actor/next"
CONTENT_TYPE = "text/xml; charset=utf-8"
ENDPOINT_PATH = "/ecdi/CISService"


class SoapFault(Exception):
    """A request that is not a well-formed SOAP 1.1 ``Send`` (TRN-07), or a fault received."""

    def __init__(self, faultcode: str, faultstring: str):
        super().__init__(f"{faultcode}: {faultstring}")
        self.faultcode = faultcode
        self.faultstring = faultstring

    def __reduce__(self):                     # the gateway's CPU workers send it to the event loop
        return (type(self), (self.faultcode, self.faultstring))


class NotSendResponse(Exception):
    """A response body that is not a SOAP ``SendResponse`` (a retryable outcome for a DTS, REL-03)."""


@dataclass(frozen=True)
class SendCall:
    message_text: bytes
    user_id: str
    password: str


def _envelope(body_child: etree._Element) -> bytes:
    env = etree.Element(q(SOAP, "Envelope"), nsmap={"soap": SOAP})
    body = etree.SubElement(env, q(SOAP, "Body"))
    body.append(body_child)
    return etree.tostring(env, xml_declaration=True, encoding="utf-8")


def send_request_body(message_text: bytes, user_id: str, password: str) -> bytes:
    """The HTTP body of a ``Send`` call (TRN-04): MessageXML, UserId, Password, in that order."""
    send = etree.Element(q(SVC, "Send"), nsmap={"svc": SVC})
    for name, value in (("MessageXML", message_text.decode("utf-8")), ("UserId", user_id), ("Password", password)):
        etree.SubElement(send, q(SVC, name)).text = value
    return _envelope(send)


def send_response_body(reply_text: bytes) -> bytes:
    """The HTTP body of a ``SendResponse`` carrying a reply message text (TRN-06)."""
    resp = etree.Element(q(SVC, "SendResponse"), nsmap={"svc": SVC})
    etree.SubElement(resp, q(SVC, "SendResult")).text = reply_text.decode("utf-8")
    return _envelope(resp)


def fault_body(faultcode: str, faultstring: str) -> bytes:
    """A SOAP 1.1 Fault (TRN-07); ``faultcode`` is ``soap:Client`` or ``soap:Server``."""
    fault = etree.Element(q(SOAP, "Fault"), nsmap={"soap": SOAP})
    etree.SubElement(fault, "faultcode").text = faultcode
    etree.SubElement(fault, "faultstring").text = faultstring
    return _envelope(fault)


def _soap_body_child(body: bytes, what: str, error) -> etree._Element:
    if has_doctype(body):
        raise error(f"{what} contains a DOCTYPE")
    try:
        root = etree.fromstring(body, hardened_parser())
    except etree.XMLSyntaxError as exc:
        if exc.code == etree.ErrorTypes.ERR_RESOURCE_LIMIT:   # a Send is 4 levels deep
            raise error(f"{what} nests elements deeper than a SOAP reader goes: {exc}") from None
        raise error(f"{what} is not well-formed XML: {exc}") from None
    if root.tag != q(SOAP, "Envelope"):
        raise error(f"{what} root is {root.tag}, not a SOAP 1.1 Envelope")
    children = [c for c in root if isinstance(c.tag, str)]
    bodies = [c for c in children if c.tag == q(SOAP, "Body")]
    if len(bodies) != 1:
        raise error(f"{what} has {len(bodies)} soap:Body elements")
    content = [c for c in bodies[0] if isinstance(c.tag, str)]
    if len(content) != 1:
        raise error(f"{what} soap:Body has {len(content)} child elements, expected 1")
    return content[0]


def _client(msg: str) -> SoapFault:
    return SoapFault("soap:Client", msg)


def string_value(el: etree._Element) -> str | None:
    """An ``xs:string`` element's whole character data (comments left out), or None if it holds an element."""
    if any(isinstance(c.tag, str) for c in el):
        return None
    return (el.text or "") + "".join(c.tail or "" for c in el)


def _strict_framing(root: etree._Element) -> None:
    """SOAP 1.1 rules a lenient reader would let through: raises SoapFault."""
    pis = [*root.itersiblings(etree.PI, preceding=True), *root.iter(etree.PI), *root.itersiblings(etree.PI)]
    if pis:
        raise _client(f"the SOAP message contains a processing instruction <?{pis[0].target} ...?> (SOAP 1.1 §3)")
    children = [c for c in root if isinstance(c.tag, str)]
    headers = [i for i, c in enumerate(children) if c.tag == q(SOAP, "Header")]
    if headers not in ([], [0]):
        raise _client("soap:Header must be the Envelope's first child and occur once (SOAP 1.1 §4.2)")
    for block in (c for c in (children[0] if headers else ()) if isinstance(c.tag, str)):
        must = block.get(q(SOAP, "mustUnderstand"), "0")
        if must not in ("0", "1"):
            raise _client(f"soap:mustUnderstand is {must!r}, not 0 or 1 (SOAP 1.1 §4.2.3)")
        if must == "1" and block.get(q(SOAP, "actor"), SOAP_ACTOR_NEXT) == SOAP_ACTOR_NEXT:
            raise SoapFault("soap:MustUnderstand",
                            f"header block {etree.QName(block).localname!r} in namespace "
                            f"{etree.QName(block).namespace!r} is mandatory and not understood (SOAP 1.1 §4.2.3)")


def parse_send_request(body: bytes) -> tuple[SendCall, bool]:
    """Read a ``Send`` call. Returns the call and whether the envelope carried a ``soap:Header``.

    Raises SoapFault(soap:Client) for anything that is not a well-formed ``Send`` (TRN-07), and
    SoapFault(soap:MustUnderstand) for a mandatory header block (SOAP 1.1 §4.2.3). Any other
    soap:Header is reported rather than refused: TRN-03 binds the DTS, and the gateway only needs to
    record it as evidence.
    """
    fail = _client
    send = _soap_body_child(body, "request", fail)
    root = send.getparent().getparent()
    _strict_framing(root)
    has_header = any(c.tag == q(SOAP, "Header") for c in root if isinstance(c.tag, str))
    if send.tag != q(SVC, "Send"):
        raise fail(f"operation {etree.QName(send).localname!r} in namespace {etree.QName(send).namespace!r} is not svc:Send")
    kids = [c for c in send if isinstance(c.tag, str)]
    names = [c.tag for c in kids]
    expected = [q(SVC, "MessageXML"), q(SVC, "UserId"), q(SVC, "Password")]
    if names != expected:
        got = ", ".join(etree.QName(n).localname for n in names) or "nothing"
        raise fail(f"Send must hold MessageXML, UserId, Password in this order; got {got}")
    values = [string_value(c) for c in kids]
    for kid, value in zip(kids, values):
        if value is None:
            raise fail(f"{etree.QName(kid).localname} holds an element; it is an xs:string of character data (TRN-04, TRN-05)")
    message_xml, user_id, password = values
    return SendCall(message_xml.encode("utf-8"), user_id, password), has_header


def parse_send_response(body: bytes) -> bytes:
    """The reply message text carried by a ``SendResponse``; raises SoapFault for a fault,
    NotSendResponse for anything else that is not a SendResponse (an element inside SendResult too)."""
    child = _soap_body_child(body, "response", NotSendResponse)
    if child.tag == q(SOAP, "Fault"):
        code = child.findtext("faultcode") or ""
        raise SoapFault(code.strip(), (child.findtext("faultstring") or "").strip())
    if child.tag != q(SVC, "SendResponse"):
        raise NotSendResponse(f"response body holds {child.tag}, not svc:SendResponse")
    results = [c for c in child if isinstance(c.tag, str)]
    if [c.tag for c in results] != [q(SVC, "SendResult")]:
        raise NotSendResponse("SendResponse must hold exactly one SendResult")
    value = string_value(results[0])
    if value is None:
        raise NotSendResponse("SendResult holds an element, not the reply as character data (TRN-06)")
    return value.encode("utf-8")


def media_type_ok(content_type: str | None) -> bool:
    """TRN-07: media type text/xml and charset utf-8, case-insensitive, parameters per RFC 9110."""
    if not content_type:
        return False
    parts = content_type.split(";")
    if parts[0].strip().lower() != "text/xml":
        return False
    params = {}
    for p in parts[1:]:
        if "=" in p:
            k, v = p.split("=", 1)
            v = v.strip()
            if len(v) >= 2 and v[0] == v[-1] == '"':
                v = v[1:-1]
            params[k.strip().lower()] = v.lower()
    return params.get("charset") == "utf-8"
