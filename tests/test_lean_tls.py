"""The gateway's TLS protocol (connections._LeanTLS) keeps each connection's memory BIOs small (issue 14):
a memory BIO keeps the capacity of its largest write, so short reads reach it, and responses leave it, in
``BIO_FEED`` pieces; large messages go through whole. Driven in memory against a client ``SSLObject``."""

from __future__ import annotations

import asyncio
import ssl
import struct
from asyncio import sslproto

import pytest

from conformance.pki import TestPKI
from mock_server import connections
from mock_server.app import _tls_context


class Wire(asyncio.Transport):
    """The socket side of the server's TLS protocol: what it writes is kept for the client."""

    def __init__(self):
        super().__init__()
        self.written: list[bytes] = []

    def write(self, data):
        self.written.append(bytes(data))

    def is_closing(self):
        return False

    def get_extra_info(self, name, default=None):
        return default


class App(asyncio.Protocol):
    def __init__(self):
        self.received = b""
        self.transport = None

    def connection_made(self, transport):
        self.transport = transport

    def data_received(self, data):
        self.received += data


@pytest.fixture
def pair(pki_dir, monkeypatch):
    """(server protocol, its app, its wire, client SSLObject, client BIOs, sizes handed to asyncio's reading)"""
    fed: list[int] = []
    original = sslproto.SSLProtocol.buffer_updated
    monkeypatch.setattr(sslproto.SSLProtocol, "buffer_updated", lambda self, n: (fed.append(n), original(self, n)))
    loop = asyncio.new_event_loop()
    pki = TestPKI.ensure(pki_dir)
    app, wire = App(), Wire()
    shared = memoryview(bytearray(connections.TLS_READ_BUFFER))
    server = connections._LeanTLS(shared, loop, app, _tls_context(pki, "ECDHE+AESGCM"), None, server_side=True,
                                  ssl_handshake_timeout=30)
    server.connection_made(wire)
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    client = ssl.create_default_context(cafile=str(pki.tls_ca_pem)).wrap_bio(incoming, outgoing,
                                                                             server_hostname="localhost")
    yield server, app, wire, client, (incoming, outgoing), fed
    server._transport = None
    loop.close()


def send(server, data: bytes) -> None:
    """``data`` arrives from the socket as the selector loop reads it: at most the shared buffer at once."""
    view = server.get_buffer(-1)
    for start in range(0, len(data), len(view)):
        piece = data[start:start + len(view)]
        view[:len(piece)] = piece
        server.buffer_updated(len(piece))


def shake(server, wire, client, bios) -> None:
    for _ in range(4):
        try:
            client.do_handshake()
            break
        except ssl.SSLWantReadError:
            pass
        send(server, bios[1].read())
        bios[0].write(b"".join(wire.written))
        wire.written.clear()
    send(server, bios[1].read())              # the client's Finished
    bios[0].write(b"".join(wire.written))     # session tickets
    wire.written.clear()


def plaintext(client) -> bytes:
    out = b""
    try:
        while True:
            out += client.read(65536)
    except ssl.SSLWantReadError:
        return out


def records(octets: bytes) -> list[int]:
    """The lengths of the TLS records in ``octets``."""
    out, at = [], 0
    while at < len(octets):
        out.append(struct.unpack(">H", octets[at + 3:at + 5])[0])
        at += 5 + out[-1]
    return out


def test_a_small_request_reaches_the_bio_a_kib_at_a_time_and_arrives_whole(pair):
    server, app, wire, client, bios, fed = pair
    shake(server, wire, client, bios)
    fed.clear()
    request = b"POST / HTTP/1.1\r\n\r\n" + bytes(range(256)) * 28          # ≈ 7 KiB, one read
    client.write(request)
    send(server, bios[1].read())
    assert app.received == request
    assert len(fed) > 1 and max(fed) <= connections.BIO_FEED


def test_a_read_that_fills_the_buffer_goes_in_whole(pair):
    server, app, wire, client, bios, fed = pair
    shake(server, wire, client, bios)
    fed.clear()
    body = b"x" * (3 * connections.TLS_READ_BUFFER)
    client.write(body)
    send(server, bios[1].read())
    assert app.received == body
    assert connections.TLS_READ_BUFFER in fed


def test_a_response_leaves_in_records_of_a_kib_in_one_socket_write(pair):
    server, app, wire, client, bios, _ = pair
    shake(server, wire, client, bios)
    response = b"HTTP/1.1 200 OK\r\n\r\n" + b"r" * 4000
    app.transport.write(response)
    assert len(wire.written) == 1
    assert max(records(wire.written[0])) <= connections.BIO_FEED + 17 + 5     # content type + AEAD tag
    bios[0].write(wire.written[0])
    assert plaintext(client) == response


def test_a_large_response_is_encrypted_whole(pair):
    server, app, wire, client, bios, _ = pair
    shake(server, wire, client, bios)
    response = b"r" * (2 * connections.TLS_READ_BUFFER)
    app.transport.write(response)
    assert max(records(b"".join(wire.written))) > connections.BIO_FEED + 22
    bios[0].write(b"".join(wire.written))
    assert plaintext(client) == response
