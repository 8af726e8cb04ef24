"""Hostile connections and requests are bounded, and the gateway keeps serving others (issue 13, items 1, 4).

Real sockets against a real gateway with small limits (the defaults are in config.py and
docs/security.md); each test measures that a well-behaved client is served while the hostile one
is held. Latency figures are in benchmarks/bench_stall.py, not here.
"""

from __future__ import annotations

import re
import signal
import socket
import ssl
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import urlsplit

import pytest

from conformance.codec import soap
from conformance.gateway_control import GatewayControl
from conformance.profile import load_profile
from test_gateway_cli import standalone
from test_gateway import PASSWORD, USER, Client, case, control, gateway_config, parse_reply, pki  # noqa: F401
from mock_server import run_in_thread

LIMIT = 0.5          # handshake, head and body timeouts of the gateway under test (seconds)
KEEPALIVE = 1.0
SLACK = 3.0          # how much later than its limit a connection may be closed on a loaded machine


@pytest.fixture(scope="module")
def gateway(pki, tmp_path_factory):
    config = gateway_config(pki, tmp_path_factory.mktemp("hostile"))
    config.handshake_timeout = config.header_timeout = config.body_timeout = LIMIT
    config.keepalive_timeout = KEEPALIVE
    running = run_in_thread(config)
    yield running
    running.stop()


@pytest.fixture(scope="module")
def client(gateway, pki) -> Client:
    return Client(gateway, pki)


def address(gateway) -> tuple[str, int]:
    parts = urlsplit(gateway.endpoint_url)
    return parts.hostname, parts.port


def tls_socket(gateway) -> ssl.SSLSocket:
    context = ssl.create_default_context()
    context.check_hostname, context.verify_mode = False, ssl.CERT_NONE
    return context.wrap_socket(socket.create_connection(address(gateway), timeout=10))


def closed_after(sock, *, dribble: bytes = b"", every: float = 0.05, within: float) -> float:
    """Seconds until the gateway closes ``sock``, sending ``dribble`` a byte at a time meanwhile."""
    start = time.monotonic()
    sock.settimeout(every)
    sent = 0
    while time.monotonic() - start < within:
        try:
            if not sock.recv(4096):
                return time.monotonic() - start
        except (TimeoutError, socket.timeout, ssl.SSLWantReadError):
            pass
        except (ConnectionError, ssl.SSLError):
            return time.monotonic() - start
        try:
            if sent < len(dribble):
                sock.sendall(dribble[sent:sent + 1])
                sent += 1
        except (ConnectionError, ssl.SSLError, BrokenPipeError):
            return time.monotonic() - start
    raise AssertionError(f"the connection was still open after {within} s")


def served_meanwhile(client: Client, hostile, *, at_least: int = 3) -> None:
    """Run ``hostile()`` in a thread; a second client's valid sends complete while it is held."""
    with ThreadPoolExecutor(1) as pool:
        held = pool.submit(hostile)
        answered = 0
        while not held.done():
            function = parse_reply(client.send(client.message())[1])[0].function
            assert function == "29"
            answered += 1 if not held.done() else 0
        held.result()
    assert answered >= at_least


def test_a_half_open_connection_is_closed_after_the_handshake_timeout(gateway, client, case):
    sock = socket.create_connection(address(gateway), timeout=10)       # TCP only: no ClientHello ever
    try:
        served_meanwhile(client, lambda: closed_after(sock, within=LIMIT + SLACK), at_least=1)
    finally:
        sock.close()


def test_a_dribbled_request_head_is_cut_at_the_header_timeout(gateway, client, case):
    sock = tls_socket(gateway)
    head = b"POST /ecdi/CISService HTTP/1.1\r\nHost: x\r\n" + b"X-Slow: " + b"a" * 400
    try:
        seconds = []
        served_meanwhile(client, lambda: seconds.append(closed_after(sock, dribble=head, within=LIMIT + SLACK)),
                         at_least=1)
        assert seconds[0] >= LIMIT * 0.9
    finally:
        sock.close()


@pytest.mark.parametrize("framing", [b"Content-Length: 10000000\r\n", b"Transfer-Encoding: chunked\r\n"])
def test_a_body_that_never_ends_is_cut_at_the_body_timeout_and_leaves_a_row(gateway, client, control, case, framing):
    sock = tls_socket(gateway)
    head = (b"POST /ecdi/CISService HTTP/1.1\r\nHost: x\r\nContent-Type: text/xml; charset=utf-8\r\n"
            b'SOAPAction: "' + soap.SOAP_ACTION.encode() + b'"\r\n' + framing + b"\r\n")
    sock.sendall(head + (b"400\r\n" if b"chunked" in framing else b""))
    try:
        served_meanwhile(client, lambda: closed_after(sock, dribble=b"<" * 10_000, within=LIMIT + SLACK),
                         at_least=1)
    finally:
        sock.close()
    rows = [r for r in control.exchanges(case) if r.response_status is None]
    assert len(rows) == 1 and "body_timeout" in rows[0].gateway_verdict["no_reply"]


def test_an_idle_kept_alive_connection_is_closed_at_the_keepalive_timeout(gateway):
    sock = tls_socket(gateway)
    try:
        sock.sendall(b"GET /ecdi/CISService?wsdl HTTP/1.1\r\nHost: x\r\n\r\n")
        assert sock.recv(64).startswith(b"HTTP/1.1 200")
        time.sleep(0.1)
        sock.recv(1 << 20)                        # the rest of the WSDL
        assert KEEPALIVE * 0.8 <= closed_after(sock, within=KEEPALIVE + SLACK)
    finally:
        sock.close()


def test_a_thousand_idle_connections_are_closed_and_others_served_meanwhile(gateway, client, case):
    idle = [socket.create_connection(address(gateway), timeout=10) for _ in range(1000)]

    def all_closed() -> None:
        deadline = time.monotonic() + LIMIT + 3 * SLACK
        for sock in idle:
            sock.settimeout(max(0.01, deadline - time.monotonic()))
            try:
                assert sock.recv(1) == b""
            except ConnectionError:
                pass
    try:
        served_meanwhile(client, all_closed, at_least=1)
    finally:
        for sock in idle:
            sock.close()


def test_connections_over_max_connections_are_closed_and_served_again_once_one_closes(pki, tmp_path):
    config = gateway_config(pki, tmp_path)
    config.max_connections = 3
    running = run_in_thread(config)
    held: list = []
    try:
        held = [tls_socket(running) for _ in range(3)]
        extra = tls_socket(running)               # its handshake ends; then the gateway closes it
        extra.settimeout(5)
        try:
            assert extra.recv(1) == b""
        except (ConnectionError, ssl.SSLError):
            pass
        extra.close()
        held.pop().close()
        deadline = time.monotonic() + 5           # the gateway learns of the close asynchronously
        while True:
            try:
                header, result = parse_reply(Client(running, pki).send(Client(running, pki).message())[1])
                break
            except Exception:                     # noqa: BLE001 — refused until the close is seen
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)
        assert header.function == "29", result
    finally:
        for sock in held:
            sock.close()
        running.stop()


# ------------------------------------------------------------------------------------------
# CPU-heavy requests: off the event loop, within a budget (item 1)


def deep_text(client: Client) -> bytes:
    """A signed message text nested as deep as S_max allows (its reading takes about a second)."""
    base = client.message()
    depth = (load_profile("ecdi-1.0").params["S_max"] - len(base)) // 7 - 10
    return base.replace(b"<Trader>", b"<Trader>" + b"<x>" * depth + b"</x>" * depth, 1)


def test_other_clients_are_served_while_a_cpu_heavy_request_is_evaluated(pki, tmp_path):
    # the default connection limits: this module's 0.5 s body timeout is for the slow-body tests, and a
    # 14 MB body on a loaded machine can take longer than that to arrive
    running = run_in_thread(gateway_config(pki, tmp_path))
    try:
        client, hostile = Client(running, pki), Client(running, pki)
        text = deep_text(client)
        served_meanwhile(client, lambda: hostile.send(text), at_least=3)
    finally:
        running.stop()


def test_a_request_over_the_cpu_budget_is_answered_E9001_and_not_recorded(pki, tmp_path):
    config = gateway_config(pki, tmp_path)
    config.cpu_budget = 0.05
    running = run_in_thread(config)
    try:
        client = Client(running, pki)
        text = deep_text(client)
        header, result = parse_reply(client.send(text)[1])
        assert (header.function, result.result_code) == ("271", "E9001")
        control = GatewayControl(running.control_url, token=running.control_token, ca_pem=pki.tls_ca_pem)
        (row,) = control.exchanges()
        control.close()
        assert "REL-02" in row.gateway_verdict["abandoned"] and not running.gateway.store.submission(
            re.search(rb"<messageId>([^<]+)</messageId>", text).group(1).decode())
    finally:
        running.stop()


def test_sigterm_stops_a_gateway_busy_on_a_cpu_heavy_request_within_5_s(pki, pki_dir, tmp_path):
    proc, text = standalone(pki_dir, tmp_path, "--user", USER, "--password", PASSWORD)
    try:
        endpoint = re.search(r"endpoint \(cgw_endpoint\): (\S+)", text).group(1)

        class Standalone:
            endpoint_url = endpoint

        client = Client(Standalone, pki)
        body = soap.send_request_body(deep_text(client), USER, PASSWORD)
        threading.Thread(target=lambda: _quietly(client.post, body), daemon=True).start()
        time.sleep(0.5)                               # uploaded and being read
        started = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=30)
        assert time.monotonic() - started < 5.0 and proc.returncode == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()


def _quietly(call, *args) -> None:
    try:
        call(*args)
    except Exception:                                # noqa: BLE001 — the gateway stops under it
        pass


def test_a_gateway_whose_worker_processes_cannot_start_still_answers_every_request(pki, tmp_path, monkeypatch, caplog):
    from mock_server import cpu_pool

    def cannot_start(self):
        raise cpu_pool.WorkerStartError("no processes on this platform")
    monkeypatch.setattr(cpu_pool._Worker, "_ensure_started", cannot_start)
    running = run_in_thread(gateway_config(pki, tmp_path))
    try:
        client = Client(running, pki)
        for _ in range(2):
            header, result = parse_reply(client.send(client.message())[1])
            assert header.function == "29", result
        assert running.gateway._cpu.start_problem == "no processes on this platform"
        assert "could not start" in caplog.text
    finally:
        running.stop()


def test_a_small_request_goes_to_its_worker_from_the_event_loop_and_its_budget_holds(pki, tmp_path):
    """Bodies that fit a pipe's buffer skip the waiting thread (cpu_pool.INLINE_BODY); over budget, the
    worker is killed and the answer is E9001 all the same."""
    running = run_in_thread(gateway_config(pki, tmp_path))
    try:
        client = Client(running, pki)
        header, _ = parse_reply(client.send(client.message())[1])
        assert header.function == "29" and not running.gateway._cpu._threads._threads   # no thread started
        running.gateway._cpu.budget = 0.001
        before = [w.process for w in running.gateway._cpu._workers]
        header, result = parse_reply(client.send(client.message())[1])
        assert (header.function, result.result_code) == ("271", "E9001")
        assert [w.process for w in running.gateway._cpu._workers] != before     # the late worker is gone
    finally:
        running.stop()
