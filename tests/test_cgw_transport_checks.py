"""The CGW transport checks as pure functions of recorded exchanges: each can fail, each passes what the
clause allows however the gateway writes it."""

from __future__ import annotations

from conformance.checks import cgw_transport as wire
from conformance.codec import soap
from conformance.gateway_control import Exchange
from conformance.profile import load_profile

ENDPOINT = "https://cgw.example:8443/ecdi/CISService"


def exchange(status=200, headers=None, body=b"", reply_text=None, error=None, **extra) -> Exchange:
    return Exchange(seq=1, case_id="c", received_at=0.0, responded_at=0.1, client="harness", method="POST",
                    path="/ecdi/CISService", request_headers={}, request_body=b"", message_text=None, user_id=None,
                    message_id=None, type=None, function=None, reference=None, attempt=1, response_status=status,
                    response_headers={"Content-Type": soap.CONTENT_TYPE} if headers is None else headers,
                    response_body=body, reply_text=reply_text, reply_function=extra.get("function"),
                    reply_codes=extra.get("codes", []), rule=None,
                    gateway_verdict={"observer": "harness", **({"transport_error": error} if error else {})})


def test_a_send_answer_needs_200_text_xml_and_a_send_result():
    good = exchange(reply_text=b"<Envelope/>", body=soap.send_response_body(b"<Envelope/>"))
    assert wire.send_answered(good).ok
    assert not wire.send_answered(exchange(status=401)).ok and "TRN-06 forbids" in wire.send_answered(exchange(403)).message
    assert not wire.send_answered(exchange(headers={"Content-Type": "application/xml"}, reply_text=b"<x/>")).ok
    assert not wire.send_answered(exchange(body=b"<html/>")).ok                 # 200 but no SendResult
    cdata = exchange(reply_text=b"<x/>", body=b"<SendResult><![CDATA[<x/>]]></SendResult>")
    assert not wire.send_answered(cdata).ok
    assert not wire.answered(exchange(status=None, error="ConnectionError")).ok


def test_an_unsigned_reply_is_not_signed():
    assert not wire.reply_signed(exchange(reply_text=b"<Envelope xmlns='urn:ecdi:envelope:1'/>"), "anchor.pem").ok
    assert not wire.reply_signed(exchange(), "anchor.pem").ok


def fault(code: str, prefix: str = "soap") -> bytes:
    return (f'<{prefix}:Envelope xmlns:{prefix}="http://schemas.xmlsoap.org/soap/envelope/">'
            f"<{prefix}:Body><{prefix}:Fault><faultcode>{prefix}:{code}</faultcode><faultstring>x</faultstring>"
            f"</{prefix}:Fault></{prefix}:Body></{prefix}:Envelope>").encode()


def test_a_client_fault_is_500_with_faultcode_client_under_any_prefix():
    assert wire.soap_fault(exchange(500, body=fault("Client")), "soap:Client", "x").ok
    assert wire.soap_fault(exchange(500, body=fault("Client", "s")), "soap:Client", "x").ok
    assert not wire.soap_fault(exchange(500, body=fault("Server")), "soap:Client", "x").ok
    assert not wire.soap_fault(exchange(400, body=fault("Client")), "soap:Client", "x").ok
    assert not wire.soap_fault(exchange(200, body=b"<ok/>"), "soap:Client", "x").ok


def test_the_wsdl_is_annex_d_whatever_its_prefixes_and_white_space():
    annex_d = load_profile("ecdi-1.0").wsdl(ENDPOINT)
    assert wire.wsdl_served(exchange(body=annex_d, headers={"Content-Type": "text/xml"}), annex_d, ENDPOINT).ok
    renamed = (annex_d.replace(b"svc:", b"e:").replace(b"xmlns:svc=", b"xmlns:e=").replace(b"\n    ", b" ")
               .replace(b"wsdl:", b"w:").replace(b"xmlns:wsdl=", b"xmlns:w="))
    assert wire.wsdl_served(exchange(body=renamed, headers={"Content-Type": "text/xml; charset=utf-8"}), annex_d,
                            ENDPOINT).ok
    assert wire.wsdl_read_by_zeep(exchange(body=renamed), ENDPOINT).ok
    wrong = annex_d.replace(ENDPOINT.encode(), b"https://other.example/ecdi/CISService")
    check = wire.wsdl_served(exchange(body=wrong, headers={"Content-Type": "text/xml"}), annex_d, ENDPOINT)
    assert not check.ok and "address" in check.message
    assert not wire.wsdl_read_by_zeep(exchange(body=wrong), ENDPOINT).ok
    assert not wire.wsdl_served(exchange(body=annex_d, headers={"Content-Type": "text/html"}), annex_d, ENDPOINT).ok
    assert not wire.wsdl_served(exchange(404, body=b""), annex_d, ENDPOINT).ok


def test_overload_answers_503_need_retry_after_1_to_300():
    for value, ok in (("1", True), ("300", True), ("0", False), ("301", False), (None, False), ("soon", False)):
        headers = {"Retry-After": value} if value is not None else {}
        assert wire.allowed_overload_answer(exchange(503, headers=headers), "a.pem").ok is ok, value


def test_tls_refusal_counts_only_when_the_control_hello_was_answered():
    control = {"established": True, "version": "0x0303"}
    assert wire.no_session({"established": False, "error": "alert"}, "TLS 1.1", control).ok
    assert not wire.no_session({"established": True, "version": "0x0302"}, "TLS 1.1", control).ok
    undecided = wire.no_session({"established": False}, "TLS 1.1", {"established": False, "error": "closed"})
    assert not undecided.ok and undecided.undecided
    assert wire.session_with_mandatory_suite({"a": {"established": False}, "b": {"established": True}}).ok
    assert not wire.session_with_mandatory_suite({"a": {"established": False, "error": "x"}}).ok
