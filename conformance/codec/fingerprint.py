"""Keyed fingerprints: how a secret (a CGW password, an OTP) is kept in files that are shared.

The evidence log, the tapes and the gateway's store keep ``[fingerprint:hmac-sha256:<hex>]`` in place
of the value: HMAC-SHA256 under a key that exists only in memory for one run (the harness makes it and
gives it to its gateway; a standalone gateway makes its own). Equal values give equal markers within
the run, so a case can still judge "the approval carried the OTP of the e-mail" or "the header holds
the password of the body", and ``ecdi replay``, which reads only markers, re-derives the same verdict;
without the key a marker reveals nothing (no dictionary attack on a 6-digit OTP).

A marker is its own fingerprint (``Fingerprinter.__call__`` is idempotent), so redacting twice, or
fingerprinting a value read back from a tape, changes nothing.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import html
import re
import secrets
from typing import Iterable

MARKER = re.compile(r"\[fingerprint:hmac-sha256:[0-9a-f]{64}\]")
SECRET_ELEMENTS = ("Password", "otp")     # the SOAP Send's Password (TRN-04), PaymentApproval/otp (PAY-06)


def new_key() -> bytes:
    return secrets.token_bytes(32)


def _element(name: str) -> tuple[re.Pattern, re.Pattern]:
    """The element's text as markup (``<p:name ...>text</p:name>``) and as escaped character data inside
    another element (``&lt;p:name&gt;text&lt;/p:name&gt;``: the message text inside ``MessageXML``)."""
    prefix = rb"(?:[\w.-]+:)?"
    raw = re.compile(rb"(<" + prefix + name.encode() + rb"(?:\s[^>]*)?>)([^<]*)(</" + prefix + name.encode()
                     + rb"\s*>)")
    escaped = re.compile(rb"(&lt;" + prefix + name.encode() + rb"(?:\s(?:(?!&gt;)[^<])*)?&gt;)((?:(?!&lt;)[^<])*)(&lt;/"
                         + prefix + name.encode() + rb"\s*&gt;)")
    return raw, escaped


_PATTERNS = {name: _element(name) for name in SECRET_ELEMENTS}


def _sub_at_name(pattern: re.Pattern, opener: bytes, name: bytes, data: bytes, replace) -> bytes:
    """``pattern.sub(replace, data)``, trying the pattern only where ``name`` occurs, at the last
    ``opener`` before it (no prefix holds an opener). Scanning with the pattern itself tries it at every
    ``&lt;`` of a large message text and held the gateway's GIL for tens of milliseconds (issue 13)."""
    out, pos, at = [], 0, _find(data, name)
    while at != -1:
        start = data.rfind(opener, pos, at)
        match = pattern.match(data, start) if start != -1 else None
        if match is not None:
            out += [data[pos:match.start()], replace(match)]
            pos = match.end()
            at = _find(data, name, pos)
        else:
            at = _find(data, name, at + 1)
    out.append(data[pos:])
    return b"".join(out)


_CHUNK = 1 << 20


def _find(data: bytes, needle: bytes, start: int = 0) -> int:
    """``data.find(needle, start)``, a MiB at a time: one find over megabytes holds the interpreter
    throughout, and the gateway's event loop with it; between chunks other threads run."""
    while start < len(data):
        at = data.find(needle, start, start + _CHUNK + len(needle) - 1)
        if at != -1:
            return at
        start += _CHUNK
    return -1


SHORT = 8     # a value shorter than this (or all digits: an OTP) is replaced only as a word of its own


def _ordered(values: Iterable[str]) -> list[str]:
    return sorted({v for v in values if v and not MARKER.fullmatch(v)}, key=len, reverse=True)


def _bounded(value: str) -> str:
    """The pattern of ``value``: anywhere if it is long, else only where no letter or digit touches it, so a
    short password or a 6-digit OTP never rewrites part of a longer number, word or hash."""
    if len(value) >= SHORT and not value.isdigit():
        return re.escape(value)
    return rf"(?<![0-9A-Za-z]){re.escape(value)}(?![0-9A-Za-z])"


class Fingerprinter:
    """Fingerprints and redaction under one run's key."""

    def __init__(self, key: bytes):
        self._key = key

    def __call__(self, value: str) -> str:
        if MARKER.fullmatch(value):
            return value
        digest = hmac.new(self._key, value.encode("utf-8"), hashlib.sha256).hexdigest()
        return f"[fingerprint:hmac-sha256:{digest}]"

    def elements(self, data: bytes | None, names: Iterable[str] = SECRET_ELEMENTS) -> tuple[bytes | None, list[str]]:
        """``data`` with the text of every ``names`` element replaced by its fingerprint, and the clear
        values found (as a parser would read them)."""
        if not data:
            return data, []
        found: list[str] = []
        for name in names:
            for pattern, unescapes, opener in zip(_PATTERNS[name], (1, 2), (b"<", b"&lt;")):
                def sub(m: re.Match) -> bytes:
                    value = m.group(2).decode("utf-8", "replace")
                    for _ in range(unescapes):
                        value = html.unescape(value)
                    if MARKER.fullmatch(value):
                        return m.group(0)
                    found.append(value)
                    return m.group(1) + self(value).encode("ascii") + m.group(3)
                data = _sub_at_name(pattern, opener, name.encode(), data, sub)
        return data, found

    def text(self, text: str, values: Iterable[str]) -> str:
        """``text`` with every occurrence of each value replaced by its fingerprint (``_bounded``)."""
        for value in _ordered(values):
            if value in text:
                text = re.sub(_bounded(value), self(value).replace("\\", r"\\"), text)
        return text

    def octets(self, data: bytes | None, values: Iterable[str]) -> bytes | None:
        """``text`` on octets: each value's UTF-8 form replaced."""
        for value in _ordered(values):
            if data and _find(data, value.encode("utf-8")) != -1:
                data = re.sub(_bounded(value).encode("utf-8"), self(value).encode("ascii"), data)
        return data

    def header(self, value: str, values: Iterable[str]) -> str:
        """A header value redacted; the text inside ``Basic <base64>`` too (re-encoded)."""
        scheme, _, token = value.partition(" ")
        if scheme.lower() == "basic" and token:
            try:
                decoded = base64.b64decode(token.strip(), validate=True).decode("utf-8")
            except (binascii.Error, ValueError):
                decoded = None
            if decoded is not None:
                redacted = self.text(decoded, values)
                if redacted != decoded:
                    return f"{scheme} {base64.b64encode(redacted.encode('utf-8')).decode('ascii')}"
        return self.text(value, values)
