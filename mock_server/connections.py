"""When each connection was accepted, when its TLS handshake began and ended, when it closed.

REL-01 starts an attempt at "connection set-up or reuse" and REL-06 counts a backoff "from the end of the
failed attempt": a request's arrival alone cannot tell either (a cold client's handshake sits between
the two). The gateway therefore sees every connection from the accept on:

* ``accepted_at`` — the protocol factory runs when asyncio accepts the TCP connection, before the TLS
  handshake (asyncio wraps the application protocol in its SSL protocol only after creating it);
* ``tls_started_at`` — the server context's SNI callback runs when the ClientHello has been read (it is
  called with or without a server name); the SSL object carries the time to its connection;
* ``tls_finished_at`` — the application protocol's ``connection_made`` comes after the handshake;
* ``closed_at`` — its ``connection_lost``, whoever closed.

``Tracked`` sits between asyncio and aiohttp's request handler and forwards every call unchanged.
Times are epoch seconds (``time.time()``), like the evidence rows they end up in.

It also bounds a slow request head (slowloris, issue 13): from the end of the handshake, or from the
first byte of a later request on the connection, its head must be complete within ``header_timeout``
(the gateway's outermost middleware calls ``head_read`` and ``request_done``), else the connection is
aborted. At most ``max_connections`` are open at once (``OpenConnections``). Idle time between
requests is aiohttp's ``keepalive_timeout``; the handshake asyncio's ``ssl_handshake_timeout``; the
body ``app._read``'s ``body_timeout`` (docs/security.md).
"""

from __future__ import annotations

import asyncio
import ssl
from asyncio import sslproto
import time
from dataclasses import dataclass, field

_HELLO_AT = "_ecdi_tls_started_at"     # on the SSL object, set by the SNI callback
_CONNECTION = "_ecdi_connection"        # on the transport a request handler is given
# asyncio (3.11) gives each TLS connection a 256 KiB read buffer, zero-filled when the connection is
# accepted: 1.2 GB for 5,000 held requests. The ciphertext read into it is copied into the connection's
# TLS object before the event loop does anything else, so one buffer serves every connection of a loop
# (``_LeanTLS``): 16 KiB each was 80 MB for 5,000 (docs/performance.md, "Held connections"). It stays 16
# KiB, a TLS record, so that a request is read with few calls.
TLS_READ_BUFFER = 16 * 1024
# A connection's two ``MemoryBIO``s keep, for the connection's life, the capacity of the largest chunk
# written into them (x 4/3): a 7.6 KB request read at once left ≈ 10 KB on each held connection, a 4 KB
# response ≈ 5.5 KB on each connection answered and kept alive. ``_LeanTLS`` hands what it read to the
# incoming BIO this much at a time, OpenSSL draining it in between, and encrypts what the application
# writes this much at a time, emptying the outgoing BIO in between (records of 1 KiB; the handshake's
# first flight, ≈ 1.5 KB, is the largest write left). Reads and writes over 16 KiB (large messages) go
# through whole, as in asyncio.
BIO_FEED = 1024


@dataclass(slots=True)
class Connection:
    accepted_at: float
    tls_started_at: float | None = None
    tls_finished_at: float | None = None
    closed_at: float | None = None
    requests: int = 0                       # requests that arrived on it so far
    waiting: list = field(default_factory=list)   # evidence rows of its requests not yet answered
    busy: bool = False                      # a request's head was read and its handler has not ended
    timed_out: str | None = None            # why the gateway aborted it, if it did
    _timer: asyncio.TimerHandle | None = field(default=None, repr=False)

    def head_read(self) -> None:
        """A request's head is complete: its handler runs (the head timer stops)."""
        self.busy = True
        self._stop_timer()

    def request_done(self) -> None:
        self.busy = False

    def _stop_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def next_request(self) -> dict:
        """The evidence fields of a request arriving now on this connection."""
        self.requests += 1
        return {"connection_accepted_at": self.accepted_at, "tls_started_at": self.tls_started_at,
                "tls_finished_at": self.tls_finished_at, "connection_request": self.requests}


class OpenConnections:
    """How many connections are open past their handshake, against ``limit`` (``max_connections``).

    One over the limit is closed as soon as it is made: each open connection holds a descriptor and
    buffers, and a client opening thousands must not take the gateway's last descriptor from others.
    Handshakes in progress are not counted; ``handshake_timeout`` bounds them."""

    def __init__(self, limit: int | None):
        self.limit = limit
        self.count = 0

    def admit(self) -> bool:
        if self.limit is not None and self.count >= self.limit:
            return False
        self.count += 1
        return True

    def release(self) -> None:
        self.count -= 1


class Tracked(asyncio.Protocol):
    """The application protocol asyncio sees: notes the connection's times, forwards everything."""

    __slots__ = ("inner", "connection", "header_timeout", "transport", "_open", "_admitted")   # one per connection

    def __init__(self, inner: asyncio.Protocol, header_timeout: float | None = None,
                 open_connections: OpenConnections | None = None):
        self.inner = inner
        self.connection = Connection(time.time())
        self.header_timeout = header_timeout
        self.transport = None
        self._open = open_connections
        self._admitted = False

    def _await_head(self) -> None:
        if self.header_timeout and self.connection._timer is None and not self.connection.busy:
            self.connection._timer = asyncio.get_running_loop().call_later(self.header_timeout, self._head_late)

    def _head_late(self) -> None:
        self.connection._timer = None
        if not self.connection.busy and self.transport is not None:
            self.connection.timed_out = f"no complete request head within {self.header_timeout:g} s"
            self.transport.abort()

    def connection_made(self, transport) -> None:
        self.transport = transport
        if self._open is not None and not self._open.admit():
            self.connection.timed_out = f"over max_connections ({self._open.limit}) open at once"
            transport.abort()                    # the application never sees it
            return
        self._admitted = self._open is not None
        self._await_head()
        self.connection.tls_finished_at = time.time()
        ssl_object = transport.get_extra_info("ssl_object")
        self.connection.tls_started_at = getattr(ssl_object, _HELLO_AT, None)
        setattr(transport, _CONNECTION, self.connection)
        self.inner.connection_made(transport)

    def connection_lost(self, exc) -> None:
        if not self._admitted and self._open is not None:
            return                               # refused in connection_made
        if self._admitted:
            self._open.release()
        self.connection._stop_timer()
        self.connection.closed_at = time.time()
        for row in self.connection.waiting:          # requests still unanswered learn it at once
            row.setdefault("connection_closed_at", self.connection.closed_at)
        self.inner.connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self._open is not None and not self._admitted:
            return
        self._await_head()
        self.inner.data_received(data)

    def eof_received(self):
        return self.inner.eof_received()

    def pause_writing(self) -> None:
        self.inner.pause_writing()

    def resume_writing(self) -> None:
        self.inner.resume_writing()


def tracked(factory, header_timeout: float | None = None, open_connections: OpenConnections | None = None):
    """The protocol factory to give ``loop.create_server`` instead of ``factory``."""
    return lambda: Tracked(factory(), header_timeout, open_connections)


class _LeanTLS(sslproto.SSLProtocol):
    """asyncio's own TLS protocol, reading into its loop's shared buffer (``TLS_READ_BUFFER``).

    Safe because asyncio's selector loop calls ``get_buffer``, ``recv_into`` and ``buffer_updated`` (which
    copies the octets into this connection's ``MemoryBIO``) one after the other in one callback, and a
    loop runs one callback at a time; each loop (each gateway thread) has its own buffer."""

    max_size = 1         # asyncio's __init__ allocates a buffer of this size; it is replaced at once

    def __init__(self, shared: memoryview, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._ssl_buffer_view = shared
        self._ssl_buffer = shared.obj
        self.max_size = len(shared)            # plaintext read at once, as asyncio's own
        self._write_backlog = []               # asyncio's deque (≈ 0.7 KB): it is only appended to and
                                               # emptied from the front, a few items at most

    def get_buffer(self, n):
        return self._ssl_buffer_view

    def buffer_updated(self, nbytes):
        """asyncio's, once per ``BIO_FEED`` octets of what was read. A read that filled the buffer (a large
        body streaming in) goes in at once, as in asyncio: slicing costs ≈ 1.5 µs of CPU per KiB, and only
        that connection's BIO keeps the larger capacity."""
        whole = self._ssl_buffer_view
        if nbytes >= len(whole):
            return super().buffer_updated(nbytes)
        try:
            for start in range(0, nbytes, BIO_FEED):
                self._ssl_buffer_view = whole[start:start + BIO_FEED]
                super().buffer_updated(min(BIO_FEED, nbytes - start))
        finally:
            self._ssl_buffer_view = whole

    def _do_write(self):
        """asyncio's, encrypting ``BIO_FEED`` octets at a time; what the outgoing BIO collects is taken out
        after each and written to the socket at the end, at once, as asyncio does."""
        if self._ssl_writing_paused or self._write_buffer_size > TLS_READ_BUFFER:
            return super()._do_write()          # the socket's buffer is full (flow control), or a large response
        encrypted = []
        try:
            while self._write_backlog:
                data, done = memoryview(self._write_backlog[0]).cast("B"), 0
                try:
                    while done < len(data):
                        count = self._sslobj.write(data[done:done + BIO_FEED])
                        done += count
                        self._write_buffer_size -= count
                        encrypted.append(self._outgoing.read())
                finally:
                    if done < len(data):
                        self._write_backlog[0] = bytes(data[done:])
                    else:
                        del self._write_backlog[0]
        except sslproto.SSLAgainErrors:
            pass
        if encrypted:
            self._transport.write(b"".join(encrypted))
        self._process_outgoing()


def tracked_tls(factory, context: ssl.SSLContext, *, header_timeout: float | None, handshake_timeout: float,
                open_connections: OpenConnections | None = None):
    """``tracked``'s factory wrapped in TLS, for ``loop.create_server`` *without* its ``ssl`` argument:
    what asyncio does for a server's TLS, but with one read buffer for all connections (``_LeanTLS``)."""
    loop = asyncio.get_running_loop()
    inner = tracked(factory, header_timeout, open_connections)
    shared = memoryview(bytearray(TLS_READ_BUFFER))
    return lambda: _LeanTLS(shared, loop, inner(), context, None, server_side=True,
                            ssl_handshake_timeout=handshake_timeout)


def note_client_hello(ssl_object, server_name, context) -> None:
    """``SSLContext.sni_callback``: the ClientHello has been read (returns None: the handshake goes on)."""
    setattr(ssl_object, _HELLO_AT, time.time())


def watch_handshakes(context: ssl.SSLContext) -> ssl.SSLContext:
    context.sni_callback = note_client_hello
    return context


def connection_of(transport) -> Connection | None:
    return getattr(transport, _CONNECTION, None)
