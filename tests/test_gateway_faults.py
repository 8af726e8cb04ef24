"""Every scenario fault action, observed on the wire from a plain client (raw TLS sockets or
requests — never the reference DTS). The fixtures and the plain client come from test_gateway.
"""

from __future__ import annotations

import re
import socket
import ssl
import time
from datetime import datetime, timezone
from urllib.parse import urlparse

import pytest
import requests

from conformance.codec import certs, safexml, soap, xmlsig
from conformance.gateway_control import ScenarioRefused
from conformance.profile import load_profile
from mock_server.faults import FOREIGN_NS
from test_gateway import (  # noqa: F401 — fixtures are used by name
    PASSWORD,
    USER,
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


class Raw:
    """What a raw TLS socket received: the octets, how the connection ended, and when."""

    def __init__(self, data: bytes, ending: str, elapsed: float):
        self.data, self.ending, self.elapsed = data, ending, elapsed

    @property
    def head(self) -> bytes:
        return self.data.partition(b"\r\n\r\n")[0]

    @property
    def body(self) -> bytes:
        return self.data.partition(b"\r\n\r\n")[2]

    def header(self, name: str) -> str | None:
        for line in self.head.split(b"\r\n")[1:]:
            key, _, value = line.decode("latin-1").partition(":")
            if key.strip().lower() == name.lower():
                return value.strip()
        return None


def raw_send(gateway, pki, text: bytes, *, timeout: float = 3.0, on_open=None) -> Raw:
    """POST one Send over a fresh TLS connection (``Connection: close``) and read until it ends.

    TLS runs over memory BIOs on a plain socket, so the ending is what TCP saw: a RST raises
    ConnectionResetError from the socket itself (an ``ssl`` socket would report it as a ragged EOF).
    """
    url = urlparse(gateway.endpoint_url)
    body = soap.send_request_body(text, USER, PASSWORD)
    head = (f"POST {url.path} HTTP/1.1\r\nHost: {url.hostname}:{url.port}\r\nConnection: close\r\n"
            f"Content-Type: {soap.CONTENT_TYPE}\r\nSOAPAction: {soap.SOAP_ACTION}\r\n"
            f"Content-Length: {len(body)}\r\n\r\n").encode("ascii")
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    tls = ssl.create_default_context(cafile=str(pki.tls_ca_pem)).wrap_bio(incoming, outgoing,
                                                                          server_hostname=url.hostname)
    started = time.monotonic()
    with socket.create_connection((url.hostname, url.port), timeout=timeout) as sock:
        while True:
            try:
                tls.do_handshake()
                break
            except ssl.SSLWantReadError:
                sock.sendall(outgoing.read())
                incoming.write(sock.recv(65536))
        tls.write(head + body)
        sock.sendall(outgoing.read())
        if on_open:
            on_open()
        data, ending = b"", "eof"
        try:
            while chunk := sock.recv(65536):
                incoming.write(chunk)
                plain, closed = _drain(tls)
                data += plain
                if closed:
                    break
        except ConnectionResetError:
            ending = "reset"
        except (socket.timeout, TimeoutError):
            ending = "timeout"
    return Raw(data, ending, time.monotonic() - started)


def _drain(tls: ssl.SSLObject) -> tuple[bytes, bool]:
    """Plain text decrypted so far, and whether the server closed TLS (close_notify)."""
    out = b""
    while True:
        try:
            chunk = tls.read(65536)
        except ssl.SSLWantReadError:
            return out, False
        except ssl.SSLZeroReturnError:
            return out, True
        if not chunk:
            return out, True
        out += chunk


def rule(then: dict, name: str = "fault", **when) -> dict:
    return {"name": name, "rules": [{"when": when or {"function": "8"}, "then": then}]}


def reply_of(raw: Raw) -> bytes:
    return soap.parse_send_response(raw.body)


# ------------------------------------------------------------------------------------------
# socket faults


def test_reset_after_reading_loses_the_reply_but_the_submission_is_recorded(gateway, pki, client, control, case):
    control.begin_case(case, rule({"action": "reset", "stage": "after_read"}, attempt=1))
    text = client.message()
    raw = raw_send(gateway, pki, text)
    assert (raw.ending, raw.data) == ("reset", b"")                 # a real RST, nothing before it
    _, again = client.send(text)
    assert parse_reply(again)[0].function == "29"
    first, second = control.exchanges(case)
    assert first.gateway_verdict["delivery"]["mode"] == "reset" and first.reply_function == "29"
    assert second.gateway_verdict["failed_step"] == "replay"         # entry 1 was recorded (REL-12)


def test_reset_before_reading_records_nothing(gateway, pki, client, control, case):
    control.begin_case(case, rule({"action": "reset", "stage": "before_read"}, attempt=1))
    text = client.message()
    assert raw_send(gateway, pki, text).ending == "reset"
    client.send(text)
    first, second = control.exchanges(case)
    assert first.gateway_verdict["fault"]["evaluated"] is False and first.response_status is None
    assert "failed_step" not in second.gateway_verdict and second.attempt == 2   # evaluated afresh


def test_hold_keeps_the_connection_silent_until_the_case_ends(gateway, pki, client, control, case):
    control.begin_case(case, rule({"action": "hold"}))
    raw = raw_send(gateway, pki, client.message(), timeout=0.4)
    assert (raw.ending, raw.data) == ("timeout", b"")
    (row,) = control.exchanges(case)
    assert row.responded_at is None                                   # still held, listed in flight
    ended = raw_send(gateway, pki, client.message(), timeout=3,
                     on_open=lambda: (time.sleep(0.2), control.begin_case(case + "-next", {"name": "default"})))
    assert ended.data == b"" and ended.ending in ("reset", "eof") and ended.elapsed < 2.5


def test_stall_sends_headers_then_nothing(gateway, pki, client, control, case):
    control.begin_case(case, rule({"action": "stall"}))
    raw = raw_send(gateway, pki, client.message(), timeout=0.4)
    assert raw.ending == "timeout" and raw.head.startswith(b"HTTP/1.1 200")
    assert int(raw.header("Content-Length")) > 0 and raw.body == b""


def test_truncate_sends_less_than_content_length(gateway, pki, client, control, case):
    control.begin_case(case, rule({"action": "truncate", "keep_bytes": 100}))
    raw = raw_send(gateway, pki, client.message())
    assert raw.ending == "eof" and len(raw.body) == 100 < int(raw.header("Content-Length"))
    with pytest.raises(requests.exceptions.RequestException):         # what a DTS's client sees
        client.post(soap.send_request_body(client.message(), USER, PASSWORD))


def test_drip_sends_the_body_slowly_but_completely(gateway, pki, client, control, case):
    control.begin_case(case, rule({"action": "drip", "chunk_bytes": 1000, "interval_s": 0.05}))
    raw = raw_send(gateway, pki, client.message())
    chunks = -(-int(raw.header("Content-Length")) // 1000)
    assert len(raw.body) == int(raw.header("Content-Length")) and raw.elapsed >= 0.05 * chunks
    assert parse_reply(reply_of(raw))[0].function == "29"


def test_delay_is_seconds_of_real_time(gateway, pki, client, control, case):
    control.begin_case(case, rule({"action": "delay", "seconds": 0.3}))
    assert raw_send(gateway, pki, client.message()).elapsed >= 0.3


def test_a_long_delay_keeps_the_octets_on_disk_and_the_row_is_as_without(gateway, pki, client, control, case,
                                                                        monkeypatch):
    """Past SPOOL_DELAY_S a waiting request's octets wait on disk (issue 14, held memory): listed meanwhile,
    redacted there, and committed as a short delay commits them; nothing is left in the folder."""
    from concurrent.futures import ThreadPoolExecutor

    from mock_server import app

    held = gateway.gateway._spool.folder
    rows = {}
    for name, threshold in (("memory", 60.0), ("disk", 0.0)):
        monkeypatch.setattr(app, "SPOOL_DELAY_S", threshold)
        control.begin_case(f"{case}-{name}", rule({"action": "delay", "seconds": 0.6}))
        text = client.message()
        with ThreadPoolExecutor(1) as pool:
            sent = pool.submit(client.post, soap.send_request_body(text, USER, PASSWORD))
            deadline = time.monotonic() + 10
            while not control.exchanges(f"{case}-{name}") and time.monotonic() < deadline:
                time.sleep(0.05)
            waiting = control.exchanges(f"{case}-{name}")
            files = [f.read_bytes() for f in held.glob("*") if f.is_file()] if held.is_dir() else []
            assert sent.result(timeout=10).status_code == 200
        assert (len(files) == 1) == (name == "disk") and PASSWORD.encode() not in b"".join(files)
        assert waiting[0].request_body.count(b"[fingerprint:hmac-sha256:") == 1 and waiting[0].message_text == text
        row = control.exchanges(f"{case}-{name}")[0]
        assert (row.message_text, row.response_status, row.reply_function) == (text, 200, "29")
        rows[name] = row
    marker = re.compile(rb"\[fingerprint:hmac-sha256:[0-9a-f]{64}\]")
    assert marker.findall(rows["disk"].request_body) == marker.findall(rows["memory"].request_body)
    same = ("steps_passed", "certificate", "signature", "tls", "credentials", "delay_s", "delivered")
    assert [{k: r.gateway_verdict.get(k) for k in same} for r in (rows["disk"], rows["memory"])] \
        == [{k: rows["memory"].gateway_verdict.get(k) for k in same}] * 2       # (its strings interned meanwhile)
    assert set(rows["disk"].request_headers) == set(rows["memory"].request_headers)
    assert not [f for f in held.glob("*") if f.is_file()]


# ------------------------------------------------------------------------------------------
# overload (TRN-08): not recorded


def test_overload_503_with_retry_after_records_nothing(gateway, pki, client, control, case):
    control.begin_case(case, rule({"action": "overload", "mode": "503", "retry_after": 7}, attempt=1))
    text = client.message()
    response = client.post(soap.send_request_body(text, USER, PASSWORD))
    assert (response.status_code, response.headers["Retry-After"]) == (503, "7")
    client.send(text)
    assert "failed_step" not in control.exchanges(case)[1].gateway_verdict


def test_overload_E9001_is_a_signed_271_and_records_nothing(client, control, case, pki):
    control.begin_case(case, rule({"action": "overload", "mode": "E9001"}, attempt=1))
    text = client.message()
    _, reply = client.send(text)
    verify_reply(reply, pki)
    header, result = parse_reply(reply)
    assert (header.function, result.result_code, result.sequence) == ("271", "E9001", 0)
    assert parse_reply(client.send(text)[1])[0].function == "29"


# ------------------------------------------------------------------------------------------
# replies altered in transit (the stored entry stays genuine)


@pytest.mark.parametrize("variant", ["truncated", "doctype", "not_xml"])
def test_malformed_reply(client, control, case, variant):
    control.begin_case(case, rule({"action": "malformed", "variant": variant}, attempt=1))
    text = client.message()
    _, reply = client.send(text)
    with pytest.raises(safexml.XmlRefused):
        safexml.parse_message_text(reply)
    _, genuine = client.send(text)                                   # retransmission: stored entry 1
    assert parse_reply(genuine)[0].function == "29"


def test_break_schema_is_well_formed_validly_signed_and_schema_invalid(client, control, case, pki):
    control.begin_case(case, rule({"action": "break_schema"}))
    _, reply = client.send(client.message())
    verify_reply(reply, pki)
    issues = load_profile("ecdi-1.0").validate_envelope(safexml.parse_message_text(reply), "reply")
    assert issues and "sequence" in issues[0].path + issues[0].reason


def test_forged_signature_differs_in_one_character(client, control, case):
    control.begin_case(case, rule({"action": "forge_signature"}, attempt=1))
    text = client.message()
    _, forged = client.send(text)
    with pytest.raises(xmlsig.SignatureProblem):
        xmlsig.verify_envelope(forged)
    _, genuine = client.send(text)
    assert len(forged) == len(genuine) and sum(a != b for a, b in zip(forged, genuine)) == 1


def test_untrusted_signature_verifies_but_not_under_the_sign_anchor(client, control, case, pki):
    control.begin_case(case, rule({"action": "untrusted_signature"}))
    _, reply = client.send(client.message())
    verified = xmlsig.verify_envelope(reply)
    assert verified.signer.subject == pki.gateway_signer.cert.subject
    assert certs.chain_problem(verified.signer, verified.intermediates, [pki.sign_anchor],
                               datetime.now(timezone.utc)) is not None


def test_unknown_elements_are_added_and_validly_signed(client, control, case, pki):
    control.begin_case(case, rule({"action": "unknown_elements"}))
    _, reply = client.send(client.message())
    verify_reply(reply, pki)
    assert FOREIGN_NS.encode() in reply and b"futureField" in reply
    assert parse_reply(reply)[1].reception_number                    # known content still there


# ------------------------------------------------------------------------------------------
# history faults (queries)


def test_duplicate_delivers_a_history_entry_to_two_consecutive_queries(client, control, case):
    control.begin_case(case, {"name": "dup", "rules": [{"when": {"function": "13", "after_sequence": 1},
                                                         "then": {"action": "duplicate"}, "times": 1}]})
    submission_id, _ = submit(client)
    first, header, _ = ask(client, control, submission_id, 1)
    again, _, _ = ask(client, control, submission_id, 2)
    assert header.function == "30" and again == first
    assert ask(client, control, submission_id, 2)[1].function == "10"


def test_out_of_order_shows_entry_3_before_entry_2(client, control, case):
    control.begin_case(case, {"name": "rpl-09", "rules": [{"when": {"function": "13"},
                                                            "then": {"action": "out_of_order"}, "times": 1}]})
    submission_id, _ = submit(client)
    _, h3, r3 = ask(client, control, submission_id, 1)
    _, h2, r2 = ask(client, control, submission_id, 1)
    assert (h3.function, r3.sequence, r3.channel) == ("10", 3, "1")
    assert (h2.function, r2.sequence) == ("30", 2) and r3.declaration_number == r2.declaration_number
    assert ask(client, control, submission_id, 3)[1].function == "32"


# ------------------------------------------------------------------------------------------
# rule limits, seeds and validation


def _pattern(client, control, case, scenario) -> list[str]:
    control.begin_case(case, scenario)
    return [parse_reply(client.send(client.message())[1])[0].function for _ in range(8)]


def test_times_limits_a_rule_and_a_seed_repeats_random_choices(client, control, case):
    e9001 = {"action": "reply", "function": "271", "errors": [{"code": "E9001"}]}
    limited = {"name": "twice", "rules": [{"when": {"function": "8"}, "then": e9001, "times": 2}]}
    assert _pattern(client, control, case, limited) == ["271", "271"] + ["29"] * 6
    flaky = {"name": "flaky", "seed": 7, "rules": [{"when": {"function": "8"}, "then": e9001, "probability": 0.5}]}
    first = _pattern(client, control, case, flaky)
    assert set(first) == {"271", "29"} and _pattern(client, control, case, flaky) == first


@pytest.mark.parametrize("then, named", [
    ({"action": "drip", "chunk_bytes": 0}, "scenario.rules[0].then.chunk_bytes"),
    ({"action": "reset"}, "needs stage"),
    ({"action": "reset", "stage": "sometime"}, "scenario.rules[0].then.stage"),
    ({"action": "overload", "mode": "503", "retry_after": "soon"}, "then.retry_after"),
    ({"action": "hold", "seconds": 3}, "unknown key 'seconds'"),
])
def test_bad_fault_parameters_are_refused_naming_the_path(control, case, then, named):
    with pytest.raises(ScenarioRefused) as refused:
        control.begin_case(case, {"rules": [{"then": then}]})
    assert named in str(refused.value)


def test_bad_times_and_seed_are_refused(control, case):
    with pytest.raises(ScenarioRefused, match=r"rules\[0\]\.times"):
        control.begin_case(case, {"rules": [{"then": {"action": "hold"}, "times": 0}]})
    with pytest.raises(ScenarioRefused, match=r"scenario\.seed"):
        control.begin_case(case, {"seed": "x"})


def test_evidence_records_tls_facts_timings_and_the_fault(client, control, case):
    control.begin_case(case, rule({"action": "drip", "chunk_bytes": 4096, "interval_s": 0}))
    client.send(client.message())
    (row,) = control.exchanges(case)
    verdict = row.gateway_verdict
    assert verdict["tls"]["protocol"] in ("TLSv1.2", "TLSv1.3") and verdict["tls"]["cipher"]
    assert verdict["timings"]["evaluation_ms"] > 0 and verdict["session"] == "default"
    assert verdict["fault"]["action"] == "drip" and verdict["delivery"]["mode"] == "drip" and verdict["delivered"]
    assert row.rule == "rules[0]"


def test_socket_faults_apply_to_soap_faults_too(client, control, case):
    control.begin_case(case, rule({"action": "delay", "seconds": 0.3}, attempt=1))
    started = time.monotonic()
    response = client.post(soap.send_request_body(client.message(), USER, PASSWORD), action='"wrong"')
    assert response.status_code == 500 and time.monotonic() - started >= 0.3
