"""One JSON call to the other end — a vendor's automation endpoint, the gateway's control API — whose
every failure is one line naming the call, the endpoint and the cause (issue 13, item 7).

The other end may be wrong in any way: refuse or reset the connection, never answer, answer 5xx,
redirect, send another media type, malformed or endless JSON. ``call`` never follows a redirect
(the request may carry passwords, and a POST silently turned into a GET acts on nothing), reads at
most ``max_bytes`` within ``timeout`` seconds overall, and raises ``RemoteFailure`` with the cause;
the caller turns it into its own error (``DriverError``, ``ControlError``), and the run goes on.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass

import requests

MAX_ANSWER_BYTES = 64 * 2**20
JSON_TYPES = ("application/json", "application/jsonl", "application/x-ndjson")


class RemoteFailure(Exception):
    """``str()`` is the whole one-line message; ``status`` the HTTP status when there was an answer."""

    def __init__(self, message: str, status: int | None = None, body: bytes = b""):
        super().__init__(message)
        self.status, self.body = status, body


@dataclass
class Answer:
    status: int
    content_type: str
    body: bytes

    def json(self, where: str):
        """The body as JSON (an object or array); RemoteFailure naming ``where`` otherwise."""
        try:
            return json.loads(self.body)
        except (ValueError, UnicodeDecodeError) as exc:
            raise RemoteFailure(f"{where}: the answer is not JSON ({exc}): {excerpt(self.body)}", self.status,
                                self.body) from None


def call(session: requests.Session, method: str, url: str, *, where: str, timeout: float, peer: str = "the endpoint",
         max_bytes: int | None = None, ok_statuses=range(200, 300), **kwargs) -> Answer:
    """``method url``; an ``Answer`` with a status in ``ok_statuses`` and a JSON media type (or no body).

    ``where`` names the call and the endpoint ("http driver, action 'lodge' (POST https://…/lodge)")."""
    deadline = time.monotonic() + timeout
    try:
        with session.request(method, url, timeout=timeout, allow_redirects=False, stream=True, **kwargs) as response:
            body = _read(response, where, deadline, max_bytes or MAX_ANSWER_BYTES)
    except requests.RequestException as exc:
        raise RemoteFailure(f"{where}: {cause(exc, timeout, peer)}") from None
    content_type = response.headers.get("Content-Type", "")
    if response.is_redirect or 300 <= response.status_code < 400:
        location = response.headers.get("Location", "(no Location)")
        raise RemoteFailure(f"{where}: redirected (HTTP {response.status_code}) to {location}; "
                            "redirects are never followed", response.status_code, body)
    if response.status_code not in ok_statuses:
        reason = f" {response.reason}" if response.reason else ""
        raise RemoteFailure(f"{where}: HTTP {response.status_code}{reason}: {excerpt(body)}", response.status_code, body)
    media = content_type.split(";", 1)[0].strip().lower()
    if body and not (media in JSON_TYPES or media.endswith("+json")):
        raise RemoteFailure(f"{where}: the answer is {media or 'untyped'!s}, not JSON (Content-Type "
                            f"{content_type!r}): {excerpt(body)}", response.status_code, body)
    return Answer(response.status_code, content_type, body)


def _read(response: requests.Response, where: str, deadline: float, max_bytes: int) -> bytes:
    chunks, size = [], 0
    for chunk in response.iter_content(65536):
        chunks.append(chunk)
        size += len(chunk)
        if size > max_bytes:
            raise RemoteFailure(f"{where}: the answer exceeds {max_bytes:,} bytes (oversized)", response.status_code)
        if time.monotonic() > deadline:
            raise RemoteFailure(f"{where}: the answer did not end within the timeout (still arriving after "
                                f"{size:,} bytes)", response.status_code)
    return b"".join(chunks)


def cause(exc: requests.RequestException, timeout: float, peer: str = "the endpoint") -> str:
    """What went wrong, in the tester's words."""
    text = str(exc)
    if isinstance(exc, requests.ConnectTimeout):
        return f"timeout: no connection within {timeout:g} s"
    if isinstance(exc, (requests.ReadTimeout, requests.Timeout)):
        return f"timeout: no answer within {timeout:g} s"
    if isinstance(exc, requests.exceptions.SSLError):
        return f"TLS failure: {text}"
    if isinstance(exc, (requests.exceptions.ChunkedEncodingError, requests.exceptions.ContentDecodingError)):
        return f"the answer was cut short or garbled: {text}"
    squeezed = text.lower().replace(" ", "")
    for marker, words in (("refused", "connection refused"), ("reset", "connection reset"),
                          ("aborted", "connection reset"), ("remotedisconnected", "connection closed without an answer"),
                          ("nameorservicenotknown", "unknown host"), ("nodenamenorservname", "unknown host")):
        if marker in squeezed:
            return f"{words}: cannot reach {peer} ({text})"
    return f"cannot reach {peer}: {text}"


def excerpt(body: bytes | str, limit: int = 200) -> str:
    text = body.decode("utf-8", "replace") if isinstance(body, bytes) else body
    return repr(text[:limit] + ("…" if len(text) > limit else ""))
