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


Span = tuple[int, int, str]      # octets [start, end) of a secret, and its clear value


def _spans_at_name(pattern: re.Pattern, opener: bytes, name: bytes, data: bytes, unescapes: int) -> list[Span]:
    """The text (group 2) of every ``pattern`` match, trying the pattern only where ``name`` occurs, at the
    last ``opener`` before it (no prefix holds an opener). Scanning with the pattern itself tries it at
    every ``&lt;`` of a large message text and held the gateway's GIL for tens of milliseconds (issue 13).
    A text that is already a marker is no secret."""
    out, pos, at = [], 0, _find(data, name)
    while at != -1:
        start = data.rfind(opener, pos, at)
        match = pattern.match(data, start) if start != -1 else None
        if match is not None:
            value = match.group(2).decode("utf-8", "replace")
            for _ in range(unescapes):
                value = html.unescape(value)
            if not MARKER.fullmatch(value):
                out.append((match.start(2), match.end(2), value))
            pos = match.end()
            at = _find(data, name, pos)
        else:
            at = _find(data, name, at + 1)
    return out


def _merged(spans: list[Span], found: list[Span], *, cover: bool) -> list[Span]:
    """Sorted ``spans`` with sorted ``found`` (neither overlapping within itself) added, in one pass: one
    overlapping a span already there is left out, unless ``cover`` and it covers it whole (an element
    around another: the outer text is replaced, as a second ``re.sub`` pass over the first's output would)."""
    out, i = [], 0
    for span in found:
        while i < len(spans) and spans[i][1] <= span[0]:
            out.append(spans[i])
            i += 1
        j = i
        while j < len(spans) and spans[j][0] < span[1]:
            j += 1
        if i == j or cover and all(span[0] <= s[0] and s[1] <= span[1] for s in spans[i:j]):
            out.append(span)
            i = j
    return out + spans[i:]


def _element_passes(data: bytes | None, names: Iterable[str]) -> tuple[list[Span], list[str]]:
    spans: list[Span] = []
    passes: list[list[Span]] = []
    for name in names if data else ():
        for pattern, unescapes, opener in zip(_PATTERNS[name], (1, 2), (b"<", b"&lt;")):
            passes.append(_spans_at_name(pattern, opener, name.encode(), data, unescapes))
            spans = _merged(spans, passes[-1], cover=True)
    kept = set(spans)
    return spans, [span[2] for found in passes for span in found if span in kept]


def element_spans(data: bytes | None, names: Iterable[str] = SECRET_ELEMENTS) -> list[Span]:
    """Where the text of every ``names`` element is in ``data`` (as markup, and escaped inside another
    element), with its value as a parser would read it; sorted."""
    return _element_passes(data, names)[0]


def value_spans(data: bytes | None, values: Iterable[str], taken: list[Span] = ()) -> list[Span]:
    """Where each value's UTF-8 form is in ``data`` (``_bounded``; longer values first), outside the sorted
    spans ``taken``; sorted, ``taken`` included."""
    spans = list(taken)
    for value in _ordered(values) if data else ():
        if _find(data, value.encode("utf-8")) != -1:
            found = [(m.start(), m.end(), value) for m in re.finditer(_bounded(value).encode("utf-8"), data)]
            spans = _merged(spans, found, cover=False)
    return spans


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

    def replaced(self, data: bytes, spans: Iterable[Span]) -> bytes:
        """``data`` with each span (``element_spans``, ``value_spans``: not overlapping) replaced by
        the fingerprint of its value; ``data`` itself when there are none (no copy of a large body)."""
        view, out, pos = memoryview(data), [], 0      # slices of a view: the octets are copied once, by join
        for start, end, value in sorted(spans):
            out += [view[pos:start], self(value).encode("ascii")]
            pos = end
        if not out:
            return data
        out.append(view[pos:])
        return b"".join(out)

    def elements(self, data: bytes | None, names: Iterable[str] = SECRET_ELEMENTS) -> tuple[bytes | None, list[str]]:
        """``data`` with the text of every ``names`` element replaced by its fingerprint, and the clear
        values found (as a parser would read them)."""
        if not data:
            return data, []
        spans, found = _element_passes(data, names)
        return self.replaced(data, spans), found

    def text(self, text: str, values: Iterable[str]) -> str:
        """``text`` with every occurrence of each value replaced by its fingerprint (``_bounded``)."""
        for value in _ordered(values):
            if value in text:
                text = re.sub(_bounded(value), self(value).replace("\\", r"\\"), text)
        return text

    def octets(self, data: bytes | None, values: Iterable[str]) -> bytes | None:
        """``text`` on octets: each value's UTF-8 form replaced."""
        return self.replaced(data, value_spans(data, values)) if data else data

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
