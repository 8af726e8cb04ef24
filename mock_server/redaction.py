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
"""

from __future__ import annotations

import json
from typing import Any, Iterable
from urllib.parse import unquote

from conformance.codec.fingerprint import Fingerprinter


def redact_row(fp: Fingerprinter, row: dict[str, Any], known: Iterable[str]) -> dict[str, Any]:
    """A copy of the evidence fields ``row`` with no password or OTP in clear (``known``: the accounts'
    passwords, looked for everywhere)."""
    out = dict(row)
    body, found = fp.elements(out.get("request_body"))
    text, in_text = fp.elements(out.get("message_text"))
    values = [*found, *in_text, *known]
    out["request_body"] = fp.octets(body, values) if body is not None else out.get("request_body")
    if out.get("message_text") is not None:
        out["message_text"] = fp.octets(text, values)
    path = out.get("path")
    if isinstance(path, str) and any(v and v in unquote(path) for v in values):
        out["path"] = fp.text(unquote(path), values)
    if isinstance(out.get("request_headers"), dict):
        out["request_headers"] = {k: fp.header(v, values) if isinstance(v, str) else v
                                  for k, v in out["request_headers"].items()}
    if out.get("gateway_verdict"):
        out["gateway_verdict"] = json.loads(fp.text(json.dumps(out["gateway_verdict"], ensure_ascii=False), values))
    return out
