"""One HTTP attempt of the send operation, and what its outcome means (TRN-03/09/10/11, REL-01/03/04).

``Transport.post`` makes exactly one attempt — one TLS connection, one ``POST`` of one ``Send``
(TRN-14) — and returns an ``AttemptOutcome``; it never raises for anything the network or the
gateway does. Whether to retransmit is the sender's decision, taken from ``outcome.category``:

* ``reply``      — a SOAP ``SendResponse``: the reply message text still has to be verified (RPL-06);
* ``retryable``  — REL-03: connect failure, broken TLS handshake, timeout, connection lost,
                   truncated body, not a ``SendResponse``, HTTP 429/502/503/504/other 5xx;
* ``final``      — REL-04: HTTP 3xx (never followed), 500 with a ``soap:Client`` fault, other 4xx;
* ``tls-verification-failure`` — TRN-10: the server certificate did not verify; nothing was sent,
                   the user is told of a TLS security error, no automatic retry.

Security properties, all without any way to switch them off (SEC-03):
* only ``https://`` endpoints (TRN-10); there is no ``http://`` adapter at all;
* the server chain is verified against the configured TLS anchor *only* (not certifi, not the
  environment's ``REQUESTS_CA_BUNDLE``), and the host name against subjectAltName (RFC 6125);
* TLS 1.2 minimum with Python's default AEAD-only cipher list (TRN-09);
* credentials travel only in the SOAP body: ``trust_env`` is off so no ``.netrc`` Authorization
  header or proxy credentials are added, and a fresh session per attempt carries no cookie (TRN-11).
"""

from __future__ import annotations

import email.utils
import http.client
import socket
import ssl
import threading
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from urllib.parse import urlsplit

import requests
import urllib3
from requests.adapters import HTTPAdapter

from ..codec.soap import NotSendResponse, SoapFault, parse_send_response

REPLY = "reply"
RETRYABLE = "retryable"
FINAL = "final"
TLS_FAILURE = "tls-verification-failure"

_CHUNK = 16 * 1024


@dataclass(frozen=True)
class AttemptOutcome:
    """What one attempt produced. ``cause`` is a short word the sender and the journal use
    (``timeout``, ``connect``, ``connection-lost``, ``incomplete``, ``not-send-response``, ``http-503``,
    ``redirect``, ``soap-client-fault``, ``tls-verification``, ``tls-negotiation``, ``reply``…)."""

    category: str
    cause: str
    detail: str
    status: int | None = None
    reply_text: bytes | None = None
    retry_after: float | None = None   # seconds, from an HTTP 503 or 429 (REL-06)

    @property
    def retryable(self) -> bool:
        return self.category == RETRYABLE


def endpoint_problem(endpoint: str) -> str | None:
    """TRN-10: the DTS refuses any ``cgw_endpoint`` that does not start with ``https://``."""
    if not endpoint.startswith("https://"):
        return f"the gateway address {endpoint!r} does not start with https:// (TRN-10); it will not be used"
    if not urlsplit(endpoint).hostname:
        return f"the gateway address {endpoint!r} names no host"
    return None


def parse_retry_after(value: str | None, now: datetime) -> float | None:
    """``Retry-After`` as seconds from ``now``: delta-seconds or an HTTP-date (RFC 9110 §10.2.3).

    Not scaled by ``time_scale`` (§2.1). An unreadable value is ignored (None)."""
    if value is None:
        return None
    value = value.strip()
    if value.isascii() and value.isdigit():
        return float(int(value))
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when is None:
        return None
    if when.tzinfo is None:  # HTTP-dates are GMT
        when = when.replace(tzinfo=timezone.utc)
    return max(0.0, (when - now).total_seconds())


def _is_client_fault(faultcode: str) -> bool:
    """``soap:Client`` whatever the prefix, including dotted refinements such as ``Client.Auth``."""
    return faultcode.rsplit(":", 1)[-1].split(".", 1)[0] == "Client"


def classify_response(status: int, headers, body: bytes, now: datetime) -> AttemptOutcome:
    """REL-03 / REL-04 for a complete HTTP response."""
    if 200 <= status < 300:
        try:
            return AttemptOutcome(REPLY, "reply", "SendResponse received", status, parse_send_response(body))
        except (SoapFault, NotSendResponse) as exc:
            return AttemptOutcome(RETRYABLE, "not-send-response", f"HTTP {status} without a SendResponse: {exc}", status)
    if 300 <= status < 400:
        return AttemptOutcome(FINAL, "redirect", f"HTTP {status} redirect (not followed, REL-04)", status)
    if status in (429, 503):
        retry_after = parse_retry_after(headers.get("Retry-After"), now)
        return AttemptOutcome(RETRYABLE, f"http-{status}", f"HTTP {status}", status, retry_after=retry_after)
    if status == 500:
        try:
            parse_send_response(body)
        except SoapFault as fault:
            if _is_client_fault(fault.faultcode):
                return AttemptOutcome(FINAL, "soap-client-fault", f"HTTP 500 {fault}", status)
            return AttemptOutcome(RETRYABLE, "soap-server-fault", f"HTTP 500 {fault}", status)
        except NotSendResponse:
            pass
        return AttemptOutcome(RETRYABLE, "http-500", "HTTP 500 without a soap:Client fault", status)
    if 500 <= status < 600:
        return AttemptOutcome(RETRYABLE, f"http-{status}", f"HTTP {status}", status)
    if 400 <= status < 500:
        return AttemptOutcome(FINAL, f"http-{status}", f"HTTP {status} (REL-04)", status)
    return AttemptOutcome(RETRYABLE, "not-http", f"HTTP status {status} is not a valid response", status)


def _chain(exc: BaseException):
    """The exception and everything it wraps (requests and urllib3 nest them several levels deep)."""
    seen, todo = set(), [exc]
    while todo:
        e = todo.pop()
        if not isinstance(e, BaseException) or id(e) in seen:
            continue   # (ssl.SSLError.reason is a string, urllib3's MaxRetryError.reason an exception)
        seen.add(id(e))
        yield e
        todo.extend([e.__cause__, e.__context__, getattr(e, "reason", None), *getattr(e, "args", ())])


def classify_exception(exc: BaseException, *, timed_out: bool) -> AttemptOutcome:
    """REL-03 / REL-04 / TRN-10 for an attempt that produced no complete response."""
    chain = list(_chain(exc))
    if any(isinstance(e, ssl.SSLCertVerificationError) for e in chain):
        return AttemptOutcome(TLS_FAILURE, "tls-verification", f"the gateway's TLS certificate did not verify: {exc}")
    timeout = AttemptOutcome(RETRYABLE, "timeout", "no complete response within t_send (REL-01)")
    if timed_out:
        return timeout
    # (urllib3's NewConnectionError is a subclass of its ConnectTimeoutError: test it first)
    if any(isinstance(e, (urllib3.exceptions.NewConnectionError, urllib3.exceptions.NameResolutionError,
                          ConnectionRefusedError)) for e in chain):
        return AttemptOutcome(RETRYABLE, "connect", f"could not connect: {exc}")
    if any(isinstance(e, (socket.timeout, urllib3.exceptions.TimeoutError, requests.exceptions.Timeout)) for e in chain):
        return timeout
    ssl_errors = [e for e in chain if isinstance(e, ssl.SSLError)]
    broken = (ssl.SSLEOFError, ssl.SSLZeroReturnError, ConnectionResetError, BrokenPipeError)
    if ssl_errors and not any(isinstance(e, broken) for e in chain):
        # A handshake that ended in an alert (no common protocol version or cipher, not TLS at all):
        # not "broken by the network" (REL-03), so final, and a security matter (TRN-09).
        return AttemptOutcome(FINAL, "tls-negotiation", f"no acceptable TLS session could be established: {ssl_errors[0]}")
    if any(isinstance(e, (requests.exceptions.ChunkedEncodingError, urllib3.exceptions.ProtocolError,
                          http.client.IncompleteRead)) for e in chain) and any(
            isinstance(e, (http.client.IncompleteRead, urllib3.exceptions.IncompleteRead,
                           urllib3.exceptions.InvalidChunkLength)) for e in chain):
        return AttemptOutcome(RETRYABLE, "incomplete", f"the response body ended early: {exc}")
    return AttemptOutcome(RETRYABLE, "connection-lost", f"connection failed or closed before the complete response: {exc}")


class _Deadline:
    """REL-01: the complete response must arrive within ``seconds`` of the attempt's start.

    Two layers: every body read we make is given only the time that remains (socket timeout), and a
    timer shuts the socket down at the deadline for the phases that run inside ``requests`` (TLS
    handshake, sending, status line and headers), which we cannot pace read by read.
    """

    def __init__(self, seconds: float):
        self.end = time.monotonic() + seconds
        self.expired = False
        self._sock = None
        self._lock = threading.Lock()
        self._timer = threading.Timer(max(seconds, 0.0), self._fire)
        self._timer.daemon = True
        self._timer.start()

    def remaining(self) -> float:
        return self.end - time.monotonic()

    def attach(self, sock) -> None:
        with self._lock:
            self._sock = sock
            if self.expired:
                self._shutdown()

    def cancel(self) -> None:
        self._timer.cancel()

    def _fire(self) -> None:
        with self._lock:
            self.expired = True
            self._shutdown()

    def _shutdown(self) -> None:
        if self._sock is not None:
            try:  # the plain-socket shutdown, so a blocked TLS read sees EOF at once
                socket.socket.shutdown(self._sock, socket.SHUT_RDWR)
            except OSError:
                pass


_current = threading.local()


class _WatchedConnection(urllib3.connection.HTTPSConnection):
    """Hands the connected socket to the attempt's deadline."""

    def connect(self) -> None:
        super().connect()
        deadline = getattr(_current, "deadline", None)
        if deadline is not None:
            deadline.attach(self.sock)


class _WatchedPool(urllib3.HTTPSConnectionPool):
    ConnectionCls = _WatchedConnection


class _Adapter(HTTPAdapter):
    """HTTPS only, our TLS context, no automatic retries (retransmission is REL-05/06's business)."""

    def __init__(self, context: ssl.SSLContext, *, check_host: bool = True):
        self._context = context
        self._host_check = {} if check_host else {"assert_hostname": False}
        super().__init__(max_retries=0)

    def init_poolmanager(self, connections, maxsize, block=False, **pool_kwargs):
        super().init_poolmanager(connections, maxsize, block, ssl_context=self._context, **self._host_check,
                                 **pool_kwargs)
        self.poolmanager.pool_classes_by_scheme = {"https": _WatchedPool}


@dataclass(frozen=True)
class TlsSettings:
    """What the DTS accepts from the gateway's TLS server (TRN-09, TRN-10); the reference values are
    the only conforming ones, and no user setting changes them (SEC-03)."""

    minimum_version: ssl.TLSVersion = ssl.TLSVersion.TLSv1_2
    ciphers: str | None = None          # None: Python's default list (AEAD with ECDHE/DHE only)
    verify_chain: bool = True           # RFC 5280 chain to the configured TLS anchor
    check_host: bool = True             # RFC 6125 subjectAltName against the endpoint's host


def tls_context(tls_ca_pem: Path, settings: TlsSettings = TlsSettings()) -> ssl.SSLContext:
    """TRN-09/TRN-10: TLS ≥ 1.2, chain verified to the configured anchor only, host name checked."""
    context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=str(tls_ca_pem))
    context.minimum_version = settings.minimum_version
    if settings.ciphers:
        context.set_ciphers(settings.ciphers)
    context.check_hostname = settings.verify_chain and settings.check_host
    context.verify_mode = ssl.CERT_REQUIRED if settings.verify_chain else ssl.CERT_NONE
    return context


class Transport:
    """HTTPS POST of one ``Send`` per attempt to the gateway (TRN-01, TRN-14)."""

    def __init__(self, endpoint: str, tls_ca_pem: Path, *, t_send: float, user_agent: str,
                 now=lambda: datetime.now(timezone.utc), max_body: int = 64 * 1024 * 1024,
                 tls: TlsSettings = TlsSettings(), classify=None):
        problem = endpoint_problem(endpoint)
        if problem:
            raise ValueError(problem)
        self.endpoint = endpoint
        self.tls_ca_pem = Path(tls_ca_pem)
        self.t_send = t_send
        self.user_agent = user_agent
        self.now = now
        self.max_body = max_body
        self.tls = tls                                              # the DTS's ``tls_settings`` hook
        self._context = tls_context(self.tls_ca_pem, tls)
        self._classify = classify or classify_response              # the DTS's ``response_outcome`` hook

    def _session(self) -> requests.Session:
        session = requests.Session()
        session.trust_env = False
        session.adapters.clear()
        session.mount("https://", _Adapter(self._context, check_host=self.tls.check_host))
        session.headers.clear()
        session.headers.update({"User-Agent": self.user_agent, "Accept": "text/xml", "Accept-Encoding": "identity"})
        return session

    def post(self, body: bytes, headers: dict[str, str]) -> AttemptOutcome:
        """One attempt: POST ``body`` with ``headers`` (TRN-03) and wait at most t_send in all."""
        deadline = _Deadline(self.t_send)
        _current.deadline = deadline
        session = self._session()
        try:
            remaining = max(deadline.remaining(), 0.001)
            response = session.post(self.endpoint, data=body, headers=headers, timeout=(remaining, remaining),
                                    allow_redirects=False, stream=True,
                                    verify=str(self.tls_ca_pem) if self.tls.verify_chain else False)
            try:
                content = self._read_body(response, deadline)
            finally:
                response.close()
        except (requests.RequestException, urllib3.exceptions.HTTPError, http.client.HTTPException, OSError) as exc:
            return classify_exception(exc, timed_out=deadline.expired)
        except _TooLarge as exc:
            return AttemptOutcome(RETRYABLE, "too-large", str(exc), response.status_code)
        finally:
            deadline.cancel()
            _current.deadline = None
            session.close()
        if deadline.remaining() < 0:
            return classify_exception(TimeoutError("deadline"), timed_out=True)
        return self._classify(response.status_code, response.headers, content, self.now())

    def _read_body(self, response: requests.Response, deadline: _Deadline) -> bytes:
        """Read the whole body, each read limited to the time left before the deadline (REL-01)."""
        sock = getattr(getattr(response.raw, "connection", None), "sock", None)
        parts, size = [], 0
        while True:
            remaining = deadline.remaining()
            if remaining <= 0:
                raise socket.timeout("t_send elapsed while reading the response body")
            if sock is not None:
                sock.settimeout(remaining)
            chunk = response.raw.read1(_CHUNK, decode_content=True)  # what has arrived, not a full chunk
            if not chunk:
                return b"".join(parts)
            parts.append(chunk)
            size += len(chunk)
            if size > self.max_body:
                raise _TooLarge(f"response body larger than {self.max_body} octets")


class _TooLarge(Exception):
    """A response body far beyond what can carry a reply of at most S_max octets (RPL-07)."""
