"""Fault injection: the one place that interprets a scenario rule's action (docs/scenarios.md).

``pipeline.evaluate`` calls three functions, one per moment of an exchange; no evaluation step
ever tests for a fault itself:

* ``before(gw, ex)`` — before Table 7-3 runs: faults that must keep the request from being
  evaluated or recorded (``overload``: TRN-08 forbids recording; ``reset`` before reading) and
  faults on the state the evaluation will see (``expire_otp``).
* ``after(gw, ex, natural)`` — on the natural outcome: ``reply`` replaces it, ``warn`` adds W codes
  to it, a reply owed by an earlier ``duplicate`` is redelivered, ``out_of_order`` asks the query answer to skip ahead.
* ``shape(gw, ex, response)`` — on the response: reply texts altered in transit (malformed,
  schema-breaking, forged, impostor-signed, with unknown elements) and the ``Delivery`` plan the
  server carries out on the socket (delay, hold, reset, stall, truncate, drip).

Altered replies are altered *in transit*: the stored history entry stays the genuine signed text,
so a retransmission or a later query gets it byte-identical (RPL-02) — as when a network or a proxy
corrupts one response.
"""

from __future__ import annotations

import hashlib
import re
import threading
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import rsa
from lxml import etree

from conformance.codec import soap, xmlsig
from conformance.codec.namespaces import DS, ENV, PAY, q
from conformance.codec.safexml import MAX_DEPTH, hardened_parser

from .scenario import DelayAction, FaultAction, ReplyAction, WarnAction

# Faults on the response text, and faults on how the response travels.
TEXT_FAULTS = ("malformed", "break_schema", "forge_signature", "untrusted_signature", "unknown_elements",
               "gateway_certificate", "misroute")
SOCKET_FAULTS = ("hold", "reset", "stall", "truncate", "drip")
FOREIGN_NS = "urn:example:future-extension"


@dataclass(frozen=True)
class Delivery:
    """How the server transmits a response (carried out by ``app``; data, no behaviour)."""

    delay: float = 0.0                 # seconds before anything is sent
    mode: str = "normal"               # normal | hold | reset | stall | truncate | drip
    keep_bytes: int | None = None      # truncate: body octets sent before the connection closes
    chunk_bytes: int = 64              # drip
    interval_s: float = 0.0            # drip
    release: threading.Event | None = None   # hold/stall: set when the case ends
    headers: dict = field(default_factory=dict)


def _fault(ex) -> FaultAction | None:
    action = ex.rule.action if ex.rule else None
    return action if isinstance(action, FaultAction) else None


def before(gw, ex):
    """Faults that pre-empt evaluation. Returns a ``pipeline.Response`` or None (evaluate normally)."""
    from .pipeline import Response, finish, reject     # pipeline imports this module

    fault = _fault(ex)
    if fault is None:
        return None
    if fault.name == "reset" and fault.params["stage"] == "before_read":
        ex.verdict["fault"] = {"action": "reset", "stage": "before_read", "evaluated": False}
        return Response(0, b"", delivery=Delivery(mode="reset"))
    if fault.name == "overload":
        ex.verdict["fault"] = {"action": "overload", "mode": fault.params["mode"], "recorded": False}
        delay = float(fault.params["seconds"])
        if fault.params["mode"] == "503":
            return Response(503, b"", delivery=Delivery(delay=delay,
                                                        headers={"Retry-After": str(fault.params["retry_after"])}))
        if ex.call is None:
            return None                   # not a readable Send: TRN-07 answers it
        response = finish(gw, ex, reject(gw, "E9001"), recordable=False)
        return Response(response.status, response.body, response.reply_text, delivery=Delivery(delay=delay))
    if fault.name == "redirect":                  # REL-04: a 3xx the DTS must not follow
        ex.verdict["fault"] = {"action": "redirect", **fault.params, "evaluated": False}
        return Response(fault.params["status"], b"", delivery=Delivery(headers={"Location": fault.params["location"]}))
    if fault.name == "http_error":                # REL-04 (4xx, 500 soap:Client) or REL-03 (other 5xx)
        ex.verdict["fault"] = {"action": "http_error", **fault.params, "evaluated": False}
        kind = fault.params["fault"]
        body = (soap.fault_body(f"soap:{kind.capitalize()}", f"scenario http_error {fault.params['status']}")
                if kind != "none" else f"HTTP {fault.params['status']} (scenario http_error)".encode())
        return Response(fault.params["status"], body)
    if fault.name == "withhold_mail":          # PAY-04's e-mail is lost (e.g. blocked by the user's filter)
        ex.mail_withheld = True
        ex.verdict["fault"] = {"action": "withhold_mail"}
    if fault.name == "expire_otp":
        order_id = _payment_order_id(ex)
        ex.verdict["fault"] = {"action": "expire_otp", "payment_order_id": order_id,
                               "expired": bool(order_id) and gw.payments.expire_otp(order_id, ex.now.timestamp())}
    return None


def wsdl_served(case) -> bool:
    """TRN-02: whether ``GET ?wsdl`` gets the WSDL in this case (scenario ``"wsdl": "absent"``: 404)."""
    return case.scenario.wsdl != "absent"


def _payment_order_id(ex) -> str | None:
    """The order a request names (702/8, 702/16: ``paymentOrderId``), if readable."""
    if ex.root is None:
        return None
    return ex.root.findtext(f".//{q(PAY, 'paymentOrderId')}")


def after(gw, ex, natural):
    """Faults on the outcome of Table 7-3 (``natural``; None means "accepted")."""
    from .pipeline import Answer, Fault, Replay, _describe_outcome, error

    action = ex.rule.action if ex.rule else None
    if natural is None and ex.queried is not None:
        owed = gw.case.redeliver.pop(ex.queried.message_id, None)
        if owed is not None:                        # an earlier ``duplicate``: the same reply again
            ex.verdict["fault"] = {"action": "duplicate", "redelivered": True}
            return Replay(owed)
    if isinstance(action, DelayAction):
        ex.delay = action.seconds
        return natural
    if isinstance(action, WarnAction):              # RPL-15: W codes on the reply (never in a 271, §5.3)
        ex.warnings.extend(error(gw, w.code, w.field, w.description) for w in action.warnings)
        ex.verdict["fault"] = {"action": "warn", "codes": [w.code for w in action.warnings]}
        return natural
    if isinstance(action, ReplyAction):
        if isinstance(natural, Fault) and natural.code == "soap:Server":
            return natural                          # an internal error is reported, never masked
        ex.verdict["natural_outcome"] = _describe_outcome(natural)
        return Answer(action.function, tuple(error(gw, e.code, e.field, e.description) for e in action.errors))
    if isinstance(action, FaultAction) and action.name == "out_of_order" and natural is None and ex.queried:
        ex.skip_ahead = 1
    return natural


def shape(gw, ex, response):
    """Alter the response text and choose its delivery, per the rule's fault (if any)."""
    fault = _fault(ex)
    if ex.delay:
        response.delivery = Delivery(delay=ex.delay)
        _drop_parsed(ex)
    if fault is None:
        return response
    name, params = fault.name, fault.params
    if name == "duplicate" and ex.queried is not None and response.reply_text:
        gw.case.redeliver[ex.queried.message_id] = response.reply_text
        ex.verdict["fault"] = {"action": "duplicate", "owed_to_next_query": True}
    if name in TEXT_FAULTS and response.reply_text:
        altered = _alter(gw, name, params, response.reply_text)
        ex.verdict["fault"] = {"action": name, **params, "genuine_reply_sha256": _sha256(response.reply_text)}
        response.body = soap.send_response_body(altered) if name != "malformed" else _raw_send_response(altered)
        response.reply_text = altered
    if name in SOCKET_FAULTS and not (name == "reset" and params["stage"] == "before_read"):
        keep = params.get("keep_bytes")
        response.delivery = Delivery(
            mode=name, keep_bytes=len(response.body) // 2 if name == "truncate" and keep is None else keep,
            chunk_bytes=params.get("chunk_bytes", 64), interval_s=params.get("interval_s", 0.0),
            release=gw.case.released)
        ex.verdict["fault"] = {"action": name, **params}
        if name in ("hold", "stall"):
            _drop_parsed(ex)
    return response


def _drop_parsed(ex) -> None:
    """A response that waits (delay, hold, stall) has been built: what the checks parsed and computed
    (the message tree, the signature and schema results) is not needed by the row or the delivery, and
    is let go while it waits — thousands of delayed requests each kept ≈60 KB of it (issue 14)."""
    ex.root = ex.beyond = ex.signature = None
    ex._once.clear()


# ------------------------------------------------------------------------------------------
# Reply texts altered in transit


def _alter(gw, name: str, params: dict, text: bytes) -> bytes:
    if name == "malformed" and params["variant"] in ("too_large", "too_deep"):
        return _oversized(gw, params["variant"], text)
    if name == "malformed":
        return _malformed(params["variant"], text, xxe_url=f"{gw.base_url}{XXE_PATH}")
    if name == "forge_signature":
        return _forge(text, gw.case.rng)
    if name == "misroute" and params["field"] == "placeholders":
        return _placeholder_271(gw)
    root = etree.fromstring(text, hardened_parser())
    root.remove(root.find(q(DS, "Signature")))
    signer = gw.replies.signer
    if name == "break_schema":
        result = root.find(f".//{q(ENV, 'Result')}")
        result.remove(result.find(q(ENV, "sequence")))          # Table 7-1: sequence is mandatory
    elif name == "unknown_elements":
        _add_unknown_elements(root)
    elif name == "untrusted_signature":
        signer = impostor(signer)
    elif name == "gateway_certificate":
        signer = gw.pki.gateway_signer_variant(params["certificate"]).signer()
    elif name == "misroute":
        _misroute(root, params["field"])
    return xmlsig.sign_envelope(root, signer, signature_method=xmlsig.RSA_SHA256, digest_method=xmlsig.SHA256)


def _malformed(variant: str, text: bytes, *, xxe_url: str) -> bytes:
    """RPL-07's malformed replies: cut short, carrying a DOCTYPE (with an external DTD and an external
    entity, both on the gateway's own ``XXE_PATH``: any access is an exchange in the evidence, SEC-05),
    not XML."""
    if variant == "truncated":
        return text[: len(text) // 2]
    if variant == "doctype":
        decl, _, rest = text.partition(b"?>")
        url = xxe_url.encode("ascii")
        rest = rest.replace(b"<Result>", b"<Result>&x;", 1)
        return (decl + b'?><!DOCTYPE Envelope SYSTEM "' + url + b'/dtd" [<!ENTITY x SYSTEM "' + url
                + b'/entity">]>' + rest)
    return b"503 Service Temporarily Unavailable - this is not XML"


# SEC-05: where the external DTD and entity of a ``doctype`` reply point (a path of the gateway itself).
XXE_PATH = "/ecdi-xxe"


def _oversized(gw, variant: str, text: bytes) -> bytes:
    """SEC-05 limits: a validly signed reply, well-formed and schema-valid but for unknown elements
    (RPL-11), that is larger than ``S_max`` (``too_large``) or nests deeper than 64 (``too_deep``)."""
    root = etree.fromstring(text, hardened_parser())
    root.remove(root.find(q(DS, "Signature")))
    result = root.find(f".//{q(ENV, 'Result')}")
    ext = etree.SubElement(result, q(FOREIGN_NS, "Extension"), nsmap={"x": FOREIGN_NS})
    if variant == "too_large":
        ext.text = "x" * (int(gw.default_profile.params["S_max"]) + 1)
    else:
        depth = len(list(result.iterancestors())) + 2          # Extension's depth, the root being 1
        node = ext
        while depth <= MAX_DEPTH:                # SEC-05's limit (safexml), the root Envelope at depth 1
            node = etree.SubElement(node, q(FOREIGN_NS, "n"))
            depth += 1
    return xmlsig.sign_envelope(root, gw.replies.signer, signature_method=xmlsig.RSA_SHA256,
                                digest_method=xmlsig.SHA256)


def _placeholder_271(gw) -> bytes:
    """SEC-04: a 271 X0001 whose header holds every Table 4-3 placeholder (as for an unreadable request),
    validly signed: a DTS must take it as the synchronous answer to its request, not as misrouted."""
    from .pipeline import _result, error

    return gw.replies.build({}, "271", _result([error(gw, "X0001")], sequence=0))


_MISROUTED = {"reference": "Subject/reference", "to_identity": "To/identity", "type": "Subject/type",
              "version": "Reference/version"}


def _misroute(root, field_: str) -> None:
    """SEC-04: one header field no longer that of "the request" (ENV-10); the reply is re-signed by the
    genuine gateway key, so only the DTS's correlation check can tell."""
    group, leaf = _MISROUTED[field_].split("/")
    el = root.find(f"{q(ENV, 'Header')}/{q(ENV, group)}/{q(ENV, leaf)}")
    value = el.text or ""
    if field_ == "reference":
        from conformance.codec.envelope import new_message_id
        el.text = new_message_id()
    elif field_ == "to_identity":
        el.text = "0109999999" if value != "0109999999" else "0100000001"
    elif field_ == "type":
        el.text = {"929": "930", "930": "929", "701": "702", "702": "701"}.get(value, "929")
    else:
        el.text = "1.1" if value == "1.0" else "1.0"


def _raw_send_response(text: bytes) -> bytes:
    """A SendResponse whose SendResult holds ``text`` escaped, even when ``text`` is not UTF-8 XML."""
    escaped = text.decode("utf-8", "replace").replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return soap.send_response_body(b"X").replace(b">X<", f">{escaped}<".encode("utf-8"), 1)


_DIGIT_IN_RESULT = re.compile(rb">([^<]*[0-9][^<]*)<")


def _forge(text: bytes, rng) -> bytes:
    """Change one digit of a text node inside ``e:Result`` (well-formed and schema-valid still; the
    digest no longer matches — SIG-15's "one character altered"). The digit is chosen by the case's
    seeded RNG."""
    start = text.index(b"<Result")
    end = text.index(b"</Result>")
    positions = [m.start(1) + i for m in _DIGIT_IN_RESULT.finditer(text, start, end)
                 for i, ch in enumerate(m.group(1)) if 0x30 <= ch <= 0x39]
    pos = positions[rng.randrange(len(positions))]
    digit = text[pos] - 0x30
    return text[:pos] + bytes([0x30 + (digit + 1) % 10]) + text[pos + 1:]


def _add_unknown_elements(root) -> None:
    """RPL-11: elements and attributes a DTS does not know, in a foreign and in the ECDI namespace."""
    result = root.find(f".//{q(ENV, 'Result')}")
    ext = etree.SubElement(result, q(FOREIGN_NS, "Extension"), nsmap={"x": FOREIGN_NS})
    ext.set(q(FOREIGN_NS, "version"), "2")
    etree.SubElement(ext, q(FOREIGN_NS, "note")).text = "phần mở rộng chưa biết"
    etree.SubElement(result, q(ENV, "futureField")).text = "42"
    root.find(q(ENV, "Header")).set(q(FOREIGN_NS, "hint"), "ignore-me")


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


_IMPOSTORS: dict[bytes, xmlsig.Signer] = {}


def impostor(genuine: xmlsig.Signer) -> xmlsig.Signer:
    """A self-signed look-alike of the gateway signing certificate (same subject, another key):
    what an attacker without the customs CA's key can make. Made once per process."""
    cert = genuine.chain[0]
    fingerprint = cert.fingerprint(hashes.SHA256())
    if fingerprint not in _IMPOSTORS:
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        now = datetime.now(timezone.utc)
        forged = (x509.CertificateBuilder().subject_name(cert.subject).issuer_name(cert.subject)
                  .public_key(key.public_key()).serial_number(x509.random_serial_number())
                  .not_valid_before(now - timedelta(days=1)).not_valid_after(now + timedelta(days=365))
                  .add_extension(x509.KeyUsage(True, False, False, False, False, False, False, False, False), True)
                  .sign(key, hashes.SHA256()))
        _IMPOSTORS[fingerprint] = xmlsig.Signer(key, [forged])
    return _IMPOSTORS[fingerprint]


__all__ = ["Delivery", "after", "before", "impostor", "shape"]
