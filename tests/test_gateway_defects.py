"""Gateway defects seen on the wire from a plain client: each defect's gateway answers a request wrongly in
the way the defect names, and the correct gateway (``Behaviour()``) answers the same request rightly.

Each test starts the gateway with one defect (``defects.behaviour_of``); the correct answers are those of
test_gateway.py's shared gateway, asserted here again beside the defect's for the same request.
"""

from __future__ import annotations

import contextlib
from datetime import datetime, timedelta

import pytest
from lxml import etree

from conformance.codec import safexml, soap, xmlsig
from conformance.codec.envelope import Header, build_envelope, content_child, new_message_id, read_header
from conformance.codec.namespaces import DS, ENV, q
from conformance.gateway_control import GatewayControl
from conformance.profile import load_profile
from mock_server import Account, GatewayConfig, run_in_thread
from mock_server.behaviour import Behaviour
from mock_server.defects import DEFECTS, behaviour_of
from test_gateway import (  # noqa: F401 — the shared correct gateway and its client
    OTHER,
    OTHER_USER,
    PASSWORD,
    TIME_SCALE,
    USER,
    Client,
    ask,
    case,
    client,
    control,
    gateway,
    parse_reply,
    pki,
    submit,
    verify_reply,
)
from test_gateway_flows import (
    CENTRAL,
    CHECKER,
    amendment,
    approve,
    cancellation,
    declared,
    new_otp,
    order_content,
    ordered,
    send,
)

CERTIFICATION_ID = "ECDI-0000-00000"


def resigned(text: bytes, signer, fields: dict, **methods) -> bytes:
    """``text`` with these header fields, signed again."""
    root = safexml.parse_message_text(text)
    header = Header({**read_header(root).fields, **fields})
    return xmlsig.sign_envelope(build_envelope(header, content_child(root)), signer, **methods)


class Client11(Client):
    """Profile 1.1 requests: the 1.0 request with version 1.1 and the test certificationId, signed again."""

    def message(self, *, signer=None, signature_method=xmlsig.RSA_SHA256, digest_method=xmlsig.SHA256, **kwargs):
        return resigned(super().message(**kwargs), signer or self.pki.declarant.signer(),
                        {"Reference/version": "1.1", "SendApplication/certificationId": CERTIFICATION_ID},
                        signature_method=signature_method, digest_method=digest_method)


@contextlib.contextmanager
def served(pki, tmp_path, defect: str | None, *, version: str = "1.0", registered=(), time_scale=TIME_SCALE,
           knobs: dict | None = None):
    """(client, control) of a gateway with ``defect`` (None: correct; ``knobs`` set on it) accepting both profiles."""
    running = run_in_thread(GatewayConfig(
        profiles=["ecdi-1.0", "ecdi-1.1"], pki_folder=pki.folder, evidence_db=tmp_path / "evidence.sqlite3",
        time_scale=time_scale, behaviour=behaviour_of(defect).with_knobs(knobs or {}),
        accounts=[Account(USER, PASSWORD, [pki.tax_code]), Account(CHECKER, PASSWORD, [pki.tax_code]),
                  Account(OTHER_USER, PASSWORD, [OTHER])],
        registered_certs={pki.tax_code: [pki.declarant.cert, *registered]}))
    control = GatewayControl(running.control_url, token=running.control_token, ca_pem=pki.tls_ca_pem)
    control.begin_case("defect", {"name": "default"})
    try:
        yield (Client11 if version == "1.1" else Client)(running, pki), control
    finally:
        control.close()
        running.stop()


def answer(client, text: bytes, **kwargs):
    _, reply = client.send(text, **kwargs)
    return reply, *parse_reply(reply)


# ------------------------------------------------------------------------------------------------
# the registry


def test_the_correct_gateway_is_the_default_behaviour():
    assert Behaviour().changed() == {} and behaviour_of(None) == Behaviour()
    with pytest.raises(ValueError, match="unknown behaviour knob 'nope'"):
        Behaviour().with_knobs({"nope": 1})
    with pytest.raises(KeyError, match="unknown gateway defect 'nope'"):
        behaviour_of("nope")


@pytest.mark.parametrize("name", sorted(DEFECTS))
def test_each_defect_changes_the_behaviour_and_breaks_cgw_requirements(name):
    defect = DEFECTS[name]
    assert defect.behaviour().changed(), "a defect that changes nothing cannot be caught"
    profile = load_profile(defect.profile or "ecdi-1.1")
    for requirement in defect.breaks:
        assert "CGW" in profile.requirements[requirement].binds, requirement
    assert defect.caught_by.startswith("cgw-")


# ------------------------------------------------------------------------------------------------
# replies (SIG-14)


def test_unsigned_replies(pki, tmp_path, client, case):
    with served(pki, tmp_path, "unsigned-replies") as (bad, _):
        reply, header, _ = answer(bad, bad.message())
        assert header.function == "29"
        assert safexml.parse_message_text(reply).find(q(DS, "Signature")) is None
    verify_reply(answer(client, client.message())[0], pki)


def test_sha1_signed_replies(pki, tmp_path, client, case):
    with served(pki, tmp_path, "sha1-signed-replies") as (bad, _):
        reply = answer(bad, bad.message())[0]
        method = safexml.parse_message_text(reply).find(f"{q(DS, 'Signature')}/{q(DS, 'SignedInfo')}/{q(DS, 'SignatureMethod')}")
        assert method.get("Algorithm") == xmlsig.RSA_SHA1
        with pytest.raises(xmlsig.SignatureProblem):
            verify_reply(reply, pki)


# ------------------------------------------------------------------------------------------------
# Table 7-3 (RPL-05), one step at a time


def test_xml_checked_before_credentials(pki, tmp_path, client, case):
    with served(pki, tmp_path, "xml-before-credentials") as (bad, _):
        assert answer(bad, b"this is <not xml", password="wrong")[2].result_code == "X0001"
    assert answer(client, b"this is <not xml", password="wrong")[2].result_code == "U0001"


@pytest.mark.parametrize("defect, code, message, sender", [
    ("no-issue-time-window", "X0004", {"issued": datetime.now().astimezone() + timedelta(days=1)}, {}),
    ("no-user-authorisation", "U0002", {}, {"user": OTHER_USER}),
])
def test_a_skipped_step_accepts_what_it_should_refuse(pki, tmp_path, client, case, defect, code, message, sender):
    with served(pki, tmp_path, defect) as (bad, _):
        assert answer(bad, bad.message(**message), **sender)[1].function == "29"
    assert answer(client, client.message(**message), **sender)[2].result_code == code


def test_no_size_limit(pki, tmp_path, client, case):
    s_max = load_profile("ecdi-1.0").params["S_max"]
    with served(pki, tmp_path, "no-size-limit") as (bad, _):
        text = bad.message()
        assert answer(bad, text + b" " * (s_max + 1 - len(text)))[1].function == "29"
    text = client.message()
    assert answer(client, text + b" " * (s_max + 1 - len(text)))[2].result_code == "E0001"


def test_no_duplicate_reference(pki, tmp_path, client, case):
    with served(pki, tmp_path, "no-duplicate-reference") as (bad, _):
        submit(bad, reference="HD-TWICE-1")
        assert answer(bad, bad.message(reference="HD-TWICE-1"))[1].function == "29"
    submit(client, reference="HD-TWICE-2")
    assert answer(client, client.message(reference="HD-TWICE-2"))[2].result_code == "E0074"


def test_no_field_values(pki, tmp_path, client, case):
    from test_gateway import declaration

    with served(pki, tmp_path, "no-field-values") as (bad, _):
        assert answer(bad, bad.message(content=declaration(total="1")))[1].function == "29"
    assert answer(client, client.message(content=declaration(total="1")))[2].result_code == "S0005"


def test_no_content_check(pki, tmp_path, client, case):
    from test_gateway import declaration

    long = declaration()
    long.find(".//{*}description").text = "Máy tính " * 30
    with served(pki, tmp_path, "no-content-check") as (bad, _):
        assert answer(bad, bad.message(content=long))[2].errors == []
    assert answer(client, client.message(content=long))[2].result_code == "X0002"


def test_no_certification_register(pki, tmp_path):
    for defect, expected in (("no-certification-register", "29"), (None, "271")):
        with served(pki, tmp_path / str(defect), defect, version="1.1") as (c, _):
            text = resigned(c.message(), pki.declarant.signer(), {"SendApplication/certificationId": "ECDI-1999-99999"})
            assert answer(c, text)[1].function == expected


# ------------------------------------------------------------------------------------------------
# idempotency (REL-10)


def test_new_reception_number_on_retransmission(pki, tmp_path, client, case):
    with served(pki, tmp_path, "new-reception-number-on-retransmission") as (bad, _):
        text = bad.message()
        first, second = answer(bad, text), answer(bad, text)
        assert first[0] != second[0] and first[2].reception_number != second[2].reception_number
    text = client.message()
    assert answer(client, text)[0] == answer(client, text)[0]


def test_changed_text_accepted(pki, tmp_path, client, case):
    with served(pki, tmp_path, "changed-text-accepted") as (bad, _):
        message_id = new_message_id()
        _, entry1 = submit(bad, message_id=message_id)
        assert answer(bad, bad.message(message_id=message_id))[0] == entry1
    message_id = new_message_id()
    submit(client, message_id=message_id)
    assert answer(client, client.message(message_id=message_id))[2].result_code == "E0003"


# ------------------------------------------------------------------------------------------------
# transport (TRN)


def test_http_401_bad_password(pki, tmp_path, client, case):
    with served(pki, tmp_path, "http-401-bad-password") as (bad, _):
        response = bad.post(soap.send_request_body(bad.message(), USER, "wrong"))
        assert response.status_code == 401
    assert answer(client, client.message(), password="wrong")[2].result_code == "U0001"


def test_schema_error_fault(pki, tmp_path, client, case):
    with served(pki, tmp_path, "schema-error-fault") as (bad, _):
        response = bad.post(soap.send_request_body(bad.message(from_identity="031234567"), USER, PASSWORD))
        assert response.status_code == 500
        with pytest.raises(soap.SoapFault) as fault:
            soap.parse_send_response(response.content)
        assert fault.value.faultcode == "soap:Client"
    assert answer(client, client.message(from_identity="031234567"))[2].result_code == "X0002"


def test_wsdl_wrong_address(pki, tmp_path, gateway, client):
    def location(gw, session) -> str:
        wsdl = etree.fromstring(session.get(gw.wsdl_url, timeout=10).content)
        return wsdl.find(".//{http://schemas.xmlsoap.org/wsdl/soap/}address").get("location")

    with served(pki, tmp_path, "wsdl-wrong-address") as (bad, _):
        assert location(bad.gateway, bad.session) == DEFECTS["wsdl-wrong-address"].knobs["wsdl_location"]
    assert location(gateway, client.session) == gateway.endpoint_url


def test_e9001_recorded(pki, tmp_path):
    """A CRL past its nextUpdate (the gateway clock 31 days on) leaves the certificate unjudgeable: E9001
    (SIG-10), which must not be recorded (TRN-08): its retransmission is evaluated again."""
    for defect in ("e9001-recorded", None):
        with served(pki, tmp_path / str(defect), defect) as (c, control):
            control.advance_clock(31 * 86400)
            text = c.message(issued=datetime.now().astimezone() + timedelta(days=31))
            first, second = answer(c, text), answer(c, text)
            assert first[2].result_code == second[2].result_code == "E9001"
            if defect:
                assert first[0] == second[0] and first[2].sequence == 1
            else:
                assert first[0] != second[0] and first[2].sequence == second[2].sequence == 0


def test_unknown_user_told(pki, tmp_path, client, case):
    def descriptions(c):
        text = c.message()
        return {answer(c, text, user=u, password=p)[2].errors[0].description
                for u, p in ((USER, "wrong"), ("nobody", PASSWORD))}

    with served(pki, tmp_path, "unknown-user-told") as (bad, _):
        assert len(descriptions(bad)) == 2
    assert len(descriptions(client)) == 1


# ------------------------------------------------------------------------------------------------
# certificates (SIG-07..11)


@pytest.mark.parametrize("defect, matrix_entry, code", [
    ("revoked-certificate-accepted", "revoked", "G0003"),
    ("expired-certificate-accepted", "expired", "G0002"),
    ("tax-code-not-checked", "other-tax-code", "G0006"),
    ("unregistered-certificate-accepted", "unregistered", "G0005"),
])
def test_a_negative_certificate_accepted(pki, tmp_path, client, case, defect, matrix_entry, code):
    from conformance.pki_matrix import BY_NAME, identity

    signer = identity(pki, BY_NAME[matrix_entry]).signer()
    with served(pki, tmp_path, defect) as (bad, _):
        result = answer(bad, bad.message(signer=signer))[2]
        assert code not in [e.code for e in result.errors]
    assert answer(client, client.message(signer=signer))[2].result_code == code


def test_sha1_accepted_in_1_1(pki, tmp_path):
    for defect, expected in (("sha1-accepted-in-1.1", ("29", "00000")), (None, ("271", "G0007"))):
        with served(pki, tmp_path / str(defect), defect, version="1.1") as (c, _):
            _, header, result = answer(c, c.message(signature_method=xmlsig.RSA_SHA1, digest_method=xmlsig.SHA1))
            assert (header.function, result.result_code) == expected


# ------------------------------------------------------------------------------------------------
# polling (RPL-03)


@pytest.mark.parametrize("defect, sequences", [
    ("polling-repeats-entry", [1, 1, 1]),       # entry 1 again and again: 2 never comes
    ("polling-loses-entry", [3, 5, 0]),         # 2 and 4 are never answered
    (None, [2, 3, 4]),
])
def test_polling(pki, tmp_path, defect, sequences):
    """A DTS asking each time after the last sequence it received."""
    with served(pki, tmp_path, defect) as (c, control):
        submission_id, _ = submit(c)
        after, seen = 1, []
        for _ in range(3):
            seen.append(ask(c, control, submission_id, after)[2].sequence)
            after = seen[-1] or after
        assert seen == sequences


# ------------------------------------------------------------------------------------------------
# payments under 1.1 (PAY-04, PAY-07)


def _order(c, control, pki):
    _, number = declared(c, control)
    header, result = send(c, type_="701", office=CENTRAL, content=order_content(pki.tax_code, number))
    assert header.function == "29", result.errors
    return header, result


@pytest.mark.parametrize("defect, t_otp", [("otp-valid-120s", 120), (None, 300)])
def test_otp_validity(pki, tmp_path, defect, t_otp):
    with served(pki, tmp_path, defect, version="1.1") as (c, control):
        order_id = _order(c, control, pki)[1].payment_order_id
        (mail,) = control.mailbox(payment_order_id=order_id)
        validity = datetime.fromisoformat(mail["expires_at"]) - datetime.fromisoformat(mail["sent_at"])
        assert validity.total_seconds() == pytest.approx(t_otp * TIME_SCALE, abs=0.002)


@pytest.mark.parametrize("defect, expected", [("maker-may-approve", "32"), (None, "273")])
def test_maker_may_approve(pki, tmp_path, defect, expected):
    with served(pki, tmp_path, defect, version="1.1") as (c, control):
        order_id = _order(c, control, pki)[1].payment_order_id
        header, _ = approve(c, order_id, control.latest_otp(order_id), checker=USER)
        assert header.function == expected


def test_every_defect_has_a_test_here():
    """No defect is registered without this module showing it on the wire."""
    import inspect
    import sys

    source = inspect.getsource(sys.modules[__name__])
    assert [name for name in DEFECTS if f'"{name}"' not in source] == []


def test_u0001_recorded(pki, tmp_path):
    for defect, expected in (("u0001-recorded", "U0001"), (None, "00000")):
        with served(pki, tmp_path / str(defect), defect) as (c, _):
            text = c.message()
            assert answer(c, text, password="wrong")[2].result_code == "U0001"
            assert answer(c, text)[2].result_code == expected


def test_entry1_not_kept(pki, tmp_path):
    for defect, expected in (("entry1-not-kept", "12"), (None, "29")):
        with served(pki, tmp_path / str(defect), defect) as (c, control):
            submission_id, _ = submit(c)
            assert ask(c, control, submission_id, 0)[1].function == expected


def _with_comment_in_header(text: bytes, signer) -> bytes:
    root = safexml.parse_message_text(text)
    root.find(q(ENV, "Header")).insert(0, etree.Comment(" ECDI forbids comments "))
    root.remove(root.find(q(DS, "Signature")))
    return xmlsig.sign_envelope(root, signer)


@pytest.mark.parametrize("defect", ["no-envelope-check", "no-lexical-rules"])
def test_comment_in_header_accepted(pki, tmp_path, client, case, defect):
    with served(pki, tmp_path, defect) as (bad, _):
        assert answer(bad, _with_comment_in_header(bad.message(), pki.declarant.signer()))[1].function == "29"
    assert answer(client, _with_comment_in_header(client.message(), pki.declarant.signer()))[2].result_code == "X0002"


def test_non_nfc_text_accepted_without_lexical_rules(pki, tmp_path, client, case):
    import unicodedata
    from test_gateway import declaration

    decomposed = declaration()
    decomposed.find(".//{*}description").text = unicodedata.normalize("NFD", "Máy tính xách tay")
    with served(pki, tmp_path, "no-lexical-rules") as (bad, _):
        assert answer(bad, bad.message(content=decomposed))[1].function == "29"
    assert answer(client, client.message(content=decomposed))[2].result_code == "X0002"


@pytest.mark.parametrize("defect, expected, make", [
    ("xml-errors-as-x0002", "X0001", lambda c: b"this is <not xml"),
    ("unknown-version-as-x0002", "X0003",
     lambda c: resigned(c.message(), c.pki.declarant.signer(), {"Reference/version": "0.9"})),
    ("broken-signature-as-g0004", "G0001",
     lambda c: c.message().replace("Máy tính".encode(), "Máy tinh".encode(), 1)),
])
def test_another_code_for_a_refusal(pki, tmp_path, client, case, defect, expected, make):
    given = dict(DEFECTS[defect].knobs["code_substitutions"])[expected]
    with served(pki, tmp_path, defect) as (bad, _):
        assert answer(bad, make(bad))[2].result_code == given
    assert answer(client, make(client))[2].result_code == expected


def test_reply_names_itself(pki, tmp_path, client, case):
    with served(pki, tmp_path, "reply-names-itself") as (bad, _):
        assert answer(bad, bad.message())[1]["Subject/sendApplication"] == "ECDI-CGW"
    assert answer(client, client.message())[1]["Subject/sendApplication"] == "CGW"


def test_endpoint_elsewhere(pki, tmp_path, gateway):
    with served(pki, tmp_path, "endpoint-elsewhere") as (bad, _):
        assert bad.gateway.endpoint_url.endswith("/ecdi/CISService.svc")
        assert answer(bad, bad.message())[1].function == "29"
        standard = bad.gateway.endpoint_url.removesuffix(".svc")
        body = soap.send_request_body(bad.message(), USER, PASSWORD)
        headers = {"Content-Type": soap.CONTENT_TYPE, "SOAPAction": soap.SOAP_ACTION}
        assert bad.session.post(standard, data=body, headers=headers, timeout=10).status_code == 404
    assert gateway.endpoint_url.endswith(soap.ENDPOINT_PATH)


def test_wrong_password_as_u0002(pki, tmp_path, client, case):
    with served(pki, tmp_path, "wrong-password-as-u0002") as (bad, _):
        assert answer(bad, bad.message(), password="wrong")[2].result_code == "U0002"
    assert answer(client, client.message(), password="wrong")[2].result_code == "U0001"


def test_result_code_zero(pki, tmp_path, client, case):
    with served(pki, tmp_path, "result-code-zero") as (bad, _):
        _, header, result = answer(bad, bad.message(), password="wrong")
        assert (header.function, result.result_code, result.errors[0].code) == ("271", "00000", "U0001")
    assert answer(client, client.message(), password="wrong")[2].result_code == "U0001"


def test_sha1_refused_in_1_0(pki, tmp_path, client, case):
    sha1 = {"signature_method": xmlsig.RSA_SHA1, "digest_method": xmlsig.SHA1}
    with served(pki, tmp_path, "sha1-refused-in-1.0") as (bad, _):
        assert answer(bad, bad.message(**sha1))[2].result_code == "G0007"
    assert [e.code for e in answer(client, client.message(**sha1))[2].errors] == ["W0001"]


def test_ecdsa_refused(pki, tmp_path):
    from conformance.pki_matrix import BY_NAME, identity

    ecdsa = identity(pki, BY_NAME["ecdsa-p256"])
    for defect, expected in (("ecdsa-refused", "G0001"), (None, "00000")):
        with served(pki, tmp_path / str(defect), defect, registered=[ecdsa.cert]) as (c, _):
            text = c.message(signer=ecdsa.signer(), signature_method=xmlsig.ECDSA_SHA256)
            assert answer(c, text)[2].result_code == expected


def test_poll_interval_too_strict(pki, tmp_path):
    """Two queries 0.5 s apart on the gateway clock at T_poll_min 0.4 s (scale 0.1): fine, unless E9002 comes
    below 3 × T_poll_min (less the jitter allowance: 0.9 s, a margin of 0.4 s for the machine's load)."""
    for defect, expected in (("poll-interval-too-strict", "E9002"), (None, "00000")):
        with served(pki, tmp_path / str(defect), defect, time_scale=0.1) as (c, control):
            submission_id, _ = submit(c)
            c.send(c.query(submission_id, 1))
            control.advance_clock(0.5)
            assert parse_reply(c.send(c.query(submission_id, 1))[1])[1].result_code == expected


def test_no_state_check(pki, tmp_path):
    for defect, expected in (("no-state-check", "29"), (None, "272")):
        with served(pki, tmp_path / str(defect), defect) as (c, control):
            declaration_id, number = declared(c, control)
            for after in (2, 3, 4):
                ask(c, control, declaration_id, after)                    # 10, 32, 35: cleared
            assert send(c, function="5", content=amendment(number))[0].function == expected


def test_cancellation_not_final(pki, tmp_path):
    for defect, expected in (("cancellation-not-final", "10"), (None, "12")):
        with served(pki, tmp_path / str(defect), defect) as (c, control):
            declaration_id, number = declared(c, control)
            header, _ = send(c, function="1", content=cancellation(number))
            assert ask(c, control, header["Subject/reference"], 1)[1].function == "32"
            assert ask(c, control, declaration_id, 2)[1].function == expected


def test_http_credentials_read(pki, tmp_path):
    """The body's password is wrong, a Basic header's right: only a gateway reading the header accepts."""
    import base64

    basic = "Basic " + base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
    for defect, expected in (("http-credentials-read", "00000"), (None, "U0001")):
        with served(pki, tmp_path / str(defect), defect) as (c, _):
            body = soap.send_request_body(c.message(), USER, "wrong")
            response = c.session.post(c.gateway.endpoint_url, data=body, timeout=10, headers={
                "Content-Type": soap.CONTENT_TYPE, "SOAPAction": soap.SOAP_ACTION, "Authorization": basic})
            assert parse_reply(soap.parse_send_response(response.content))[1].result_code == expected


def test_cdata_refused(pki, tmp_path):
    for defect, expected in (("cdata-refused", 500), (None, 200)):
        with served(pki, tmp_path / str(defect), defect) as (c, _):
            text = c.message().decode("utf-8")
            body = soap.send_request_body(b"PLACEHOLDER", USER, PASSWORD).replace(
                b"PLACEHOLDER", b"<![CDATA[" + text.encode("utf-8") + b"]]>")
            assert c.post(body).status_code == expected


def test_no_mandatory_tls_suite(pki, tmp_path):
    import socket
    import ssl
    from urllib.parse import urlsplit

    for defect, handshake in (("no-mandatory-tls-suite", False), (None, True)):
        with served(pki, tmp_path / str(defect), defect) as (c, _):
            url = urlsplit(c.gateway.endpoint_url)
            ctx = ssl.create_default_context(cafile=str(pki.tls_ca_pem))
            ctx.maximum_version = ssl.TLSVersion.TLSv1_2
            ctx.set_ciphers("ECDHE-RSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES128-GCM-SHA256")
            try:
                with socket.create_connection((url.hostname, url.port), timeout=10) as raw, \
                        ctx.wrap_socket(raw, server_hostname=url.hostname):
                    established = True
            except ssl.SSLError:
                established = False
            assert established is handshake


def test_slow_replies(pki, tmp_path):
    import time

    t_cgw = load_profile("ecdi-1.0").timer("T_cgw", TIME_SCALE)

    def took(c, text) -> float:
        started = time.monotonic()
        answer(c, text)
        return time.monotonic() - started

    # every reply held; only the replies to queries held; none
    for defect, declaration_held, query_held in (("slow-replies", True, True), ("slow-query-replies", False, True),
                                                 (None, False, False)):
        with served(pki, tmp_path / str(defect), defect) as (c, _):
            text = c.message()
            assert (took(c, text) > 1.5 * t_cgw) is declaration_held
            query = c.query(read_header(safexml.parse_message_text(text))["Reference/messageId"], 0)
            assert (took(c, query) > 1.5 * t_cgw) is query_held


def test_history_without_refusals(pki, tmp_path):
    for defect, rows in (("history-without-refusals", 1), (None, 2)):
        with served(pki, tmp_path / str(defect), defect) as (c, control):
            answer(c, c.message(), password="wrong")
            answer(c, c.message())
            assert len(control.exchanges("defect")) == rows


def test_stale_crl_accepted(pki, tmp_path):
    for defect, expected in (("stale-crl-accepted", "00000"), (None, "E9001")):
        with served(pki, tmp_path / str(defect), defect) as (c, control):
            control.advance_clock(31 * 86400)
            text = c.message(issued=datetime.now().astimezone() + timedelta(days=31))
            assert answer(c, text)[2].result_code == expected


@pytest.mark.parametrize("defect, order", [
    ("maker-not-checked", {"maker": CHECKER}),
    ("description-not-checked", {"description": "ECDI+MST:0312345678"}),
])
def test_order_rule_not_checked(pki, tmp_path, defect, order):
    for served_defect, expected in ((defect, "29"), (None, "272")):
        with served(pki, tmp_path / str(served_defect), served_defect) as (c, control):
            _, number = declared(c, control)
            header, _ = send(c, type_="701", office=CENTRAL, content=order_content(pki.tax_code, number, **order))
            assert header.function == expected


def test_otp_data_missing(pki, tmp_path):
    for defect, present in (("otp-data-missing", False), (None, True)):
        with served(pki, tmp_path / str(defect), defect) as (c, control):
            _, number = declared(c, control)
            _, result = send(c, type_="701", office=CENTRAL, content=order_content(pki.tax_code, number))
            assert bool(result.otp_expires_at and result.otp_sender) is present


def test_no_new_otp(pki, tmp_path):
    for defect, mails in (("no-new-otp", 1), (None, 2)):
        with served(pki, tmp_path / str(defect), defect) as (c, control):
            order_id = ordered(c, control, pki)
            header, _ = send(c, type_="702", function="16", reference=order_id, office=CENTRAL,
                             content=new_otp(order_id))
            assert header.function == "29" and len(control.mailbox(payment_order_id=order_id)) == mails


def test_otp_request_reference_not_checked(pki, tmp_path):
    for defect, expected in (("otp-request-reference-not-checked", "29"), (None, "271")):
        with served(pki, tmp_path / str(defect), defect) as (c, control):
            order_id = ordered(c, control, pki)
            other = "PO" + "9" * 14
            header, _ = send(c, type_="702", function="16", reference=other, office=CENTRAL, content=new_otp(order_id))
            assert header.function == expected


def test_otp_attempts_unlimited(pki, tmp_path):
    for defect, expected in (("otp-attempts-unlimited", "32"), (None, "273")):
        with served(pki, tmp_path / str(defect), defect) as (c, control):
            order_id = ordered(c, control, pki)
            otp = control.latest_otp(order_id)
            for _ in range(5):
                approve(c, order_id, f"{(int(otp) + 1) % 1_000_000:06d}")
            assert approve(c, order_id, otp)[0].function == expected


def _burst(c, count: int = 6) -> list:
    """``count`` Sends posted at the same moment, one session each (a gateway at capacity 1 is overloaded)."""
    import threading

    import requests

    texts = [soap.send_request_body(c.message(), USER, PASSWORD) for _ in range(count)]
    start, responses = threading.Barrier(count), [None] * count

    def post(i: int) -> None:
        with requests.Session() as session:
            session.trust_env, session.verify = False, c.session.verify
            start.wait()
            responses[i] = session.post(c.gateway.endpoint_url, data=texts[i], timeout=30,
                                        headers={"Content-Type": soap.CONTENT_TYPE, "SOAPAction": soap.SOAP_ACTION})

    threads = [threading.Thread(target=post, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return responses


@pytest.mark.parametrize("defect, knobs, refused", [
    ("overload-without-retry-after", {}, "503 bare"),
    (None, {"capacity": 1}, "503 Retry-After 1"),
    (None, {"capacity": 1, "overload_answer": "E9001"}, "E9001"),
    (None, {}, None),
])
def test_overload_without_retry_after(pki, tmp_path, defect, knobs, refused):
    """TRN-08: Sends beyond the gateway's capacity are answered 503 + Retry-After 1-300 or 271 E9001, never
    recorded; the defect's 503 has no Retry-After. Without a capacity every Send of the burst is evaluated."""
    with served(pki, tmp_path, defect, knobs=knobs) as (c, control):
        responses = _burst(c)
        seen = set()
        for response in responses:
            if response.status_code == 503:
                seen.add(f"503 Retry-After {response.headers['Retry-After']}" if "Retry-After" in response.headers
                         else "503 bare")
                continue
            assert response.status_code == 200, response.text
            text = soap.parse_send_response(response.content)
            header, result = parse_reply(text)
            verify_reply(text, pki)
            seen.add("E9001" if result.result_code == "E9001" else header.fields["Subject/function"])
            if result.result_code == "E9001":
                assert result.sequence == 0                 # a refusal is not recorded
        assert "29" in seen and (refused in seen if refused else seen == {"29"}), seen
