"""The TLS probe: a loopback listener that meets a DTS with one TLS fault and records what it did.

TRN-09 and TRN-10 are decided before any HTTP byte: a conforming DTS refuses an expired, self-signed
or wrong-host server certificate, a server offering only TLS 1.1 or only a 3DES suite, and sends its
request to a TLS 1.2 server that allows only one of the two mandatory suites. The gateway itself
always presents a good certificate, so the harness starts a probe per *variant* (data in
``VARIANTS``; the handler has no per-variant code) and points the DTS's ``cgw_endpoint`` at it.

Per connection the probe records (``connections()``):

* the ClientHello as offered (read with ``MSG_PEEK`` before the TLS stack sees it): the versions and
  cipher suites the DTS proposed, and which of them TRN-09 forbids;
* the handshake's result: the negotiated protocol and suite, or the error;
* whether any application bytes (HTTP) arrived after the handshake, with the request line;
* whether those bytes were relayed to the gateway: every variant relays, so a DTS that completes a
  handshake it should have refused is seen by the gateway too, and a DTS that rightly completes one
  (the mandatory-suite variants) lodges for real.

Two variants do not run a TLS server: ``3des`` (this machine's OpenSSL has no 3DES suite at all, so
the probe decides from the ClientHello — a server offering only 3DES establishes a session exactly
when the client offers a 3DES suite — and answers a ``handshake_failure`` alert), and ``plain`` (an
``http://`` endpoint: any byte at all that arrives is recorded, TRN-10).
"""

from __future__ import annotations

import select
import socket
import ssl
import struct
import threading
import time
from dataclasses import dataclass, field
from urllib.parse import urlsplit

# TLS cipher suites TRN-09 forbids, by the words in their IANA names (NULL, EXPORT, anonymous key
# exchange, RC4, DES, 3DES), and the two mandatory TLS 1.2 suites.
FORBIDDEN_WORDS = ("_NULL_", "_EXPORT", "_anon_", "_RC4_", "_DES_", "_DES40_", "_3DES_", "_DES_CBC_")
MANDATORY = {0xC02F: "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256", 0xC02B: "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256"}
_SUITE_NAMES = {
    0x0000: "TLS_NULL_WITH_NULL_NULL", 0x0001: "TLS_RSA_WITH_NULL_MD5", 0x0002: "TLS_RSA_WITH_NULL_SHA",
    0x0003: "TLS_RSA_EXPORT_WITH_RC4_40_MD5", 0x0004: "TLS_RSA_WITH_RC4_128_MD5", 0x0005: "TLS_RSA_WITH_RC4_128_SHA",
    0x0006: "TLS_RSA_EXPORT_WITH_RC2_CBC_40_MD5", 0x0008: "TLS_RSA_EXPORT_WITH_DES40_CBC_SHA",
    0x0009: "TLS_RSA_WITH_DES_CBC_SHA", 0x000A: "TLS_RSA_WITH_3DES_EDE_CBC_SHA",
    0x000D: "TLS_DH_DSS_WITH_3DES_EDE_CBC_SHA", 0x0010: "TLS_DH_RSA_WITH_3DES_EDE_CBC_SHA",
    0x0013: "TLS_DHE_DSS_WITH_3DES_EDE_CBC_SHA", 0x0016: "TLS_DHE_RSA_WITH_3DES_EDE_CBC_SHA",
    0x0017: "TLS_DH_anon_EXPORT_WITH_RC4_40_MD5", 0x0018: "TLS_DH_anon_WITH_RC4_128_MD5",
    0x001B: "TLS_DH_anon_WITH_3DES_EDE_CBC_SHA", 0x0034: "TLS_DH_anon_WITH_AES_128_CBC_SHA",
    0x003A: "TLS_DH_anon_WITH_AES_256_CBC_SHA", 0x008A: "TLS_PSK_WITH_RC4_128_SHA",
    0x008B: "TLS_PSK_WITH_3DES_EDE_CBC_SHA", 0xC002: "TLS_ECDH_ECDSA_WITH_RC4_128_SHA",
    0xC003: "TLS_ECDH_ECDSA_WITH_3DES_EDE_CBC_SHA", 0xC007: "TLS_ECDHE_ECDSA_WITH_RC4_128_SHA",
    0xC008: "TLS_ECDHE_ECDSA_WITH_3DES_EDE_CBC_SHA", 0xC00C: "TLS_ECDH_RSA_WITH_RC4_128_SHA",
    0xC00D: "TLS_ECDH_RSA_WITH_3DES_EDE_CBC_SHA", 0xC011: "TLS_ECDHE_RSA_WITH_RC4_128_SHA",
    0xC012: "TLS_ECDHE_RSA_WITH_3DES_EDE_CBC_SHA", 0xC015: "TLS_ECDH_anon_WITH_NULL_SHA",
    0xC016: "TLS_ECDH_anon_WITH_RC4_128_SHA", 0xC017: "TLS_ECDH_anon_WITH_3DES_EDE_CBC_SHA",
    0xC018: "TLS_ECDH_anon_WITH_AES_128_CBC_SHA", 0xC019: "TLS_ECDH_anon_WITH_AES_256_CBC_SHA",
    **MANDATORY,
}
_VERSIONS = {0x0300: "SSLv3", 0x0301: "TLSv1", 0x0302: "TLSv1.1", 0x0303: "TLSv1.2", 0x0304: "TLSv1.3"}
HANDSHAKE_TIMEOUT_S = 5.0
RELAY_POLL_S = 0.02          # how long the relay waits on one side before looking at the other
RELAY_SEND_TIMEOUT_S = 10.0  # loopback: a send that takes longer means the peer is gone
FIRST_BYTES_TIMEOUT_S = 5.0
_ALERT_HANDSHAKE_FAILURE = bytes([0x15, 0x03, 0x01, 0x00, 0x02, 0x02, 0x28])


@dataclass(frozen=True)
class Variant:
    """One way of meeting the DTS. ``mode``: ``tls`` (a real TLS server), ``hello`` (read the
    ClientHello, answer handshake_failure), ``plain`` (no TLS; an http:// endpoint)."""

    name: str
    purpose: str
    mode: str = "tls"
    identity: str | None = None          # TestPKI.tls_identity name; None: the gateway's own certificate
    versions: tuple[str, str] | None = None   # (minimum, maximum) ssl.TLSVersion names; None: 1.2 and 1.3
    ciphers: str | None = None           # OpenSSL cipher string for TLS ≤ 1.2; None: ECDHE with AEAD
    refuse_suites: tuple[str, ...] = ()  # ``hello``: a session exists iff one of these words is offered


VARIANTS = {v.name: v for v in [
    Variant("expired", "a server certificate whose validity has ended (TRN-10)", identity="expired"),
    Variant("self-signed", "a self-signed server certificate, not under the TLS anchor (TRN-10)",
            identity="self-signed"),
    Variant("wrong-host", "a certificate under the TLS anchor whose subjectAltName does not name the endpoint "
            "host (TRN-10)", identity="wrong-host"),
    Variant("tls1.0", "a server that speaks only TLS 1.0 (TRN-09)", versions=("TLSv1", "TLSv1"),
            ciphers="DEFAULT:@SECLEVEL=0"),
    Variant("tls1.1", "a server that speaks only TLS 1.1 (TRN-09)", versions=("TLSv1_1", "TLSv1_1"),
            ciphers="DEFAULT:@SECLEVEL=0"),
    Variant("3des", "a server that offers only 3DES suites (TRN-09)", mode="hello", refuse_suites=("_3DES_",)),
    Variant("ecdhe-rsa-aes128-gcm", "TLS 1.2 with only TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256 (TRN-09)",
            versions=("TLSv1_2", "TLSv1_2"), ciphers="ECDHE-RSA-AES128-GCM-SHA256"),
    Variant("ecdhe-ecdsa-aes128-gcm", "TLS 1.2 with only TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256 and an ECDSA "
            "certificate (TRN-09)", identity="ecdsa", versions=("TLSv1_2", "TLSv1_2"),
            ciphers="ECDHE-ECDSA-AES128-GCM-SHA256"),
    Variant("plain", "an http:// endpoint: no TLS at all (TRN-10)", mode="plain"),
]}


@dataclass
class Connection:
    """What one TCP connection to the probe showed (an evidence row of the probe)."""

    seq: int
    variant: str
    opened_at: float
    client: str
    offered_versions: list[str] = field(default_factory=list)
    offered_suites: list[str] = field(default_factory=list)      # names, or 0xXXXX when unknown here
    forbidden_offered: list[str] = field(default_factory=list)
    handshake: str = "none"            # ok | failed | refused (hello mode) | none (plain mode)
    protocol: str | None = None
    cipher: str | None = None
    error: str | None = None
    http_bytes: int = 0                # application bytes received after the handshake (or at all: plain)
    request_line: str | None = None
    relayed: bool = False
    closed_at: float | None = None

    def to_json(self) -> dict:
        return dict(self.__dict__)


def parse_client_hello(data: bytes) -> dict | None:
    """Versions and suites of a TLS ClientHello record (None if ``data`` is not one, or is incomplete)."""
    try:
        if len(data) < 5 or data[0] != 0x16:
            return None
        length = struct.unpack(">H", data[3:5])[0]
        body = data[5:5 + length]
        if len(body) < length or body[0] != 0x01:
            return None
        pos = 4
        legacy = struct.unpack(">H", body[pos:pos + 2])[0]
        pos += 2 + 32
        pos += 1 + body[pos]                                        # session id
        n = struct.unpack(">H", body[pos:pos + 2])[0]
        suites = [struct.unpack(">H", body[pos + 2 + i:pos + 4 + i])[0] for i in range(0, n, 2)]
        pos += 2 + n
        pos += 1 + body[pos]                                        # compression methods
        versions = [legacy]
        if pos + 2 <= len(body):
            end = pos + 2 + struct.unpack(">H", body[pos:pos + 2])[0]
            pos += 2
            while pos + 4 <= end:
                kind, size = struct.unpack(">HH", body[pos:pos + 4])
                if kind == 43:                                      # supported_versions
                    listed = body[pos + 5:pos + 5 + body[pos + 4]]
                    versions = [struct.unpack(">H", listed[i:i + 2])[0] for i in range(0, len(listed), 2)]
                pos += 4 + size
        return {"versions": versions, "suites": suites}
    except (IndexError, struct.error):
        return None


def suite_name(code: int) -> str:
    return _SUITE_NAMES.get(code, f"0x{code:04X}")


def _peek_hello(sock: socket.socket) -> dict | None:
    """Wait (briefly) for a whole ClientHello record without consuming it."""
    deadline = time.monotonic() + HANDSHAKE_TIMEOUT_S
    data = b""
    while time.monotonic() < deadline:
        sock.settimeout(max(deadline - time.monotonic(), 0.01))
        try:
            data = sock.recv(16384 + 5, socket.MSG_PEEK)
        except OSError:
            return None
        if not data:
            return None
        if len(data) >= 5 and data[0] == 0x16 and len(data) >= 5 + struct.unpack(">H", data[3:5])[0]:
            return parse_client_hello(data)
        if len(data) >= 1 and data[0] != 0x16:
            return None
        time.sleep(0.005)
    return None


class TlsProbe:
    """One listener on 127.0.0.1 for one variant; relays what it accepts to ``upstream`` (the gateway)."""

    def __init__(self, variant: str, pki, upstream: str, *, host: str = "127.0.0.1"):
        if variant not in VARIANTS:
            raise ValueError(f"unknown TLS probe variant {variant!r}; known: {', '.join(VARIANTS)}")
        self.variant = VARIANTS[variant]
        self.upstream = urlsplit(upstream)
        self._upstream_context = ssl.create_default_context(cafile=str(pki.tls_ca_pem))
        self._context = self._server_context(pki) if self.variant.mode == "tls" else None
        self._listener = socket.create_server((host, 0))
        self._listener.settimeout(0.2)
        self.port = self._listener.getsockname()[1]
        scheme = "http" if self.variant.mode == "plain" else "https"
        self.endpoint = f"{scheme}://{host}:{self.port}{self.upstream.path}"
        self._lock = threading.Lock()
        self._connections: list[Connection] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, name=f"ecdi-tls-probe-{variant}", daemon=True)
        self._thread.start()

    def _server_context(self, pki) -> ssl.SSLContext:
        v = self.variant
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        identity = pki.tls_identity(v.identity) if v.identity else pki.tls_server
        ctx.load_cert_chain(identity.cert_pem, identity.key_pem)
        ctx.set_ciphers(v.ciphers or "ECDHE+AESGCM:ECDHE+CHACHA20")
        if v.versions:
            import warnings
            with warnings.catch_warnings():          # TLS 1.1 is deprecated: that is the point of the variant
                warnings.simplefilter("ignore", DeprecationWarning)
                ctx.minimum_version = getattr(ssl.TLSVersion, v.versions[0])
                ctx.maximum_version = getattr(ssl.TLSVersion, v.versions[1])
        else:
            ctx.minimum_version = ssl.TLSVersion.TLSv1_2
        return ctx

    # --- what the harness reads --------------------------------------------------------------
    def connections(self, since: int = 0, *, settle_s: float = 2.0) -> list[Connection]:
        """The connections after ``since``, once each has ended (waiting at most ``settle_s``: the DTS
        may report its failure a moment before the probe has noted the handshake's end)."""
        deadline = time.monotonic() + settle_s
        while True:
            with self._lock:   # read with the accept step's lock: a connection is either pending or in rows
                rows = [c for c in self._connections if c.seq > since]
                pending = select.select([self._listener], [], [], 0)[0]  # a connection not yet accepted
            if (not pending and all(c.closed_at is not None for c in rows)) or time.monotonic() > deadline:
                return rows
            time.sleep(0.01)

    def rows(self, since: int = 0) -> list[dict]:
        """``connections`` as JSON-ready dicts (what a case reads and its tape keeps)."""
        return [c.to_json() for c in self.connections(since)]

    def last_seq(self) -> int:
        with self._lock:
            return self._connections[-1].seq if self._connections else 0

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self._listener.close()

    # --- serving -------------------------------------------------------------------------------
    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                if not select.select([self._listener], [], [], 0.1)[0]:
                    continue
            except (OSError, ValueError):
                continue
            with self._lock:   # accepted and recorded in one step: ``connections`` sees it pending or recorded
                try:
                    sock, addr = self._listener.accept()
                except (socket.timeout, OSError):
                    continue
                conn = Connection(len(self._connections) + 1, self.variant.name, time.time(), addr[0])
                self._connections.append(conn)
            threading.Thread(target=self._handle, args=(sock, conn), daemon=True).start()

    def _handle(self, sock: socket.socket, conn: Connection) -> None:
        try:
            if self.variant.mode != "plain":
                self._note_hello(_peek_hello(sock), conn)
            getattr(self, f"_{self.variant.mode}")(sock, conn)
        except Exception as exc:                       # noqa: BLE001 — evidence, never a crash
            conn.error = conn.error or f"{type(exc).__name__}: {exc}"
        finally:
            conn.closed_at = time.time()
            try:
                sock.close()
            except OSError:
                pass

    @staticmethod
    def _note_hello(hello: dict | None, conn: Connection) -> None:
        if hello is None:
            return
        conn.offered_versions = [_VERSIONS.get(v, f"0x{v:04X}") for v in hello["versions"]]
        conn.offered_suites = [suite_name(s) for s in hello["suites"]]
        conn.forbidden_offered = [n for n in conn.offered_suites if any(w in n for w in FORBIDDEN_WORDS)]

    def _hello(self, sock: socket.socket, conn: Connection) -> None:
        """Offer only the variant's suites: no session unless the client offered one of them."""
        matching = [n for n in conn.offered_suites if any(w in n for w in self.variant.refuse_suites)]
        conn.handshake = "would-succeed" if matching else "refused"
        conn.error = (f"the client offered {matching[0]}: a server offering only these suites would have "
                      "established a session") if matching else "no suite in common: handshake_failure alert sent"
        sock.sendall(_ALERT_HANDSHAKE_FAILURE)

    def _plain(self, sock: socket.socket, conn: Connection) -> None:
        conn.handshake = "none"
        self._first_bytes(sock, conn)

    def _tls(self, sock: socket.socket, conn: Connection) -> None:
        sock.settimeout(HANDSHAKE_TIMEOUT_S)
        try:
            tls = self._context.wrap_socket(sock, server_side=True)
        except (ssl.SSLError, OSError) as exc:
            conn.handshake, conn.error = "failed", f"{type(exc).__name__}: {exc}"
            return
        conn.handshake, conn.protocol = "ok", tls.version()
        conn.cipher = (tls.cipher() or (None,))[0]
        first = self._first_bytes(tls, conn)
        if first:
            self._relay(tls, first, conn)

    def _first_bytes(self, sock, conn: Connection) -> bytes:
        sock.settimeout(FIRST_BYTES_TIMEOUT_S)
        try:
            data = sock.recv(65536)
        except (OSError, ssl.SSLError) as exc:
            conn.error = conn.error or f"no application data: {type(exc).__name__}: {exc}"
            return b""
        conn.http_bytes += len(data)
        if data:
            conn.request_line = data.split(b"\r\n", 1)[0][:200].decode("latin-1")
        return data

    def _relay(self, client, first: bytes, conn: Connection) -> None:
        """Pass the exchange on to the gateway, byte for byte, until either side closes."""
        host, port = self.upstream.hostname, self.upstream.port or 443
        upstream = self._upstream_context.wrap_socket(socket.create_connection((host, port), timeout=10),
                                                      server_hostname=host)
        conn.relayed = True
        upstream.sendall(first)
        # One thread pumps both directions: an SSL socket must never be read in one thread while it is
        # written in another (OpenSSL objects are not safe for that; it crashed the process once).
        client.settimeout(RELAY_POLL_S)
        upstream.settimeout(RELAY_POLL_S)
        try:
            while True:
                moved = False
                for src, dst, inbound in ((client, upstream, True), (upstream, client, False)):
                    try:
                        data = src.recv(65536)
                    except (socket.timeout, ssl.SSLWantReadError):
                        continue
                    if not data:
                        return
                    moved = True
                    if inbound:
                        conn.http_bytes += len(data)
                    dst.settimeout(RELAY_SEND_TIMEOUT_S)
                    dst.sendall(data)
                    dst.settimeout(RELAY_POLL_S)
                if not moved and self._stop.is_set():
                    return
        except (OSError, ssl.SSLError):
            return                                   # either side went away: the exchange is over
        finally:
            upstream.close()


class TlsProbes:
    """The probes of one harness session, started on first use, one listener per variant."""

    def __init__(self, pki, upstream: str):
        self.pki, self.upstream = pki, upstream
        self._probes: dict[str, TlsProbe] = {}

    def get(self, variant: str) -> TlsProbe:
        if variant not in self._probes:
            self._probes[variant] = TlsProbe(variant, self.pki, self.upstream)
        return self._probes[variant]

    def stop(self) -> None:
        for probe in self._probes.values():     # every one told first: their threads notice at once
            probe._stop.set()
        for probe in self._probes.values():
            probe.stop()
        self._probes.clear()


__all__ = ["Connection", "TlsProbe", "TlsProbes", "VARIANTS", "parse_client_hello"]
