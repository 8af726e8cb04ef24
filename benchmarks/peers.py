"""The servers the benchmark measures, each in a process of its own (its CPU and RSS are its own).

* ``gateway`` — the mock gateway with every check on (``python benchmarks/peers.py gateway PKI DIR``);
  prints one JSON line (endpoint, control URL and token, pid) and serves until its stdin closes.
* ``bare`` — a bare aiohttp server answering every POST with a canned reply over the same TLS
  (``python benchmarks/peers.py bare PKI REPLY``): no checks, the floor of the stack the gateway is on.
* WireMock and mountebank — npm packages installed by ``install_npm`` into the benchmark's cache (not
  the repository) and started with the same canned reply over HTTPS (``start_wiremock``,
  ``start_mountebank``). A peer that cannot be installed or started is skipped with its reason.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
USER, PASSWORD = "benchmark", "Mật-khẩu bench 1"
NPM_PACKAGES = ("wiremock@3.13.2", "@mbtest/mountebank@2.9.2")
ENDPOINT = "/ecdi/CISService"


@dataclass
class Peer:
    name: str
    url: str
    process: subprocess.Popen
    info: dict

    def stop(self) -> None:
        if self.process.poll() is None:
            if self.process.stdin:
                self.process.stdin.close()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.terminate()
                self.process.wait(timeout=10)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _tls_files(pki_dir: Path) -> tuple[Path, Path]:
    """The gateway's TLS certificate and key (PEM files of the test PKI): every peer presents them."""
    from conformance.pki import TestPKI
    server = TestPKI.ensure(pki_dir).tls_server
    return server.cert_pem, server.key_pem


# ------------------------------------------------------------------------------------------
# Python peers (this file run as a script)


def start_python(kind: str, *args: str, log: Path) -> Peer:
    """Start ``peers.py kind args`` and wait for its JSON line."""
    process = subprocess.Popen([sys.executable, str(Path(__file__)), kind, *args], stdin=subprocess.PIPE,
                               stdout=subprocess.PIPE, stderr=log.open("wb"), text=True)
    line = process.stdout.readline()
    if not line:
        process.wait(timeout=10)
        raise RuntimeError(f"the {kind} server did not start (see {log})")
    info = json.loads(line)
    return Peer(kind, info["url"], process, info)


def _serve_gateway(pki_dir: str, folder: str) -> None:
    from conformance.pki import TestPKI
    from mock_server import Account, GatewayConfig, run_in_thread

    pki = TestPKI.ensure(Path(pki_dir))
    config = GatewayConfig(
        profiles=["ecdi-1.0"], pki_folder=pki.folder, evidence_db=Path(folder) / "evidence.sqlite3", time_scale=1.0,
        accounts=[Account(USER, PASSWORD, [pki.tax_code])], registered_certs={pki.tax_code: [pki.declarant.cert]},
        # held connections: thousands of requests arrive faster than they are checked; the budget of each
        # request's checks (REL-02) and the handshake bound are not what is measured here
        cpu_budget=120.0, handshake_timeout=120.0, header_timeout=120.0, body_timeout=120.0)
    running = run_in_thread(config)
    print(json.dumps({"url": running.endpoint_url, "control": running.control_url, "token": running.control_token,
                      "pid": os.getpid()}), flush=True)
    sys.stdin.read()
    running.stop()


def _serve_bare(pki_dir: str, reply_file: str) -> None:
    import asyncio
    import ssl

    from aiohttp import web

    reply = Path(reply_file).read_bytes()
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(*_tls_files(Path(pki_dir)))

    async def answer(request: web.Request) -> web.Response:
        await request.read()
        return web.Response(body=reply, content_type="text/xml", charset="utf-8")

    async def serve() -> None:
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_post(ENDPOINT, answer)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=ctx)
        await site.start()
        port = runner.addresses[0][1]
        print(json.dumps({"url": f"https://127.0.0.1:{port}{ENDPOINT}", "pid": os.getpid()}), flush=True)
        await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)
        await runner.cleanup()

    asyncio.run(serve())


# ------------------------------------------------------------------------------------------
# npm peers


def install_npm(cache: Path) -> str | None:
    """Install the npm peers into ``cache`` (once); None, or why they cannot be used."""
    if shutil.which("npm") is None or shutil.which("node") is None:
        return "npm/node not installed"
    if all((cache / "node_modules" / ".bin" / b).exists() for b in ("wiremock", "mb")):
        return None
    cache.mkdir(parents=True, exist_ok=True)
    proc = subprocess.run(["npm", "install", "--no-audit", "--no-fund", "--prefix", str(cache), *NPM_PACKAGES],
                          capture_output=True, text=True, timeout=300)
    if proc.returncode != 0:
        return "npm install failed: " + (proc.stderr.strip().splitlines() or ["?"])[-1]
    return None


def _wait_port(port: int, process: subprocess.Popen, seconds: float, name: str) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{name} exited with {process.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.2)
    process.terminate()
    raise RuntimeError(f"{name} did not listen on {port} within {seconds:g} s")


def _pkcs12(pki_dir: Path, out: Path, password: bytes) -> None:
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.serialization import pkcs12

    cert_pem, key_pem = _tls_files(pki_dir)
    key = serialization.load_pem_private_key(key_pem.read_bytes(), None)
    chain = x509.load_pem_x509_certificates(cert_pem.read_bytes())
    out.write_bytes(pkcs12.serialize_key_and_certificates(
        b"server", key, chain[0], chain[1:] or None, serialization.BestAvailableEncryption(password)))


def start_wiremock(cache: Path, pki_dir: Path, reply: bytes, work: Path, log: Path) -> Peer:
    """WireMock standalone (its npm package runs the jar on the installed Java) over HTTPS, one stub."""
    root = work / "wiremock"
    (root / "mappings").mkdir(parents=True, exist_ok=True)
    (root / "mappings" / "canned.json").write_text(json.dumps({
        "request": {"method": "POST", "urlPath": ENDPOINT},
        "response": {"status": 200, "body": reply.decode("utf-8"),
                     "headers": {"Content-Type": "text/xml; charset=utf-8"}}}))
    _pkcs12(pki_dir, root / "tls.p12", b"benchmark")
    port, admin = free_port(), free_port()
    process = subprocess.Popen(
        [str(cache / "node_modules" / ".bin" / "wiremock"), "--port", str(admin), "--https-port", str(port),
         "--https-keystore", str(root / "tls.p12"), "--keystore-type", "PKCS12", "--keystore-password", "benchmark",
         "--key-manager-password", "benchmark", "--root-dir", str(root), "--no-request-journal", "--disable-banner"],
        stdin=subprocess.PIPE, stdout=log.open("wb"), stderr=subprocess.STDOUT, start_new_session=True)
    _wait_port(port, process, 60, "WireMock")
    return Peer("WireMock", f"https://127.0.0.1:{port}{ENDPOINT}", process, {"pid": process.pid})


def start_mountebank(cache: Path, pki_dir: Path, reply: bytes, work: Path, log: Path) -> Peer:
    """mountebank with one HTTPS imposter answering the canned reply."""
    port, admin = free_port(), free_port()
    config = work / "mountebank.json"
    config.write_text(json.dumps({"imposters": [{
        "protocol": "https", "port": port, "key": _tls_files(pki_dir)[1].read_text(),
        "cert": _tls_files(pki_dir)[0].read_text(), "recordRequests": False,
        "stubs": [{"responses": [{"is": {"statusCode": 200, "headers": {"Content-Type": "text/xml; charset=utf-8"},
                                         "body": reply.decode("utf-8")}}]}]}]}))
    process = subprocess.Popen(
        [str(cache / "node_modules" / ".bin" / "mb"), "start", "--port", str(admin), "--configfile", str(config),
         "--loglevel", "warn", "--nologfile", "--pidfile", str(work / "mb.pid")],
        stdin=subprocess.PIPE, stdout=log.open("wb"), stderr=subprocess.STDOUT, start_new_session=True)
    _wait_port(port, process, 60, "mountebank")
    return Peer("mountebank", f"https://127.0.0.1:{port}{ENDPOINT}", process, {"pid": process.pid})


def stop_external(peer: Peer) -> None:
    """Stop an npm peer: the process group it was started in (node starts java for WireMock)."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(peer.process.pid, sig)
        except ProcessLookupError:
            break
        try:
            peer.process.wait(timeout=15)
            break
        except subprocess.TimeoutExpired:
            continue


if __name__ == "__main__":
    {"gateway": _serve_gateway, "bare": _serve_bare}[sys.argv[1]](*sys.argv[2:])
