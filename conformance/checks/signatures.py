"""Signatures, certificates and reply security (SIG, SEC-04/05/06)."""

from __future__ import annotations

from lxml import etree

from ..case import Check
from ..codec import safexml, xmlsig
from ..codec.envelope import parse_datetime, read_header
from ..codec.namespaces import q
from .core import _parse, reply_result, unreadable


# ------------------------------------------------------------------------------------------
# Signatures and PKI (issue 4)

# Every algorithm Table 8-1 lists in some profile: SIG-01 asks for the Table 8-1 *shape*; which of the
# listed algorithms (SHA-256 only) is SIG-04's question, checked by ``signature_conforms``.
TABLE_8_1_METHODS = (xmlsig.RSA_SHA256, xmlsig.ECDSA_SHA256, xmlsig.RSA_SHA1)
TABLE_8_1_DIGESTS = (xmlsig.SHA256, xmlsig.SHA1)


def signature_shape(exchange, profile) -> Check:
    """SIG-01: one enveloped signature over the whole envelope exactly as Table 8-1 (placement,
    c14n, Reference URI="", transforms, KeyInfo/X509Data), cryptographically valid."""
    _, problem = _parse(exchange.message_text, profile)
    if problem:
        return unreadable(exchange, problem)
    try:
        verified = xmlsig.verify_envelope(exchange.message_text, methods=TABLE_8_1_METHODS, digests=TABLE_8_1_DIGESTS)
    except xmlsig.SignatureProblem as exc:
        return Check(False, f"request #{exchange.seq}: signature not as Table 8-1: {exc.reason}",
                     {"exchange": exchange.seq})
    return Check(True, f"request #{exchange.seq} carries one valid enveloped signature as Table 8-1 "
                       f"({verified.signature_method})",
                 {"signature_method": verified.signature_method, "digest_method": verified.digest_method})


def none_unsigned(requests: list, what: str) -> Check:
    """SEC-03: no request reached the gateway without a ds:Signature (an unsigned fallback)."""
    unsigned = []
    for r in requests:
        try:
            root = etree.fromstring(r.message_text or b"", safexml.hardened_parser())
        except etree.XMLSyntaxError:
            root = None
        if root is None or root.find(f".//{q(xmlsig.DS, 'Signature')}") is None:
            unsigned.append(r.seq)
    if unsigned:
        return Check(False, f"{what}: request(s) #{', #'.join(map(str, unsigned))} carried no XML signature",
                     {"exchanges": unsigned})
    return Check(True, f"{what}: no unsigned request reached the gateway ({len(requests)} request(s) in all)")


# SIG-13's causes, in the words a user interface would use for a key that cannot be opened or used.
SIGNING_FAILURE_WORDS = ("sign", "ký", "key", "khóa", "khoá", "password", "mật khẩu", "PIN", "PKCS")


CUSTOMS_KINDS = ("customs-result", "customs-error")


def shown_as(outcome, kind: str) -> Check:
    """SEC-09: the failure was shown as ``kind`` (a local, transport or security error), and nothing was
    presented as a customs result or a customs rejection."""
    customs = [n for n in outcome.notifications if n.kind in CUSTOMS_KINDS]
    if customs:
        return Check(False, f"the DTS presented {customs[0].kind} {customs[0].code!r} ({customs[0].text!r}) "
                            f"where only a {kind} may be shown")
    if not any(n.kind == kind for n in outcome.notifications):
        kinds = sorted({n.kind for n in outcome.notifications}) or ["nothing"]
        return Check(False, f"no {kind} was shown (the DTS showed {', '.join(kinds)})")
    return Check(True, f"shown as a {kind}, nothing as a customs result")


def shown_as_customs_error(outcome, codes) -> Check:
    """SEC-09: a customs rejection or business error (``codes``) was shown as a customs error, and never as
    a local, transport or security failure (the DTS's own explanation beside it may be of any other kind)."""
    kinds = {n.kind for n in outcome.notifications if n.code in codes or any(c in n.text for c in codes)}
    failures = kinds & {"local-error", "transport-error", "security-error"}
    return Check("customs-error" in kinds and not failures,
                 f"{', '.join(sorted(codes))} shown as {sorted(kinds) or 'nothing'}")


def reply_not_acted_on(outcome, exchange) -> Check:
    """RPL-06, SIG-15: nothing from a reply that failed verification reached the user's view of the
    submission: no reception or declaration number, no channel, no customs state."""
    acted = {k: v for k, v in (("reception number", outcome.reception_number),
                               ("declaration number", outcome.declaration_number),
                               ("channel", outcome.channel), ("status", outcome.status_function)) if v}
    if outcome.state in ("accepted", "cleared", "rejected", "business-error"):
        acted["state"] = outcome.state
    if acted:
        fault = ((exchange.gateway_verdict or {}).get("fault") or {}).get("action", "altered")
        return Check(False, f"the DTS acted on the reply to request #{exchange.seq} ({fault}): "
                            + ", ".join(f"{k} {v}" for k, v in acted.items()), {"shown": acted})
    return Check(True, f"the DTS did not act on the reply to request #{exchange.seq} "
                       f"(state {outcome.state!r}, no reception number)")


def reply_journalled(journal: list[dict], submission: str | None) -> Check:
    """SIG-15, SEC-06: the refused reply is in the journal (a ``reply-received`` or ``reply-discarded``
    event of Table 12-1 for the submission)."""
    events = [e for e in journal if e.get("event") in ("reply-received", "reply-discarded")
              and submission is not None and submission in (e.get("submission"), e.get("messageId"))]
    if events:
        return Check(True, f"the reply was journalled ({', '.join(sorted({e['event'] for e in events}))} "
                           f"for submission {submission})")
    return Check(False, f"the journal holds no reply-received or reply-discarded event for submission {submission}")


def altered_in_transit(exchange, action: str) -> Check:
    """The gateway really altered the reply (the scenario's fault fired): otherwise the case has no stimulus."""
    fault = (exchange.gateway_verdict or {}).get("fault") or {}
    fired = fault.get("action") == action
    return Check(fired, f"the gateway applied {action} to the reply to request #{exchange.seq}"
                 if fired else f"the gateway did not apply {action} to request #{exchange.seq} (fault {fault!r})")


# --- signature and security cases (issue 4 remainder) ---------------------------------------------

def verifies_as_received(exchange, profile) -> Check:
    """SIG-02: the octets that reached the gateway are the octets signed — the message text verifies as
    received (a re-indented, re-encoded or re-prefixed text no longer matches its digest)."""
    _, problem = _parse(exchange.message_text, profile)
    if problem:
        return unreadable(exchange, problem)
    try:
        xmlsig.verify_envelope(exchange.message_text, methods=TABLE_8_1_METHODS, digests=TABLE_8_1_DIGESTS)
    except xmlsig.SignatureProblem as exc:
        return Check(False, f"request #{exchange.seq}: the text as received does not verify — changed after "
                            f"signing: {exc.reason}", {"exchange": exchange.seq})
    return Check(True, f"request #{exchange.seq}: the {len(exchange.message_text)} octets received verify as they are")


def ecdsa_value(exchange, profile) -> Check:
    """SIG-03: an ECDSA-P256-SHA256 signature whose SignatureValue is base64 of r‖s (64 octets, not DER)
    and verifies."""
    import base64
    import binascii

    root, problem = _parse(exchange.message_text, profile)
    if problem:
        return unreadable(exchange, problem)
    method = root.find(f".//{q(xmlsig.DS, 'SignatureMethod')}")
    value = root.find(f".//{q(xmlsig.DS, 'SignatureValue')}")
    if method is None or value is None:
        return Check(False, f"request #{exchange.seq}: no SignatureMethod/SignatureValue")
    if method.get("Algorithm") != xmlsig.ECDSA_SHA256:
        return Check(False, f"request #{exchange.seq}: signed with {method.get('Algorithm')}, not "
                            f"{xmlsig.ECDSA_SHA256}, with the ECDSA P-256 certificate installed")
    try:
        octets = base64.b64decode("".join((value.text or "").split()), validate=True)
    except (binascii.Error, ValueError):
        return Check(False, f"request #{exchange.seq}: SignatureValue is not base64")
    if len(octets) != 64:
        der = " (a DER SEQUENCE)" if octets[:1] == b"\x30" else ""
        return Check(False, f"request #{exchange.seq}: SignatureValue is {len(octets)} octets{der}, not the 64 "
                            "octets of r‖s", {"length": len(octets)})
    try:
        xmlsig.verify_envelope(exchange.message_text, methods=(xmlsig.ECDSA_SHA256,), digests=(xmlsig.SHA256,))
    except xmlsig.SignatureProblem as exc:
        return Check(False, f"request #{exchange.seq}: the r‖s value does not verify: {exc.reason}")
    return Check(True, f"request #{exchange.seq}: ECDSA-P256-SHA256, SignatureValue 64 octets r‖s, verifies")


def reply_acted_on(outcome, exchange, what: str) -> Check:
    """The DTS believed a reply it must accept: it shows the reception number the reply carried."""
    result = reply_result(exchange)
    sent = result.reception_number if result is not None else None
    if sent is not None and outcome.reception_number == sent:
        return Check(True, f"{what}: the DTS accepted the reply and shows reception number {sent}")
    kinds = sorted({n.kind for n in outcome.notifications})
    return Check(False, f"{what}: the DTS did not act on the reply (state {outcome.state!r}, reception number "
                        f"{outcome.reception_number!r}, expected {sent!r}; shown: {kinds})")


def header_value(exchange, path: str, profile) -> str | None:
    root, _ = _parse(exchange.message_text, profile)
    return read_header(root).get(path) if root is not None else None


def not_accessed(exchanges: list, path: str, what: str) -> Check:
    """SEC-05: the DTS opened no resource named in a reply (the gateway logs every request it gets)."""
    hits = [ex for ex in exchanges if ex.path.split("?")[0].startswith(path)]
    if hits:
        return Check(False, f"{what}: the DTS fetched {hits[0].method} {hits[0].path} (request #{hits[0].seq})",
                     {"exchanges": [h.seq for h in hits]})
    return Check(True, f"{what}: no access to {path} (nothing named in the reply was opened)")


JOURNAL_EVENTS = ("request-stored", "attempt", "attempt-outcome", "reply-received", "reply-discarded", "notification")
JOURNAL_KINDS = ("customs-result", "customs-error", "warning", "transport-error", "security-error", "local-error",
                 "info")
# Table 12-1: member -> JSON types allowed (None = null), and whether only notifications carry it.
JOURNAL_MEMBERS = {"time": ((str,), False), "user": ((str,), False), "userId": ((str,), False),
                   "messageId": ((str, type(None)), False), "submission": ((str, type(None)), False),
                   "event": ((str,), False), "kind": ((str,), True), "code": ((str, type(None)), True),
                   "text": ((str,), True)}


def journal_format(events: list[dict]) -> Check:
    """SEC-06: every event has the Table 12-1 members with their JSON types, a known event (and for a
    notification a known kind), a §4.2 DateTime, and the events are in time order."""
    if not events:
        return Check(False, "the journal export is empty")
    previous = None
    for n, ev in enumerate(events, 1):
        name = ev.get("event")
        for member, (types, notification_only) in JOURNAL_MEMBERS.items():
            if notification_only and name != "notification":
                continue
            if member not in ev:
                return Check(False, f"journal event {n} ({name!r}) has no member {member!r}: {sorted(ev)}")
            if not isinstance(ev[member], types):
                return Check(False, f"journal event {n}: {member} is {type(ev[member]).__name__}, not "
                                    f"{'/'.join('null' if t is type(None) else 'string' for t in types)}")
        if name not in JOURNAL_EVENTS:
            return Check(False, f"journal event {n}: unknown event {name!r} (Table 12-1: {', '.join(JOURNAL_EVENTS)})")
        if name == "notification" and ev["kind"] not in JOURNAL_KINDS:
            return Check(False, f"journal event {n}: unknown notification kind {ev['kind']!r}")
        try:
            stamp = parse_datetime(ev["time"])
        except (TypeError, ValueError):
            stamp = None
        if stamp is None or stamp.tzinfo is None:
            return Check(False, f"journal event {n}: time {ev['time']!r} is not a DateTime with its UTC offset")
        if previous is not None and stamp < previous:
            return Check(False, f"journal event {n} ({ev['time']}) is earlier than the one before: not in time order")
        previous = stamp
    return Check(True, f"{len(events)} journal events, each with the Table 12-1 members, in time order")


def journal_covers(events: list[dict], submission: str | None, outcome) -> Check:
    """SEC-06: the lodge's request, its attempts and their outcomes, its replies and every notification
    the user was shown (exact text) are in the journal."""
    mine = [e for e in events if submission is not None and submission in (e.get("submission"), e.get("messageId"))]
    missing = [name for name in ("request-stored", "attempt", "attempt-outcome", "reply-received", "notification")
               if not any(e.get("event") == name for e in mine)]
    if missing:
        return Check(False, f"the journal holds no {', '.join(missing)} event for submission {submission}",
                     {"events": sorted({e.get('event') for e in mine})})
    texts = {e.get("text") for e in events if e.get("event") == "notification"}
    unshown = [n.text for n in outcome.notifications if n.text not in texts]
    if unshown:
        return Check(False, f"{len(unshown)} notification(s) shown to the user are not journalled: {unshown[0]!r}")
    return Check(True, f"request, attempts, outcomes, replies and all {len(outcome.notifications)} notifications "
                       f"of submission {submission} are journalled")


