"""No secret at rest in the evidence log: a row's passwords and OTPs become keyed fingerprints.

The evidence file is what a vendor hands to customs, and the control API lists its rows, so before a
row is stored (or listed while in flight) the gateway replaces (``conformance.codec.fingerprint``):

* the text of the SOAP ``Password`` and of every ``otp`` element (in the body, in the escaped message
  text inside ``MessageXML``, in ``message_text``) by its fingerprint;
* every occurrence of such a value, or of an account's password, anywhere else in the body, the URL
  (also percent-decoded), the headers (also inside ``Authorization: Basic``) and the gateway's verdict.

What TRN-11 judges survives: the marker in the body equals the marker where the same password stood in
a header or the URL. Whether the password was the account's is the gateway's fact
``gateway_verdict.credentials.password_matches_account`` (pipeline.step_credentials).

Finding the secrets in a Send's octets means scanning them (up to 4 × S_max of body and S_max of message
text), which holds the interpreter and stalled every other client (issue 13). The CPU worker that parses
the request already holds those octets: it finds the spans (``find_secrets``) and the row carries them
(``SECRETS``), so the evidence writer only replaces them; a row without them is scanned here.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Iterable
from urllib.parse import unquote

from conformance.codec.fingerprint import Fingerprinter, Span, element_spans, value_spans

SECRETS = "_secrets"     # the row's key for the ``Secrets`` of its request (not a column: redaction takes it out)


@dataclass(frozen=True)
class Secrets:
    """Where a request's passwords and OTPs are in its body and its message text (``find_secrets``)."""

    values: tuple[str, ...]        # the clear values of the secret elements, then the accounts' passwords
    known: frozenset[str]          # the accounts' passwords looked for
    body: tuple[int, list[Span]]   # (length of the octets, spans)
    text: tuple[int, list[Span]]


def find_secrets(body: bytes | None, text: bytes | None, known: Iterable[str]) -> Secrets:
    """What ``redact_row`` would replace in a row with this request body and message text."""
    known = list(known)
    body_elements, text_elements = element_spans(body), element_spans(text)
    values = [*(v for *_, v in body_elements + text_elements), *known]
    return Secrets(tuple(values), frozenset(known), (len(body or b""), value_spans(body, values, body_elements)),
                   (len(text or b""), value_spans(text, values, text_elements)))


def _replaced(fp: Fingerprinter, data: bytes | None, found: tuple[int, list[Span]]) -> bytes | None:
    return fp.replaced(data, found[1]) if data else data


def _octets_redacted(fp: Fingerprinter, row: dict[str, Any], known: Iterable[str]) -> dict[str, Any]:
    """A copy of ``row`` with its request octets redacted, and as ``SECRETS`` the values found (no spans)."""
    out = dict(row)
    known = list(known)
    found: Secrets | None = out.pop(SECRETS, None)
    body, text = out.get("request_body"), out.get("message_text")
    if found is None or not found.known.issuperset(known) or (found.body[0], found.text[0]) != (
            len(body or b""), len(text or b"")):
        # not found by the worker, or for other octets (set aside: redacted) or passwords (an account added since)
        found = find_secrets(body, text, [*known, *(found.values if found is not None else ())])
    out["request_body"], out["message_text"] = _replaced(fp, body, found.body), _replaced(fp, text, found.text)
    out[SECRETS] = Secrets(found.values, found.known, (len(out["request_body"] or b""), []),
                           (len(out["message_text"] or b""), []))
    return out


def set_aside(fp: Fingerprinter, row: dict[str, Any], known: Iterable[str]) -> dict[str, Any]:
    """The request octets of ``row`` redacted now, to be kept out of memory (spool.py) while their request
    waits, and the ``SECRETS`` that make ``redact_row`` redact the rest of the row as it would have."""
    out = _octets_redacted(fp, row, known)
    return {name: out[name] for name in ("request_body", "message_text", SECRETS)}


def redact_row(fp: Fingerprinter, row: dict[str, Any], known: Iterable[str]) -> dict[str, Any]:
    """A copy of the evidence fields ``row`` with no password or OTP in clear (``known``: the accounts'
    passwords, looked for everywhere)."""
    out = _octets_redacted(fp, row, known)
    values = list(out.pop(SECRETS).values)
    path = out.get("path")
    if isinstance(path, str) and any(v and v in unquote(path) for v in values):
        out["path"] = fp.text(unquote(path), values)
    if isinstance(out.get("request_headers"), dict):
        out["request_headers"] = {k: fp.header(v, values) if isinstance(v, str) else v
                                  for k, v in out["request_headers"].items()}
    if out.get("gateway_verdict"):
        out["gateway_verdict"] = json.loads(fp.text(json.dumps(out["gateway_verdict"], ensure_ascii=False), values))
    return out
