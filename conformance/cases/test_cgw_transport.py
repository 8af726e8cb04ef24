"""CGW transport family (TRN, the gateway's side): the harness plays the DTS and judges the gateway's
HTTP, SOAP and TLS answers (§3). Run with ``ecdi run --gateway gateway.toml``."""

from conformance.case import Check, case
from conformance.checks import cgw_transport as wire
from conformance.codec import soap

SEND = soap.SOAP_ACTION
# TRN-07: requests that are not a well-formed SOAP 1.1 Send, or framed with another media type or charset
# (the Send inside them is valid); each is due HTTP 500 soap:Client. The body changes act on the valid body.
NOT_A_SEND = [
    ("a body that is not XML", lambda body: b"MessageXML=hello", None),
    ("another operation", lambda body: body.replace(b"svc:Send>", b"svc:Receive>").replace(b"svc:Send ", b"svc:Receive "), None),
    ("a Send without Password", lambda body: body[:body.index(b"<svc:Password>")]
     + body[body.index(b"</svc:Password>") + len(b"</svc:Password>"):], None),
    ("a SOAP request with a DOCTYPE", lambda body: body.replace(b"?>", b'?><!DOCTYPE soap:Envelope [<!ENTITY x "y">]>', 1), None),
    ("SOAPAction of another operation", None, {"SOAPAction": '"urn:ecdi:service:1#Other"'}),
    ("SOAPAction without its quotes", None, {"SOAPAction": "urn:ecdi:service:1#Send"}),
    ("no SOAPAction", None, {"SOAPAction": None}),
    ("Content-Type application/xml", None, {"Content-Type": "application/xml; charset=utf-8"}),
    ("Content-Type without charset", None, {"Content-Type": "text/xml"}),
    ("Content-Type charset=iso-8859-1", None, {"Content-Type": "text/xml; charset=iso-8859-1"}),
]


def _headers(changes: dict | None) -> dict:
    headers = {"Content-Type": soap.CONTENT_TYPE, "SOAPAction": SEND}
    for name, value in (changes or {}).items():
        headers.pop(name)
        if value is not None:
            headers[name] = value
    return headers


@case(
    "cgw-transport.send-over-https",
    requirements=["TRN-01", "TRN-06"],
    party="CGW",
    purpose="A valid Send POSTed over HTTPS to the statement's endpoint (path /ecdi/CISService) is answered "
            "HTTP 200 text/xml; charset=utf-8 with a SendResponse holding a signed reply.",
)
def test_send_over_https(ecdi):
    exchange = ecdi.send(ecdi.message("declaration-import", type="929"))
    ecdi.check(Check(exchange.path.split("?")[0] == soap.ENDPOINT_PATH,
                     f"the statement's endpoint path is {exchange.path}"), "TRN-01")
    ecdi.check(wire.answered(exchange, "a valid Send"), "TRN-01", stop=True)
    ecdi.check(wire.send_answered(exchange, "a valid Send"), "TRN-06", stop=True)
    ecdi.check(wire.reply_signed(exchange, ecdi.statement.cgw_sign_anchor), "TRN-06")


@case(
    "cgw-transport.wsdl",
    requirements=["TRN-02"],
    party="CGW",
    purpose="GET ?wsdl returns Annex D as text/xml with {cgw_endpoint} replaced by the endpoint, and a SOAP "
            "toolkit (zeep) reads the Send operation at that address.",
)
def test_wsdl(ecdi):
    exchange = ecdi.get(soap.ENDPOINT_PATH + "?wsdl")
    ecdi.check(wire.wsdl_served(exchange, ecdi.profile.wsdl(ecdi.statement.endpoint), ecdi.statement.endpoint),
               "TRN-02", stop=True)
    ecdi.check(wire.wsdl_read_by_zeep(exchange, ecdi.statement.endpoint), "TRN-02")


@case(
    "cgw-transport.cdata-accepted",
    requirements=["TRN-05"],
    party="CGW",
    purpose="A valid declaration whose MessageXML is one CDATA section is accepted (29) as the same text "
            "escaped would be.",
)
def test_cdata_accepted(ecdi):
    exchange = ecdi.send(ecdi.message("declaration-import", type="929"), cdata=True)
    ecdi.check(wire.send_answered(exchange, "a Send with MessageXML as CDATA"), "TRN-05", stop=True)
    ecdi.check(Check(exchange.reply_function == "29", f"the CDATA Send was answered {exchange.reply_function} "
                                                      f"{' '.join(exchange.reply_codes)}".rstrip(),
                     expected="29: the declaration recorded"), "TRN-05")


@case(
    "cgw-transport.no-http-auth-errors",
    requirements=["TRN-06"],
    party="CGW",
    purpose="A Send with a wrong password or an unknown UserId is answered HTTP 200 with a signed 271 U0001, "
            "never HTTP 401 or 403.",
)
def test_no_http_auth_errors(ecdi):
    for what, options in (("a wrong password", {"password": "not-the-password-1"}),
                          ("an unknown UserId", {"user": "khong.ton.tai"})):
        exchange = ecdi.send(ecdi.message("declaration-import", type="929"), **options)
        if ecdi.check(wire.send_answered(exchange, f"a Send with {what}"), "TRN-06"):
            ecdi.check(wire.reply_signed(exchange, ecdi.statement.cgw_sign_anchor, f"the reply to {what}"), "TRN-06")
            ecdi.check(Check((exchange.reply_function, exchange.reply_codes[:1]) == ("271", ["U0001"]),
                             f"{what} was answered {exchange.reply_function} {' '.join(exchange.reply_codes)}",
                             expected="271 U0001"), "TRN-06")


@case(
    "cgw-transport.soap-faults",
    requirements=["TRN-07"],
    party="CGW",
    purpose="What is not a well-formed SOAP 1.1 Send, or comes with another media type or charset, is answered "
            "HTTP 500 with a soap:Client fault; the same Send with the header's case changed is not a fault.",
)
def test_soap_faults(ecdi):
    text = ecdi.message("declaration-import", type="929")
    for what, change_body, change_headers in NOT_A_SEND:
        exchange = ecdi.send_framed(text, change_body=change_body, headers=_headers(change_headers))
        ecdi.check(wire.soap_fault(exchange, "soap:Client", what), "TRN-07")
    same = ecdi.send_framed(text, headers=_headers({"Content-Type": 'Text/XML; Charset="UTF-8"'}))
    ecdi.check(wire.send_answered(same, "a Send with Content-Type Text/XML; Charset=\"UTF-8\" (RFC 9110: the same)"),
               "TRN-07")


@case(
    "cgw-transport.overload-answers",
    requirements=["TRN-08"],
    party="CGW",
    purpose="Sends arriving at once are each answered with a signed reply, or HTTP 503 with Retry-After 1-300, "
            "or 271 E9001; a request so refused is not recorded (a query for it is answered E0002).",
)
def test_overload_answers(ecdi):
    texts = [ecdi.message("declaration-import", type="929") for _ in range(8)]
    exchanges = ecdi.send_at_once(texts)
    refused = []
    for exchange in exchanges:
        ecdi.check(wire.allowed_overload_answer(exchange, ecdi.statement.cgw_sign_anchor), "TRN-08")
        if exchange.response_status == 503 or exchange.reply_codes[:1] == ["E9001"]:
            refused.append(exchange)
    for exchange in refused:
        query = ecdi.send(ecdi.query(exchange.message_id, 0))
        ecdi.check(Check(query.reply_codes[:1] == ["E0002"], f"the query for refused request {exchange.message_id} "
                                                             f"was answered {query.reply_function} "
                                                             f"{' '.join(query.reply_codes)}", expected="272 E0002"),
                   "TRN-08")
    if not refused:
        ecdi.check(Check(True, f"{len(exchanges)} Sends at once were all answered with signed replies (no overload "
                               "was provoked: the 503/E9001 forms were not exercised)"), "TRN-08")


@case(
    "cgw-transport.tls",
    requirements=["TRN-09"],
    party="CGW",
    purpose="Offered only TLS 1.1, or only 3DES suites, the gateway establishes no session; over TLS 1.2 it "
            "accepts at least one of the two mandatory ECDHE AES-128-GCM suites.",
)
def test_tls(ecdi):
    from conformance.playing_dts import tls_hello

    control = ecdi.tls_offer("TLS 1.2, mandatory suites (control)", tls_hello.TLS_1_2, list(tls_hello.SUITES_MANDATORY))
    ecdi.check(wire.no_session(ecdi.tls_offer("TLS 1.1 only", tls_hello.TLS_1_1, list(tls_hello.SUITES_TLS_1_1)),
                               "TLS 1.1", control), "TRN-09")
    ecdi.check(wire.no_session(ecdi.tls_offer("3DES suites only", tls_hello.TLS_1_2, list(tls_hello.SUITES_3DES)),
                               "3DES suites", control), "TRN-09")
    mandatory = {suite: ecdi.tls_session(suite) for suite in ("ECDHE-RSA-AES128-GCM-SHA256",
                                                              "ECDHE-ECDSA-AES128-GCM-SHA256")}
    ecdi.check(wire.session_with_mandatory_suite(mandatory), "TRN-09")


@case(
    "cgw-transport.size-limit",
    requirements=["TRN-13"],
    party="CGW",
    purpose="A message text of S_max octets is evaluated (29); one octet more is answered 271 E0001, its HTTP "
            "body (within 4 x S_max) read rather than refused with 413.",
)
def test_size_limit(ecdi):
    s_max = ecdi.statement.parameters["s_max"]          # the deployment's published S_max
    for size, due in ((s_max, "29"), (s_max + 1, "E0001")):
        text = ecdi.message("declaration-import", type="929")
        text += b"\n" * (size - len(text))        # white space after the root: outside the signature, valid XML
        exchange = ecdi.send(text)
        if not ecdi.check(wire.send_answered(exchange, f"a Send of a {size}-octet message text"), "TRN-13"):
            continue
        got = exchange.reply_function if due == "29" else (exchange.reply_codes or [None])[0]
        ecdi.check(Check(got == due, f"a {size}-octet message text (S_max {s_max}) was answered "
                                     f"{exchange.reply_function} {' '.join(exchange.reply_codes)}".rstrip(),
                         expected=due), "TRN-13")
