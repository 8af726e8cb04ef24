"""Two vendors' runs on one gateway at once: conflicting scenarios, clocks and mailboxes, isolated."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from conformance.gateway_control import ControlError, GatewayControl
from mock_server import Account, GatewayConfig, run_in_thread
from test_gateway import PASSWORD, USER, Client, control, parse_reply, pki  # noqa: F401 — fixtures

U0002 = {"action": "reply", "function": "271",
         "errors": [{"code": "U0002", "field": "/Envelope/Header/From/identity"}]}


@pytest.fixture(scope="module")
def gateway(pki, tmp_path_factory):
    folder = tmp_path_factory.mktemp("gateway-sessions")
    running = run_in_thread(GatewayConfig(
        profiles=["ecdi-1.0"], pki_folder=pki.folder, evidence_db=folder / "evidence.sqlite3", time_scale=0.01,
        accounts=[Account(USER, PASSWORD, [pki.tax_code])], registered_certs={pki.tax_code: [pki.declarant.cert]}))
    yield running
    running.stop()


def test_two_sessions_with_conflicting_scenarios_do_not_see_each_other(gateway, control, pki):
    vendor_a = control.create_session("vendor-a", [{"user_id": "a.user", "password": PASSWORD,
                                                     "tax_codes": [pki.tax_code]}])
    vendor_b = control.create_session("vendor-b", [{"user_id": "b.user", "password": PASSWORD,
                                                     "tax_codes": [pki.tax_code]}])
    vendor_a.begin_case("TRN-01", {"name": "a-rejects", "rules": [{"when": {"function": "8"}, "then": U0002}]})
    vendor_b.begin_case("TRN-01", {"name": "b-holds-then-accepts",
                                   "rules": [{"when": {"function": "8", "attempt": 1}, "then": {"action": "hold"}}]})
    vendor_a.advance_clock(3600)
    client = Client(gateway, pki)
    same_reference = "HD-SESSION/1"
    text_a = client.message(reference=same_reference)
    text_b = client.message(reference=same_reference)
    with ThreadPoolExecutor(2) as pool:
        held = pool.submit(lambda: _send_expecting_timeout(client, text_b, "b.user"))
        time.sleep(0.1)
        started = time.monotonic()
        _, reply_a = client.send(text_a, user="a.user")       # not blocked by B's held connection
        assert time.monotonic() - started < 1
        assert held.result() == "timed out"
    assert parse_reply(reply_a)[0].function == "271"
    _, reply_b = client.send(text_b, user="b.user")           # B's retransmission: no rule, 29
    header_b, _ = parse_reply(reply_b)
    assert header_b.function == "29"                          # same reference as A's: no E0074 across sessions

    rows_a, rows_b = vendor_a.exchanges("TRN-01"), vendor_b.exchanges("TRN-01")
    assert [r.user_id for r in rows_a] == ["a.user"] and {r.user_id for r in rows_b} == {"b.user"}
    assert rows_a[0].clock_offset == 3600 and all(r.clock_offset == 0 for r in rows_b)
    assert vendor_b.clock()["offset"] == 0 and control.clock()["offset"] == 0
    assert control.exchanges("TRN-01") == []                  # the default session saw nothing
    vendor_b.begin_case("next", {"name": "default"})          # releases B's held connection


def _send_expecting_timeout(client: Client, text: bytes, user: str) -> str:
    import requests

    from conformance.codec import soap

    fresh = requests.Session()                                # requests sessions are not thread-safe
    fresh.trust_env, fresh.verify = False, client.session.verify
    try:
        fresh.post(client.gateway.endpoint_url, data=soap.send_request_body(text, user, PASSWORD),
                            headers={"Content-Type": soap.CONTENT_TYPE, "SOAPAction": soap.SOAP_ACTION}, timeout=0.5)
    except requests.exceptions.ReadTimeout:
        return "timed out"
    return "answered"


def test_session_requests_are_validated(gateway, control, pki):
    with pytest.raises(ControlError, match=r"accounts\[0\]\.tax_codes"):
        control.create_session("bad", [{"user_id": "x", "password": "p", "tax_codes": ["12"]}])
    with pytest.raises(ControlError, match="already has an account"):
        control.create_session("dup", [{"user_id": USER, "password": "p", "tax_codes": [pki.tax_code]}])
    with pytest.raises(ControlError, match="no session 'nobody'"):
        GatewayControl(gateway.control_url, token=gateway.control_token, ca_pem=pki.tls_ca_pem, session="nobody")


def test_the_default_session_s_mailbox_is_every_process_s_on_a_shared_database(pki, tmp_path, pg_url):
    """The default session is made once the shared sessions exist: its OTP e-mails, like any session's, are
    in the database, so a process reads what another sent."""
    from mock_server.app import Gateway

    config = GatewayConfig(profiles=["ecdi-1.0"], pki_folder=pki.folder, database=pg_url, time_scale=0.01,
                           accounts=[Account(USER, PASSWORD, [pki.tax_code])])
    one, other = Gateway(config), Gateway(config)
    try:
        one.mailbox.send(sent_at="2026-12-06T20:00:00+07:00", sender="otp@customs.example", to=("a@example",),
                         subject="OTP", body="012345", tax_code=pki.tax_code, payment_order_id="PO-1", otp="012345",
                         expires_at="2026-12-06T20:05:00+07:00")
        assert [m.payment_order_id for m in other.mailbox.messages()] == ["PO-1"]
    finally:
        one.close()
        other.close()
