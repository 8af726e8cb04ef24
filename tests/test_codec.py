"""The shared codec: SOAP framing, hardened parsing, envelopes, lexical rules."""

import pytest
from lxml import etree

from conformance.codec import envelope, lexical, safexml, soap
from conformance.codec.namespaces import ENV, q

VI = "Công ty TNHH Thương mại Hải Đăng"


def test_message_text_survives_soap_framing_octet_for_octet():
    text = f'<?xml version="1.0" encoding="UTF-8"?>\n<Envelope xmlns="urn:ecdi:envelope:1">\r\n<a>{VI} &amp; &lt;x&gt;</a></Envelope>'.encode()
    call, has_header = soap.parse_send_request(soap.send_request_body(text, "nguyenvana", " p@ss "))
    assert call.message_text == text
    assert (call.user_id, call.password, has_header) == ("nguyenvana", " p@ss ", False)
    assert soap.parse_send_response(soap.send_response_body(text)) == text


@pytest.mark.parametrize("body,fragment", [
    (b"not xml", "not well-formed"),
    (b'<soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/"><soap:Body><x:Other xmlns:x="urn:x"/></soap:Body></soap:Envelope>', "not svc:Send"),
    (b'<soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/"><soap:Body><svc:Send xmlns:svc="urn:ecdi:service:1"><svc:UserId>a</svc:UserId></svc:Send></soap:Body></soap:Envelope>', "MessageXML, UserId, Password"),
    (b'<!DOCTYPE x [<!ENTITY e "boom">]><soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/"/>', "DOCTYPE"),
])
def test_malformed_send_is_a_client_fault_naming_the_cause(body, fragment):
    with pytest.raises(soap.SoapFault) as exc:
        soap.parse_send_request(body)
    assert exc.value.faultcode == "soap:Client" and fragment in exc.value.faultstring


def test_fault_is_read_back_as_a_fault():
    with pytest.raises(soap.SoapFault) as exc:
        soap.parse_send_response(soap.fault_body("soap:Server", "internal"))
    assert exc.value.faultcode == "soap:Server"


@pytest.mark.parametrize("ct,ok", [
    ("text/xml; charset=utf-8", True), ("TEXT/XML;Charset=\"UTF-8\"", True),
    ("text/xml", False), ("application/soap+xml; charset=utf-8", False), ("text/xml; charset=iso-8859-1", False),
])
def test_media_type_rule_of_trn07(ct, ok):
    assert soap.media_type_ok(ct) is ok


@pytest.mark.parametrize("data,code", [
    (b"\xef\xbb\xbf<a/>", "X0001"),
    (b"<a>\xff</a>", "X0001"),
    (b'<?xml version="1.1"?><a/>', "X0001"),
    (b'<?xml version="1.0" encoding="ISO-8859-1"?><a/>', "X0001"),
    (b'<!-- c --><!DOCTYPE a SYSTEM "http://127.0.0.1:9/x.dtd"><a/>', "X0001"),
    (b"<a><b></a>", "X0001"),
    (b"<a>" * 70 + b"</a>" * 70, "X0002"),
    (b"<a>" + b"x" * 1000 + b"</a>", "E0001"),
])
def test_hardened_parse_refuses_with_the_ecdi_code(data, code):
    with pytest.raises(safexml.XmlRefused) as exc:
        safexml.parse_message_text(data, max_bytes=900, max_depth=64)
    assert exc.value.code == code


def test_entities_are_never_expanded():
    # No DOCTYPE may pass, so an entity reference can only be undeclared: not well-formed.
    with pytest.raises(safexml.XmlRefused):
        safexml.parse_message_text(b"<a>&xxe;</a>")


def _query_envelope() -> etree._Element:
    header = envelope.Header({"procedureType": "1", "Reference/version": "1.0", "Reference/messageId": envelope.new_message_id()})
    query = etree.Element(q(ENV, "Query"))
    etree.SubElement(query, q(ENV, "afterSequence")).text = "0"
    return envelope.build_envelope(header, query)


def test_header_round_trip_and_paths():
    root = _query_envelope()
    assert envelope.read_header(root).version == "1.0"
    assert envelope.ecdi_path(root.find(f".//{q(ENV, 'afterSequence')}")) == "/Envelope/Body/Content/Query/afterSequence"


def test_result_round_trip_keeps_vietnamese_and_ignores_unknown_elements():
    res = envelope.Result("S0005", 1, errors=[envelope.ErrorEntry("S0005", "/Envelope/Header/To/identity", "Mã hải quan không tồn tại")])
    el = res.to_element()
    etree.SubElement(el, "{urn:vendor:x}extension").text = "ignored"
    back = envelope.Result.from_element(el)
    assert back.errors == res.errors and back.sequence == 1


def test_lexical_rules_name_the_first_offending_node():
    root = _query_envelope()
    assert lexical.lexical_problem(root) is None
    root.find(q(ENV, "Header")).append(etree.Comment("x"))
    issue = lexical.lexical_problem(root)
    assert issue.path == "/Envelope/Header/comment()[1]"
    root = _query_envelope()
    root.find(f".//{q(ENV, 'procedureType')}").text = "Ha\u0309i"  # decomposed "Hải"
    assert lexical.lexical_problem(root).path == "/Envelope/Header/procedureType"
