"""TRN-09 from the client's side: offer the gateway a ClientHello with only a forbidden version or suite
and see whether it agrees (a ServerHello) or refuses (an alert, or the connection closed).

The ClientHello is written here octet by octet, not by the TLS library: this machine's OpenSSL has no 3DES
suite at all (``mock_server/tls_probe.py`` meets the same limit from the server's side), and a library
that cannot offer a suite cannot show that the gateway refuses it. A ServerHello is the gateway's consent
to the offered parameters, so the session counts as established there; nothing further is sent.
"""

from __future__ import annotations

import os
import socket
import struct

TLS_1_1, TLS_1_2 = 0x0302, 0x0303
SUITES_3DES = {0x000A: "TLS_RSA_WITH_3DES_EDE_CBC_SHA", 0xC012: "TLS_ECDHE_RSA_WITH_3DES_EDE_CBC_SHA",
               0xC008: "TLS_ECDHE_ECDSA_WITH_3DES_EDE_CBC_SHA", 0x0016: "TLS_DHE_RSA_WITH_3DES_EDE_CBC_SHA"}
# what a TLS 1.1 client offers: CBC suites with SHA-1 (no AEAD before TLS 1.2)
SUITES_TLS_1_1 = {0xC013: "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA", 0xC009: "TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA",
                  0x002F: "TLS_RSA_WITH_AES_128_CBC_SHA", 0x0035: "TLS_RSA_WITH_AES_256_CBC_SHA"}
SUITES_MANDATORY = {0xC02F: "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256", 0xC02B: "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256"}
ALERTS = {40: "handshake_failure", 70: "protocol_version", 71: "insufficient_security", 47: "illegal_parameter"}


def _ext(kind: int, body: bytes) -> bytes:
    return struct.pack("!HH", kind, len(body)) + body


def client_hello(version: int, suites: list[int], host: str | None = None) -> bytes:
    """A TLS ClientHello record offering ``version`` (legacy_version, no supported_versions) and ``suites``."""
    exts = [
        _ext(0x000A, struct.pack("!H", 6) + struct.pack("!HHH", 0x0017, 0x0018, 0x001D)),   # supported_groups
        _ext(0x000B, b"\x01\x00"),                                                           # ec_point_formats
        _ext(0x000D, struct.pack("!H", 10) + struct.pack("!HHHHH", 0x0401, 0x0403, 0x0804, 0x0201, 0x0203)),
        _ext(0xFF01, b"\x00"),                                                               # renegotiation_info
    ]
    if host and not host.replace(".", "").isdigit():
        name = host.encode("ascii")
        exts.insert(0, _ext(0x0000, struct.pack("!HBH", len(name) + 3, 0, len(name)) + name))
    ext_bytes = b"".join(exts)
    body = (struct.pack("!H", version) + os.urandom(32) + b"\x00" + struct.pack("!H", 2 * len(suites))
            + b"".join(struct.pack("!H", s) for s in suites) + b"\x01\x00"
            + struct.pack("!H", len(ext_bytes)) + ext_bytes)
    handshake = b"\x01" + len(body).to_bytes(3, "big") + body
    return b"\x16\x03\x01" + struct.pack("!H", len(handshake)) + handshake


def offer(host: str, port: int, hello: bytes, *, timeout: float = 10.0) -> tuple[dict, bytes]:
    """Send ``hello`` and read the first record: (facts, octets received)."""
    received = b""
    try:
        with socket.create_connection((host, port), timeout=timeout) as sock:
            sock.sendall(hello)
            while len(received) < 5 or len(received) < 5 + struct.unpack("!H", received[3:5])[0]:
                chunk = sock.recv(4096)
                if not chunk:
                    break
                received += chunk
    except OSError as exc:
        if not received:
            return {"established": False, "error": f"connection ended without an answer ({exc})"}, received
    return _answer(received), received


def _answer(data: bytes) -> dict:
    if len(data) < 6:
        return {"established": False, "error": "the gateway closed the connection without a ServerHello"}
    kind = data[0]
    if kind == 0x15:
        code = data[6] if len(data) > 6 else None
        return {"established": False, "error": f"alert {ALERTS.get(code, code)}"}
    if kind == 0x16 and data[5] == 0x02 and len(data) >= 5 + 4 + 2 + 32 + 1:
        body = data[9:]
        version = struct.unpack("!H", body[:2])[0]
        sid = body[34]
        suite = struct.unpack("!H", body[35 + sid:37 + sid])[0] if len(body) >= 37 + sid else None
        return {"established": True, "version": f"0x{version:04x}",
                "cipher": {**SUITES_3DES, **SUITES_TLS_1_1, **SUITES_MANDATORY}.get(suite) or (f"0x{suite:04x}" if suite else None)}
    return {"established": False, "error": f"the gateway answered a record of type {kind}, not a ServerHello"}
