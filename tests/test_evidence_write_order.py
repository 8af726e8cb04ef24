"""No reply without evidence (issue 11): rows are committed before replies leave, a locked evidence
file turns answers into 503 + Retry-After, a kill -9 loses no delivered reply, and a gap in arrival
numbers is named by ``ecdi evidence verify``."""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import signal
import socket
import sqlite3
import ssl
import subprocess
import sys
import threading
import time
from types import SimpleNamespace
from urllib.parse import urlparse

import pytest
import requests

from conformance.cli import main
from conformance.codec import soap
from conformance.gateway_control import GatewayControl
from conformance.pki import TestPKI
from mock_server import run_in_thread
from mock_server.evidence import check_chain, verify_chain
from test_gateway import PASSWORD, USER, Client, gateway_config, parse_reply

LOCK_HELD_AFTER_S = 0.3  # another process keeps the evidence file's write lock this long after the answers
BUSY_TIMEOUT_S = 0.2    # the gateway's bounded wait for it (scaled down from the 2 s default)


@pytest.fixture(scope="module")
def pki(pki_dir) -> TestPKI:
    return TestPKI.ensure(pki_dir)


def _rows(db) -> list[dict]:
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        return [{"seq": s, "status": st, "body": bytes(b) if b is not None else None, "verdict": v, "mid": m}
                for s, st, b, v, m in conn.execute("SELECT seq, response_status, response_body, gateway_verdict,"
                                                   " message_id FROM exchanges ORDER BY seq")]
    finally:
        conn.close()


def _recorded(db, body: bytes) -> bool:
    return any(r["body"] == body for r in _rows(db))


def test_a_locked_evidence_file_gets_503_never_an_unrecorded_reply(pki, tmp_path):
    config = gateway_config(pki, tmp_path)
    config.evidence_busy_timeout = BUSY_TIMEOUT_S
    running = run_in_thread(config)
    client = Client(running, pki)
    control = GatewayControl(running.control_url, token=running.control_token, ca_pem=pki.tls_ca_pem)
    text = client.message()
    try:
        control.begin_case("locked", {"name": "default"})
        locker = sqlite3.connect(running.evidence_db, isolation_level=None)
        locker.execute("BEGIN EXCLUSIVE")
        try:
            busy = client.post(soap.send_request_body(text, USER, PASSWORD))
            wsdl = client.session.get(running.wsdl_url, timeout=10)
            listed = control.exchanges("locked")           # the control API still answers, listing both
            time.sleep(LOCK_HELD_AFTER_S)                  # the deferred rows' retries meet the lock too
        finally:
            locker.execute("COMMIT")
            locker.close()
        for answer in (busy, wsdl):
            assert (answer.status_code, answer.headers["Retry-After"]) == (503, "1")
        assert [r.response_status for r in listed] == [503, 503]
        response, reply = client.send(text)                 # the DTS's retransmission, once the file is free
        assert _recorded(running.evidence_db, response.content)   # its row was there when the reply arrived
        assert parse_reply(reply)[0].function == "29"
        deadline = time.monotonic() + 5
        while not all(_recorded(running.evidence_db, a.content) for a in (busy, wsdl)):
            assert time.monotonic() < deadline, "the 503 answers' rows were never written"
            time.sleep(0.02)
    finally:
        control.close()
        running.stop()
    rows = _rows(running.evidence_db)
    assert [r["seq"] for r in rows] == [1, 2, 3] and [r["status"] for r in rows] == [503, 503, 200]
    withheld = json.loads(rows[0]["verdict"])["evidence_unavailable"]
    assert withheld["withheld_reply_function"] == "29" and "locked" in withheld["reason"]
    # The submission was kept: the retransmission got entry 1 byte-identical to the reply withheld (REL-10).
    assert hashlib.sha256(response.content).hexdigest() == withheld["withheld_body_sha256"]
    assert verify_chain(running.evidence_db) == (True, None)


def _start(pki, folder, *extra: str) -> tuple[subprocess.Popen, SimpleNamespace]:
    proc = subprocess.Popen([sys.executable, "-m", "conformance.cli", "gateway", "--port", "0", "--pki-dir",
                             str(pki.folder), "--dir", str(folder), "--time-scale", "0.01", "--user", USER,
                             "--password", PASSWORD, *extra], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    lines: list[str] = []
    while not lines or not lines[-1].startswith("ready"):
        line = proc.stdout.readline()
        assert line, proc.stderr.read()
        lines.append(line.strip())
    text = "\n".join(lines)
    control = re.search(r"control API: (\S+)  token: (\S+)", text)
    return proc, SimpleNamespace(endpoint_url=re.search(r"cgw_endpoint\):\s+(\S+)", text).group(1),
                                 control_url=control.group(1), control_token=control.group(2))


def _traffic(client: Client, replies: list, stop: threading.Event) -> None:
    """Declarations one after another until the gateway dies (bounded): (messageId, response bytes)."""
    for _ in range(500):
        if stop.is_set():
            return
        text = client.message()
        message_id = re.search(rb"<messageId>([^<]+)</messageId>", text).group(1).decode()
        try:
            response = client.post(soap.send_request_body(text, USER, PASSWORD))
        except Exception:                                  # noqa: BLE001 — the kill
            return
        replies.append((message_id, response.content))


def test_a_kill_9_under_traffic_loses_no_delivered_reply(pki, tmp_path):
    proc, gw = _start(pki, tmp_path)
    replies: list[tuple[str, bytes]] = []
    stop = threading.Event()
    control = GatewayControl(gw.control_url, token=gw.control_token, ca_pem=pki.tls_ca_pem)
    try:
        control.begin_case("stalled", {"name": "stall", "rules": [{"when": {"function": "1"},
                                                                   "then": {"action": "stall"}}]})
        client = Client(gw, pki)
        # The case: a reply stalled after its headers when the gateway dies.
        stalled = client.session.post(gw.endpoint_url, data=soap.send_request_body(
            client.message(function="1"), USER, PASSWORD), headers={"Content-Type": soap.CONTENT_TYPE,
                                                                   "SOAPAction": soap.SOAP_ACTION},
            stream=True, timeout=10)
        assert stalled.status_code == 200                   # headers delivered, body never
        traffic = threading.Thread(target=_traffic, args=(Client(gw, pki), replies, stop))
        traffic.start()
        deadline = time.monotonic() + 20
        while len(replies) < 5 and time.monotonic() < deadline:
            time.sleep(0.01)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
        traffic.join(timeout=20)
        stalled.close()
    finally:
        stop.set()
        control.close()
        if proc.poll() is None:
            proc.kill()
    assert len(replies) >= 5
    proc, gw = _start(pki, tmp_path)                        # restarted on the same files
    try:
        client = Client(gw, pki)
        first_after = client.post(soap.send_request_body(client.message(), USER, PASSWORD)).content
    finally:
        proc.send_signal(signal.SIGINT)
        proc.communicate(timeout=60)
    db = tmp_path / "evidence.sqlite3"
    rows = _rows(db)
    recorded = {(r["mid"], r["body"]) for r in rows}
    assert all(reply in recorded for reply in replies)      # every reply the client got has its row
    assert any('"stall"' in r["verdict"] and r["status"] == 200 for r in rows)
    assert rows[-1]["body"] == first_after and [r["seq"] for r in rows] == list(range(1, len(rows) + 1))
    assert main(["evidence", "verify", str(db)]) == 0


def test_verify_names_the_first_missing_arrival_number(pki, tmp_path, capsys):
    running = run_in_thread(gateway_config(pki, tmp_path))
    client = Client(running, pki)
    for _ in range(4):
        client.send(client.message())
    running.stop()
    copy = tmp_path / "copy.sqlite3"
    shutil.copy(running.evidence_db, copy)
    with sqlite3.connect(copy) as conn:
        conn.execute("DROP TRIGGER exchanges_no_delete")
        conn.execute("DELETE FROM exchanges WHERE seq IN (2, 3)")
    assert check_chain(copy)[0] == ("missing", 2) and verify_chain(copy) == (False, 2)
    assert check_chain(copy, unwritten={2, 3}) == [("tampered", 4)]    # a running gateway's rows in flight
    assert main(["evidence", "verify", str(copy)]) == 1
    out = capsys.readouterr().out
    assert "MISSING" in out and "seq=2" in out and "TAMPERED" in out
    assert main(["evidence", "verify", str(running.evidence_db)]) == 0
    assert "no gap in arrival numbers" in capsys.readouterr().out


def test_a_request_whose_body_never_arrives_still_ends_in_a_row(pki, tmp_path):
    running = run_in_thread(gateway_config(pki, tmp_path))
    url = urlparse(running.endpoint_url)
    try:
        with socket.create_connection((url.hostname, url.port), timeout=5) as raw:
            with ssl.create_default_context(cafile=str(pki.tls_ca_pem)).wrap_socket(
                    raw, server_hostname=url.hostname) as tls:
                tls.sendall(f"POST {url.path} HTTP/1.1\r\nHost: {url.hostname}\r\nContent-Type: {soap.CONTENT_TYPE}"
                            f"\r\nContent-Length: 1000\r\n\r\n<soap:Envelope".encode())
                time.sleep(0.1)                            # the gateway is reading the body when the client leaves
        client = Client(running, pki)
        client.send(client.message())                      # the next arrival number has a row as well
        deadline = time.monotonic() + 5
        while len(_rows(running.evidence_db)) < 2:
            assert time.monotonic() < deadline, "the abandoned request's number never got its row"
            time.sleep(0.02)
    finally:
        running.stop()
    gone, answered = _rows(running.evidence_db)
    assert gone["status"] is None and "could not be read" in json.loads(gone["verdict"])["no_reply"]
    assert (gone["seq"], answered["seq"], answered["status"]) == (1, 2, 200)
    assert verify_chain(running.evidence_db) == (True, None)


def test_an_operator_answer_that_cannot_be_recorded_is_refused_and_its_number_still_ends_in_a_row(pki, tmp_path):
    config = gateway_config(pki, tmp_path)
    config.evidence_busy_timeout = BUSY_TIMEOUT_S
    running = run_in_thread(config)
    session = requests.Session()
    session.trust_env, session.verify = False, str(pki.tls_ca_pem)
    session.headers["X-ECDI-Control"] = running.control_token
    api = lambda method, path, **kw: session.request(method, running.control_url + path, timeout=10, **kw)  # noqa: E731
    answer = {"answer": "cleared", "operator": "Trần Thị B (test)"}
    try:
        prompt = api("POST", "/prompts", json={"case_id": "c", "name": "state", "question": "State shown",
                                               "instruction": "Look.", "choices": ["cleared"], "timeout_s": 30}).json()
        url = f"/prompts/{prompt['prompt_id']}"
        locker = sqlite3.connect(running.evidence_db, isolation_level=None)
        locker.execute("BEGIN EXCLUSIVE")
        try:
            refused = api("POST", url + "/answer", json=answer)
            assert api("GET", url).json()["status"] == "open"       # not taken as answered
        finally:
            locker.execute("COMMIT")
            locker.close()
        assert refused.status_code == 500 and "could not be recorded" in refused.json()["error"]
        accepted = api("POST", url + "/answer", json=answer).json()
    finally:
        session.close()
        running.stop()
    rows = _rows(running.evidence_db)
    assert [r["seq"] for r in rows] == [1, 2] and accepted["evidence_seq"] == 2
    assert "operator_answer_refused" in json.loads(rows[0]["verdict"]) and rows[0]["status"] == 500
    assert "operator_attestation" in json.loads(rows[1]["verdict"])
    assert verify_chain(running.evidence_db) == (True, None)


def test_a_reply_the_gateway_stopped_before_sending_still_ends_in_a_row(pki, tmp_path):
    config = gateway_config(pki, tmp_path)
    config.shutdown_timeout = 0.2
    running = run_in_thread(config)
    client = Client(running, pki)
    control = GatewayControl(running.control_url, token=running.control_token, ca_pem=pki.tls_ca_pem)
    control.begin_case("slow", {"name": "slow", "rules": [{"when": {"function": "8"},
                                                           "then": {"action": "delay", "seconds": 30}}]})
    waiting = threading.Thread(target=lambda: pytest.raises(Exception, client.post, soap.send_request_body(
        client.message(), USER, PASSWORD)))
    waiting.start()
    deadline = time.monotonic() + 5
    while not control.exchanges("slow"):                    # the request has arrived and waits out its delay
        assert time.monotonic() < deadline
        time.sleep(0.01)
    control.close()
    running.stop()
    waiting.join(timeout=10)
    (row,) = _rows(running.evidence_db)
    assert row["status"] is None and "CancelledError" in json.loads(row["verdict"])["no_reply"]
    assert verify_chain(running.evidence_db) == (True, None)


def test_rows_appended_at_once_are_all_committed_in_one_chain_each_before_its_append_returns(tmp_path):
    from mock_server.evidence import EvidenceLog
    db = tmp_path / "evidence.sqlite3"
    log = EvidenceLog(db)
    seen_after_return: list[bool] = []

    def append() -> None:
        seq = log.next_seq()
        log.append(seq, case_id="c", method="POST", path="/ecdi/CISService", request_body=b"x%d" % seq)
        seen_after_return.append(any(r["seq"] == seq for r in _rows(db)))

    threads = [threading.Thread(target=append) for _ in range(40)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    log.close()
    assert seen_after_return == [True] * 40
    assert [r["seq"] for r in _rows(db)] == list(range(1, 41)) and verify_chain(db) == (True, None)


def test_a_group_commit_that_fails_fails_every_row_of_its_batch_and_none_waits(tmp_path, monkeypatch):
    from mock_server import evidence
    log = evidence.EvidenceLog(tmp_path / "evidence.sqlite3", busy_timeout=0.5)
    original = log._write_locked
    gate = threading.Event()

    def failing(rows):
        gate.wait(2)                      # let the other appends queue behind this writer
        if len(rows) > 1 or rows and rows[0][0] == 1:
            raise evidence.EvidenceUnavailable("disk full")
        return original(rows)

    monkeypatch.setattr(log, "_write_locked", failing)
    outcomes: list[str] = []

    def append() -> None:
        try:
            log.append(log.next_seq(), case_id="c", method="POST", path="/p", request_body=b"x")
            outcomes.append("ok")
        except evidence.EvidenceUnavailable:
            outcomes.append("unavailable")

    threads = [threading.Thread(target=append) for _ in range(5)]
    for thread in threads:
        thread.start()
    time.sleep(0.2)
    gate.set()
    for thread in threads:
        thread.join(10)
    assert not any(t.is_alive() for t in threads) and len(outcomes) == 5 and "unavailable" in outcomes


def test_megabytes_of_octets_are_written_into_their_row_and_hashed_as_any(tmp_path):
    """Octets from STREAMED_OCTETS on are written after their row's insert (SQLite copies them without the
    interpreter): read back unchanged, bound by the row's hash (an edit is found), bytes or bytearray."""
    from mock_server.evidence import EvidenceLog
    from mock_server.evidence_store import STREAMED_OCTETS

    log = EvidenceLog(tmp_path / "evidence.sqlite3")
    large = bytes(range(256)) * (STREAMED_OCTETS // 256 + 3)
    try:
        for body in (large, bytearray(large[::-1]), b"small"):
            log.append(log.next_seq(), case_id="c", request_body=body, response_body=large[:STREAMED_OCTETS])
        assert [bytes(r["request_body"]) for r in log.rows()] == [large, large[::-1], b"small"]
        assert all(r["response_body"] == large[:STREAMED_OCTETS] for r in log.rows())
    finally:
        log.close()
    assert verify_chain(tmp_path / "evidence.sqlite3") == (True, None)
    db = sqlite3.connect(tmp_path / "evidence.sqlite3")
    db.execute("DROP TRIGGER exchanges_no_update")
    with db.blobopen("exchanges", "request_body", 2) as blob:
        blob.write(b"X")
    db.commit()
    db.close()
    assert check_chain(tmp_path / "evidence.sqlite3") == [("tampered", 2)]
