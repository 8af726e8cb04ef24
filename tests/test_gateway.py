"""The mock gateway seen from a plain client: requests + our own signing, never the reference DTS.

One gateway serves the whole module (started once: PKI generation dominates the cost); each test
begins its own case, so its evidence and scenario are its own.
"""

from __future__ import annotations

import sqlite3
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta, timezone
from decimal import Decimal

import pytest
import requests
from lxml import etree

from conformance.codec import certs, safexml, soap, xmlsig
from conformance.codec.envelope import Header, Result, build_envelope, content_child, format_datetime, new_message_id, read_header
from conformance.codec.namespaces import DEC, ENV, q
from conformance.gateway_control import GatewayControl, ScenarioRefused
from conformance.pki import TestPKI
from conformance.profile import load_profile
from mock_server import Account, GatewayConfig, run_in_thread
from mock_server import pipeline
from mock_server.evidence import verify_chain

from conftest import BOTH_ENGINES, storage_config

USER, PASSWORD = "nguyenvana", "Mật-khẩu 1"
OTHER_USER, OTHER = "tranthib", "0109999999"      # a user registered for another tax code only
OFFICE = "03TG"
TIME_SCALE = 0.01            # T_poll_min 0.04 s, T_skew 3 s


# ------------------------------------------------------------------------------------------
# fixtures


@pytest.fixture(scope="module")
def pki(pki_dir) -> TestPKI:
    return TestPKI.ensure(pki_dir)                    # the session's PKI (conftest), loaded from its cache


def gateway_config(pki: TestPKI, folder, time_scale: float = TIME_SCALE, **storage) -> GatewayConfig:
    return GatewayConfig(
        profiles=["ecdi-1.0"], pki_folder=pki.folder, **(storage or {"evidence_db": folder / "evidence.sqlite3"}),
        time_scale=time_scale, accounts=[Account(USER, PASSWORD, [pki.tax_code]), Account(OTHER_USER, PASSWORD, [OTHER])],
        registered_certs={pki.tax_code: [pki.declarant.cert]},
    )


@pytest.fixture(scope="module")
def gateway(pki, tmp_path_factory, request):
    """SQLite, or with ``BOTH_ENGINES`` each engine in turn (the essentials run on both)."""
    folder = tmp_path_factory.mktemp("gateway")
    running = run_in_thread(gateway_config(pki, folder, **storage_config(request, folder)))
    yield running
    running.stop()


@pytest.fixture(scope="module")
def control(gateway, pki) -> GatewayControl:
    client = GatewayControl(gateway.control_url, token=gateway.control_token, ca_pem=pki.tls_ca_pem)
    yield client
    client.close()


@pytest.fixture
def case(control, request) -> str:
    """A fresh case with the default scenario; tests that need another call begin_case again."""
    case_id = request.node.name
    control.begin_case(case_id, {"name": "default"})
    return case_id


# ------------------------------------------------------------------------------------------
# a plain client


class Client:
    def __init__(self, gateway, pki: TestPKI):
        self.gateway, self.pki = gateway, pki
        self.session = requests.Session()
        self.session.trust_env = False         # else REQUESTS_CA_BUNDLE overrides verify
        self.session.verify = str(pki.tls_ca_pem)

    def message(self, *, type_="929", function="8", reference=None, content=None, message_id=None,
                issued: datetime | None = None, from_identity=None, office=OFFICE, signer=None,
                signature_method=xmlsig.RSA_SHA256, digest_method=xmlsig.SHA256) -> bytes:
        """A signed request message text (profile 1.0)."""
        fields = {
            "procedureType": "2" if type_ in ("701", "702") else "1", "Reference/version": "1.0", "Reference/messageId": message_id or new_message_id(),
            "SendApplication/name": "ThuNghiem-DTS", "SendApplication/version": "0.1",
            "SendApplication/companyName": "Công ty Cổ phần Phần mềm Thử Nghiệm",
            "SendApplication/companyIdentity": "0109876543",
            "SendApplication/createMessageIssue": format_datetime(issued or datetime.now(timezone.utc)),
            "From/name": "Công ty TNHH Thương mại Hải Đăng", "From/identity": from_identity or self.pki.tax_code,
            "To/name": "Chi cục Hải quan 03TG", "To/identity": office,
            "Subject/type": type_, "Subject/function": function,
            "Subject/reference": reference or f"HD-{new_message_id()[:8]}",
            "Subject/sendApplication": "6a1c0b7e-2d3f-4c5b-8e9a-0f1e2d3c4b5a", "Subject/receiveApplication": "CGW",
        }
        root = build_envelope(Header(fields), content if content is not None else declaration())
        return xmlsig.sign_envelope(root, signer or self.pki.declarant.signer(),
                                    signature_method=signature_method, digest_method=digest_method)

    def query(self, submission_id: str, after: int, type_="929") -> bytes:
        query = etree.Element(q(ENV, "Query"), nsmap={None: ENV})
        etree.SubElement(query, q(ENV, "afterSequence")).text = str(after)
        return self.message(type_=type_, function="13", reference=submission_id, content=query)

    def post(self, body: bytes, *, content_type=soap.CONTENT_TYPE, action=soap.SOAP_ACTION) -> requests.Response:
        headers = {"Content-Type": content_type, "SOAPAction": action}
        return self.session.post(self.gateway.endpoint_url, data=body, headers=headers, timeout=10)

    def send(self, text: bytes, *, user=USER, password=PASSWORD) -> tuple[requests.Response, bytes]:
        response = self.post(soap.send_request_body(text, user, password))
        assert response.status_code == 200, response.text
        assert response.headers["Content-Type"] == "text/xml; charset=utf-8"
        return response, soap.parse_send_response(response.content)


@pytest.fixture(scope="module")
def client(gateway, pki) -> Client:
    return Client(gateway, pki)


def declaration(values=("8500", "800"), total=None, hs_codes=None) -> etree._Element:
    """A dec:Declaration after Annex B, one GoodsItem per value."""
    total = total if total is not None else str(sum(Decimal(v) for v in values))
    items = "".join(
        f"<GoodsItem><lineNo>{n}</lineNo><hsCode>{(hs_codes or {}).get(n, '84713020')}</hsCode>"
        f"<description>Máy tính xách tay, mới 100%</description><originCountry>CN</originCountry>"
        f"<quantity>20</quantity><unit>H87</unit><value>{v}</value></GoodsItem>"
        for n, v in enumerate(values, start=1)
    )
    return etree.fromstring(
        f'<Declaration xmlns="{DEC}"><typeCode>A11</typeCode>'
        "<Trader><taxCode>0312345678</taxCode><name>Công ty TNHH Thương mại Hải Đăng</name>"
        "<address>12 Nguyễn Huệ, Quận 1, TP. Hồ Chí Minh</address></Trader>"
        "<Partner><name>Shenzhen Example Electronics Co., Ltd.</name><countryCode>CN</countryCode></Partner>"
        "<transportMode>1</transportMode><transportDocument>SZXHPH250301</transportDocument>"
        "<packageCount>12</packageCount><grossMassKg>386.5</grossMassKg>"
        f"<Invoice><number>INV-88231</number><date>2025-03-02</date><currency>USD</currency>"
        f"<totalValue>{total}</totalValue></Invoice>{items}</Declaration>"
    )


def parse_reply(text: bytes):
    root = safexml.parse_message_text(text)
    return read_header(root), Result.from_element(content_child(root))


def verify_reply(text: bytes, pki: TestPKI) -> None:
    """SIG-14/SIG-15: RSA-SHA256 per Table 8-1, by a certificate under cgw_sign_anchor."""
    verified = xmlsig.verify_envelope(text, methods=(xmlsig.RSA_SHA256,), digests=(xmlsig.SHA256,))
    assert certs.chain_problem(verified.signer, verified.intermediates, [pki.sign_anchor],
                               datetime.now(timezone.utc)) is None


def submit(client: Client, **kwargs) -> tuple[str, bytes]:
    text = client.message(**kwargs)
    _, reply = client.send(text)
    header, result = parse_reply(reply)
    assert header.function == "29", result.errors
    return header["Subject/reference"], reply


# ------------------------------------------------------------------------------------------
# transport


def test_wsdl_is_annex_d_with_the_endpoint(gateway, client):
    response = client.session.get(gateway.wsdl_url, timeout=10)
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("text/xml")
    wsdl = etree.fromstring(response.content)
    address = wsdl.find(".//{http://schemas.xmlsoap.org/wsdl/soap/}address")
    assert address.get("location") == gateway.endpoint_url
    operation = wsdl.find(".//{http://schemas.xmlsoap.org/wsdl/soap/}operation")
    assert operation.get("soapAction") == "urn:ecdi:service:1#Send"


def test_zeep_loads_the_wsdl_and_calls_send(gateway, client, case):
    zeep = pytest.importorskip("zeep")
    from zeep.transports import Transport

    service = zeep.Client(gateway.wsdl_url, transport=Transport(session=client.session)).service
    result = service.Send(MessageXML=client.message().decode("utf-8"), UserId=USER, Password=PASSWORD)
    header, _ = parse_reply(result.encode("utf-8"))
    assert header.function == "29"


def test_wrong_soap_action_is_a_client_fault(client, case):
    response = client.post(soap.send_request_body(client.message(), USER, PASSWORD), action="urn:ecdi:service:1#Send")
    assert response.status_code == 500
    with pytest.raises(soap.SoapFault) as fault:
        soap.parse_send_response(response.content)
    assert fault.value.faultcode == "soap:Client"


def test_wrong_content_type_is_a_client_fault(client, case):
    response = client.post(soap.send_request_body(client.message(), USER, PASSWORD),
                           content_type="application/soap+xml; charset=utf-8")
    assert response.status_code == 500
    assert b"soap:Client" in response.content


def test_crl_is_served_and_other_paths_are_404(gateway, client, control, case, pki):
    base = gateway.endpoint_url.removesuffix(soap.ENDPOINT_PATH)
    crl = client.session.get(base + "/crl/" + pki.crl_der.name, timeout=10)
    assert crl.status_code == 200 and crl.content == pki.crl_der.read_bytes()
    assert client.session.get(base + "/crl/../pki.json", timeout=10).status_code == 404
    assert client.session.get(base + "/ecdi/Other", timeout=10).status_code == 404
    assert client.session.put(gateway.endpoint_url, data=b"x", timeout=10).status_code == 405
    assert [ex.response_status for ex in control.exchanges(case)] == [200, 404, 404, 405]


def test_control_api_needs_the_token(gateway, client):
    assert client.session.get(gateway.control_url + "/info", timeout=10).status_code == 403
    wrong = client.session.get(gateway.control_url + "/info", headers={"X-ECDI-Control": "guess"}, timeout=10)
    assert wrong.status_code == 403


def test_credentials_failures_are_indistinguishable(client, case, pki):
    text = client.message()
    descriptions = set()
    for user, password in ((USER, "wrong"), ("nobody", PASSWORD), (USER, PASSWORD.upper())):
        _, reply = client.send(text, user=user, password=password)
        header, result = parse_reply(reply)
        assert (header.function, result.result_code, result.sequence) == ("271", "U0001", 0)
        descriptions.add(result.errors[0].description)
    assert len(descriptions) == 1


# ------------------------------------------------------------------------------------------
# submissions


@BOTH_ENGINES
def test_valid_declaration_gets_a_signed_receipt(client, case, pki):
    text = client.message()
    _, reply = client.send(text)
    header, result = parse_reply(reply)
    sent = read_header(safexml.parse_message_text(text))
    assert header.function == "29" and result.result_code == "00000" and result.sequence == 1
    assert result.reception_number and len(result.reception_number) == 10 and result.reception_number.isdigit()
    assert header["Subject/reference"] == sent.message_id
    assert (header["To/identity"], header["From/identity"], header["Subject/type"]) == (pki.tax_code, OFFICE, "929")
    assert header["Subject/receiveApplication"] == sent["Subject/sendApplication"]
    verify_reply(reply, pki)


@BOTH_ENGINES
def test_retransmission_gets_the_byte_identical_entry_1(client, control, case):
    text = client.message()
    _, first = client.send(text)
    _, second = client.send(text)
    assert second == first
    attempts = [ex.attempt for ex in control.exchanges(case)]
    assert attempts == [1, 2]


@BOTH_ENGINES
def test_same_message_id_with_other_text_is_E0003(client, case):
    message_id = new_message_id()
    submit(client, message_id=message_id)
    _, reply = client.send(client.message(message_id=message_id))     # new reference, same messageId
    header, result = parse_reply(reply)
    assert (header.function, result.result_code) == ("271", "E0003")
    assert result.errors[0].field == "/Envelope/Header/Reference/messageId"


def test_message_text_over_s_max_is_271_E0001(client, case):
    s_max = load_profile("ecdi-1.0").params["S_max"]      # the body is 4 × S_max at most: still read (TRN-13)
    _, reply = client.send(b"<a>" + b"x" * s_max + b"</a>")
    assert parse_reply(reply)[1].result_code == "E0001"


def test_malformed_message_text_is_271_X0001_not_a_fault(client, case, pki):
    _, reply = client.send(b"this is <not xml")
    header, result = parse_reply(reply)
    assert (header.function, result.result_code, result.errors[0].field) == ("271", "X0001", "")
    # Table 4-3 placeholders for an unreadable request
    assert (header["procedureType"], header["Subject/type"], header["Subject/reference"]) == ("0", "000", "")
    assert header["To/identity"] == "0000000000"
    verify_reply(reply, pki)


@pytest.mark.parametrize("kwargs, path", [
    ({"from_identity": "031234567"}, "/Envelope/Header/From/identity"),
    ({"content": declaration(hs_codes={2: "8504409"})}, "/Envelope/Body/Content/Declaration/GoodsItem[2]/hsCode"),
])
def test_schema_error_is_X0002_with_its_path(client, control, case, kwargs, path):
    _, reply = client.send(client.message(**kwargs))
    header, result = parse_reply(reply)
    assert (header.function, result.result_code, result.errors[0].field) == ("271", "X0002", path)
    (row,) = control.exchanges(case)
    assert row.gateway_verdict["schema"][0]["path"] == path


def test_one_changed_character_breaks_the_signature(client, case):
    text = client.message()
    tampered = text.replace("Máy tính".encode(), "Máy tinh".encode(), 1)
    assert tampered != text
    _, reply = client.send(tampered)
    header, result = parse_reply(reply)
    assert (header.function, result.result_code) == ("271", "G0001")


def test_sha1_signature_is_accepted_with_W0001_in_profile_1_0(client, case, pki):
    _, reply = client.send(client.message(signature_method=xmlsig.RSA_SHA1, digest_method=xmlsig.SHA1))
    header, result = parse_reply(reply)
    assert (header.function, result.result_code) == ("29", "00000")
    assert [e.code for e in result.errors] == ["W0001"]



def test_the_row_summarises_the_reply_it_sent(client, control, case):
    """The row's reply function and codes are remembered from building the reply, not read back from it."""
    client.send(client.message(signature_method=xmlsig.RSA_SHA1, digest_method=xmlsig.SHA1))
    client.send(client.message(from_identity="031234567"))
    rows = control.exchanges(case)
    for row in rows:
        header, result = parse_reply(row.reply_text)
        assert (row.reply_function, row.reply_codes) == (header.function, [e.code for e in result.errors])
    assert [(r.reply_function, r.reply_codes) for r in rows] == [("29", ["W0001"]), ("271", ["X0002"])]

def test_revoked_certificate_is_G0003(client, case, pki):
    _, reply = client.send(client.message(signer=pki.revoked_declarant.signer()))
    assert parse_reply(reply)[1].result_code == "G0003"


def test_unregistered_certificate_is_G0005(client, case, pki):
    unregistered = pki.issue_declarant("unregistered", pki.tax_code)
    _, reply = client.send(client.message(signer=unregistered.signer()))
    assert parse_reply(reply)[1].result_code == "G0005"


def test_user_not_registered_for_the_tax_code_is_U0002(client, case):
    _, reply = client.send(client.message(), user=OTHER_USER)
    _, result = parse_reply(reply)
    assert (result.result_code, result.errors[0].field) == ("U0002", "/Envelope/Header/From/identity")


def test_future_create_message_issue_is_X0004(client, case):
    _, reply = client.send(client.message(issued=datetime.now(timezone.utc) + timedelta(minutes=5)))
    _, result = parse_reply(reply)
    assert result.result_code == "X0004"
    assert result.errors[0].field == "/Envelope/Header/SendApplication/createMessageIssue"


def test_the_gateway_clock_decides_the_window(client, control, case):
    control.advance_clock(86400 + 60)                 # T_age_max is not scaled (§2.1)
    try:
        _, reply = client.send(client.message())
        assert parse_reply(reply)[1].result_code == "X0004"
    finally:
        control.advance_clock(-(86400 + 60))


@BOTH_ENGINES
def test_duplicate_business_reference_is_E0074_quoting_the_reception_number(client, case):
    _, first = submit(client, reference="HD-2025/DUP1")
    _, reply = client.send(client.message(reference="HD-2025/DUP1"))
    header, result = parse_reply(reply)
    assert (header.function, result.result_code, result.sequence) == ("272", "E0074", 1)
    assert parse_reply(first)[1].reception_number in result.errors[0].description


@BOTH_ENGINES
def test_wrong_total_is_S0005_and_recorded(client, case):
    text = client.message(content=declaration(values=("100", "200"), total="301"))
    _, reply = client.send(text)
    header, result = parse_reply(reply)
    assert (header.function, result.result_code, result.sequence) == ("272", "S0005", 1)
    assert result.errors[0].field == "/Envelope/Body/Content/Declaration/Invoice/totalValue"
    assert client.send(text)[1] == reply                  # entry 1 of a submission: redelivered as stored


# ------------------------------------------------------------------------------------------
# queries and histories


def ask(client: Client, control: GatewayControl, submission_id: str, after: int) -> tuple[bytes, Header, Result]:
    control.advance_clock(0.05)                           # keep clear of T_poll_min (E9002)
    _, reply = client.send(client.query(submission_id, after))
    return (reply, *parse_reply(reply))


@BOTH_ENGINES
def test_queries_walk_the_default_history_then_get_12(client, control, case, pki):
    submission_id, _ = submit(client)
    seen = []
    for after in range(1, 6):
        reply, header, result = ask(client, control, submission_id, after)
        verify_reply(reply, pki)
        assert header["Subject/reference"] == submission_id
        seen.append((header.function, result.sequence))
        if header.function == "30":
            declaration_number = result.declaration_number
            assert len(declaration_number) == 12
        if header.function == "10":
            assert result.channel == "1"
        if header.function in ("10", "32", "35"):
            assert result.declaration_number == declaration_number
        if header.function == "35":
            assert result.cleared_at
    assert seen == [("30", 2), ("10", 3), ("32", 4), ("35", 5), ("12", 0)]
    first_30 = ask(client, control, submission_id, 1)[0]
    assert first_30 == ask(client, control, submission_id, 1)[0]        # stored entries are byte-identical


def test_pending_queries_are_answered_12_first(client, control, case):
    control.begin_case(case, {"name": "slow", "pending_queries": 2, "history": [{"function": "30"}]})
    submission_id, _ = submit(client)
    functions = [ask(client, control, submission_id, 1)[1].function for _ in range(3)]
    assert functions == ["12", "12", "30"]


def test_query_for_an_unknown_submission_is_transient_E0002(client, control, case):
    _, header, result = ask(client, control, new_message_id(), 0)
    assert (header.function, result.result_code, result.sequence) == ("272", "E0002", 0)


def test_queries_faster_than_t_poll_min_get_E9002_with_an_allowance_for_jitter(pki, tmp_path):
    """Unscaled, so a loaded machine's round trip cannot make back-to-back queries look slow: E9002 when
    arrivals are closer than T_poll_min less the allowance (REL-15 counts from a query's start, which
    the gateway cannot see); 80 % of T_poll_min apart is not refused."""
    poll_min = load_profile("ecdi-1.0").timer("T_poll_min")
    running = run_in_thread(gateway_config(pki, tmp_path, time_scale=1.0))
    control = GatewayControl(running.control_url, token=running.control_token, ca_pem=pki.tls_ca_pem)
    try:
        control.begin_case("e9002", {"name": "default"})
        client = Client(running, pki)
        submission_id, _ = submit(client)
        client.send(client.query(submission_id, 1))
        _, reply = client.send(client.query(submission_id, 1))
        assert parse_reply(reply)[1].result_code == "E9002"
        control.advance_clock(0.8 * poll_min)
        _, reply = client.send(client.query(submission_id, 1))
        assert parse_reply(reply)[1].result_code != "E9002"
    finally:
        control.close()
        running.stop()


# ------------------------------------------------------------------------------------------
# scenarios


def test_reply_rule_forces_a_271_and_the_retransmission_is_evaluated_afresh(client, control, case):
    description = "Người dùng không được phép khai báo cho mã số thuế này (mã tra cứu 42)"
    control.begin_case(case, {"name": "reject", "rules": [{
        "when": {"type": "929", "function": "8", "attempt": 1},
        "then": {"action": "reply", "function": "271",
                 "errors": [{"code": "U0002", "field": "/Envelope/Header/From/identity", "description": description}]}}]})
    text = client.message()
    _, reply = client.send(text)
    header, result = parse_reply(reply)
    assert (header.function, result.result_code, result.sequence) == ("271", "U0002", 0)
    assert result.errors[0].description == description
    _, again = client.send(text)
    assert parse_reply(again)[0].function == "29"          # a 271 is not recorded (REL-10)
    first, second = control.exchanges(case)
    assert first.rule == "rules[0]" and first.gateway_verdict["natural_outcome"] == {"accepted": True}
    assert (second.rule, second.attempt, second.reply_function) == (None, 2, "29")


def test_delay_rule_delays_the_response(client, control, case):
    control.begin_case(case, {"name": "slow", "rules": [{"when": {"function": "8"},
                                                         "then": {"action": "delay", "seconds": 0.3}}]})
    started = time.monotonic()
    client.send(client.message())
    assert time.monotonic() - started >= 0.3
    control.begin_case(case, {"name": "fast"})
    started = time.monotonic()
    client.send(client.message())
    assert time.monotonic() - started < 0.3


@BOTH_ENGINES
def test_exchanges_are_in_arrival_order_while_a_response_is_held_back(client, control, case):
    control.begin_case(case, {"name": "hold-first", "rules": [{"when": {"attempt": 1, "function": "8"},
                                                              "then": {"action": "delay", "seconds": 1.5}}]})
    text = client.message()
    with ThreadPoolExecutor(1) as pool:
        held = pool.submit(client.send, text)
        deadline = time.monotonic() + 10                  # its arrival, however busy the machine (no fixed sleep)
        while not (in_flight := control.exchanges(case)) and time.monotonic() < deadline:
            time.sleep(0.02)
        _, second = client.send(text)                     # retransmission while the first is held
        first = held.result()[1]
    assert len(in_flight) == 1 and in_flight[0].responded_at is None and in_flight[0].response_status is None
    assert second == first                                # recorded before the delay: entry 1 replayed
    rows = control.exchanges(case)
    assert [r.attempt for r in rows] == [1, 2]            # arrival order, though attempt 2 finished first
    assert rows[0].responded_at > rows[1].responded_at
    assert control.verify_evidence() == (True, None)


@pytest.mark.parametrize("scenario, named", [
    ({"name": "x", "rulez": []}, "'rulez'"),
    ({"rules": [{"when": {"type": "929"}, "then": {"action": "explode"}}]}, "'explode'"),
    ({"rules": [{"when": {"typ": "929"}, "then": {"action": "delay", "seconds": 1}}]}, "'typ'"),
    ({"rules": [{"then": {"action": "reply", "function": "271", "errors": [{"code": "E0074"}]}}]}, "E0074"),
    ({"history": [{"function": "35"}, {"function": "30"}]}, "history[0]"),
])
def test_invalid_scenarios_are_refused_naming_the_problem(control, case, scenario, named):
    with pytest.raises(ScenarioRefused) as refused:
        control.begin_case(case, scenario)
    assert named in str(refused.value)


# ------------------------------------------------------------------------------------------
# robustness and evidence


def test_an_internal_error_is_a_server_fault_without_traceback(client, control, case, monkeypatch):
    def explode(gw, ex):
        raise RuntimeError("secret internal detail")

    monkeypatch.setattr(pipeline, "CHECKS", [*pipeline.CHECKS[:3], explode, *pipeline.CHECKS[3:]])
    response = client.post(soap.send_request_body(client.message(), USER, PASSWORD))
    assert response.status_code == 500
    assert b"soap:Server" in response.content
    assert b"secret internal detail" not in response.content and b"Traceback" not in response.content
    (row,) = control.exchanges(case)
    assert "secret internal detail" in row.gateway_verdict["internal_error"][0]


def test_evidence_is_recorded_and_chained_and_tampering_is_found(client, control, case, gateway, tmp_path):
    text = client.message()
    client.send(text)
    (row,) = control.exchanges(case)
    assert row.message_text == text and row.user_id == USER and row.attempt == 1
    assert (row.type, row.function, row.reply_function, row.response_status) == ("929", "8", "29", 200)
    assert row.gateway_verdict["signature"]["ok"] and row.gateway_verdict["certificate"]["ok"]
    assert control.verify_evidence() == (True, None)

    copy = tmp_path / "evidence.sqlite3"
    with sqlite3.connect(gateway.evidence_db) as source, sqlite3.connect(copy) as target:
        source.backup(target)
    assert verify_chain(copy) == (True, None)
    with sqlite3.connect(copy) as db:
        with pytest.raises(sqlite3.DatabaseError, match="append-only"):
            db.execute("UPDATE exchanges SET client = 'elsewhere' WHERE seq = ?", (row.seq,))
        db.execute("DROP TRIGGER exchanges_no_update")
        db.execute("UPDATE exchanges SET client = 'elsewhere' WHERE seq = ?", (row.seq,))
    assert verify_chain(copy) == (False, row.seq)
