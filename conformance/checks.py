"""Atomic checks over observed exchanges and DTS outcomes.

Each returns a ``Check`` and decides nothing else: the case that calls it names the requirement
and the severity. Checks never raise on bad input (a DTS may send anything); they report it.
"""

from __future__ import annotations

import re
import uuid

from lxml import etree

from .case import Check
from .codec import certs, lexical, safexml, soap, xmlsig
from .codec.envelope import Result, content_child, parse_datetime, read_header
from .codec.namespaces import ENV, q


def _parse(text: bytes | None, profile):
    if text is None:
        return None, "no message text could be read from the request"
    try:
        return safexml.parse_message_text(text, max_bytes=profile.params["S_max"]), None
    except safexml.XmlRefused as exc:
        return None, f"{exc.code}: {exc.reason}"


def soap_headers(exchange) -> Check:
    """TRN-03: exact Content-Type and the double-quoted SOAPAction."""
    headers = {k.lower(): v for k, v in exchange.request_headers.items()}
    problems = []
    if headers.get("soapaction") != soap.SOAP_ACTION:
        problems.append(f"SOAPAction is {headers.get('soapaction')!r}, expected {soap.SOAP_ACTION!r}")
    if not soap.media_type_ok(headers.get("content-type")):
        problems.append(f"Content-Type is {headers.get('content-type')!r}, expected {soap.CONTENT_TYPE!r}")
    if problems:
        return Check(False, f"request #{exchange.seq}: " + "; ".join(problems))
    return Check(True, f"request #{exchange.seq} carries the required Content-Type and SOAPAction")


def send_body(exchange) -> Check:
    """TRN-03/TRN-04: one svc:Send with MessageXML, UserId, Password and no soap:Header."""
    try:
        _, has_header = soap.parse_send_request(exchange.request_body)
    except soap.SoapFault as exc:
        return Check(False, f"request #{exchange.seq} is not a well-formed Send: {exc.faultstring}")
    if has_header:
        return Check(False, f"request #{exchange.seq}: the SOAP envelope carries a soap:Header")
    return Check(True, f"request #{exchange.seq} is one svc:Send with MessageXML, UserId, Password")


def encoding_rules(exchange, profile) -> Check:
    """TXT-01/TXT-02: UTF-8 without BOM, XML 1.0 declaration if any, no DOCTYPE, well-formed."""
    _, problem = _parse(exchange.message_text, profile)
    if problem:
        return Check(False, f"request #{exchange.seq}: {problem}", {"exchange": exchange.seq})
    return Check(True, f"request #{exchange.seq} is well-formed XML 1.0 in UTF-8 without BOM or DOCTYPE")


def creation_time(exchange, profile, tolerance_s: float) -> Check:
    """ENV-03: ``createMessageIssue`` carries a UTC offset and is the clock time at signing.

    Signing precedes the first transmission, so the value must lie no later than the gateway's
    reception (plus the tolerance) and not far before it: the DTS SHOULD keep its clock within 60 s
    of UTC, and a retransmission may come up to the whole send operation later.
    """
    root, problem = _parse(exchange.message_text, profile)
    if problem:
        return Check(False, f"request #{exchange.seq}: {problem}")
    text = read_header(root).get("SendApplication/createMessageIssue") or ""
    try:
        stamp = parse_datetime(text)
    except ValueError:
        stamp = None
    if stamp is None or stamp.tzinfo is None:
        return Check(False, f"request #{exchange.seq}: createMessageIssue {text!r} has no UTC offset")
    skew = stamp.timestamp() - exchange.received_at
    if skew > 60 + tolerance_s:
        return Check(False, f"request #{exchange.seq}: createMessageIssue {text} is {skew:.0f} s after reception")
    return Check(True, f"request #{exchange.seq}: createMessageIssue {text} ({-skew:.1f} s before reception)")


def _schema_check(exchange, profile, what: str, validate) -> Check:
    root, problem = _parse(exchange.message_text, profile)
    if problem:
        return Check(False, f"request #{exchange.seq}: {problem}", {"exchange": exchange.seq})
    issues = list(validate(root))
    if issues:
        first = issues[0]
        return Check(
            False,
            f"request #{exchange.seq}: {what} does not conform to {profile.id}: {first.path}: {first.reason}",
            {"exchange": exchange.seq, "issues": [f"{i.path}: {i.reason}" for i in issues[:20]]},
        )
    return Check(True, f"request #{exchange.seq}: {what} validates against {profile.id}")


def envelope_validates(exchange, profile) -> Check:
    """ENV-01 (with TXT-03/05 lexical rules): header structure and types, no comments, PIs or non-NFC text."""
    def validate(root):
        issues = list(profile.validate_envelope(root, "request"))
        lex = lexical.lexical_problem(root, profile.repeatable)
        return issues + ([lex] if lex else [])

    return _schema_check(exchange, profile, "the envelope", validate)


def content_validates(exchange, profile) -> Check:
    """DOC-01: the Content document follows Tables 6-1 to 6-4 (structure and lexical rules)."""
    return _schema_check(exchange, profile, "the content document", profile.validate_content)


def signature_conforms(exchange, profile) -> Check:
    """SIG-01, SIG-04: exactly Table 8-1 with SHA-256, cryptographically valid, signer's tax code."""
    root, problem = _parse(exchange.message_text, profile)
    if problem:
        return Check(False, f"request #{exchange.seq}: {problem}", {"exchange": exchange.seq})
    try:
        verified = xmlsig.verify_envelope(
            exchange.message_text,
            methods=(xmlsig.RSA_SHA256, xmlsig.ECDSA_SHA256),
            digests=(xmlsig.SHA256,),
        )
    except xmlsig.SignatureProblem as exc:
        return Check(False, f"request #{exchange.seq}: signature not per Table 8-1 with SHA-256: {exc.reason}",
                     {"exchange": exchange.seq})
    from_identity = read_header(root).get("From/identity")
    tax = certs.tax_code_of(verified.signer)
    if tax is None or not certs.tax_code_matches(tax, from_identity or ""):
        return Check(False, f"request #{exchange.seq}: signer certificate tax code {tax!r} does not cover "
                            f"From/identity {from_identity!r}", {"exchange": exchange.seq})
    return Check(True, f"request #{exchange.seq} signed {verified.signature_method} / {verified.digest_method} "
                       f"by a certificate for {tax}",
                 {"signature_method": verified.signature_method, "digest_method": verified.digest_method})


def reply_result(exchange) -> Result | None:
    """The ``e:Result`` of the reply the gateway sent in an exchange (the gateway's text is trusted)."""
    if not exchange.reply_text:
        return None
    root = etree.fromstring(exchange.reply_text, safexml.hardened_parser())
    child = content_child(root)
    return Result.from_element(child) if child is not None and child.tag == q(ENV, "Result") else None


def gateway_accepted(exchange) -> Check:
    """The gateway recorded the submission: its own schema and signature verdicts held and it answered 29."""
    if exchange.reply_function == "29":
        return Check(True, f"the gateway verified request #{exchange.seq} and answered 29 (receipt)")
    codes = ", ".join(exchange.reply_codes) or "no codes"
    return Check(False, f"the gateway answered request #{exchange.seq} with {exchange.reply_function} ({codes})",
                 {"gateway_verdict": exchange.gateway_verdict})


def same_value(label: str, shown: str | None, sent: str | None) -> Check:
    if sent is not None and shown == sent:
        return Check(True, f"the DTS showed the {label} {sent} that the gateway sent")
    return Check(False, f"the DTS showed {label} {shown!r}; the gateway sent {sent!r}")


def outcome_state(outcome, expected: set[str]) -> Check:
    if outcome.state in expected:
        return Check(True, f"the DTS reported the outcome as {outcome.state}")
    why = f" ({outcome.raised})" if outcome.raised else ""
    return Check(False, f"the DTS reported {outcome.state!r}{why}, expected one of {sorted(expected)}")


def errors_shown_verbatim(outcome, journal: list[dict], sent: list[dict]) -> Check:
    """RPL-14: every Error shown with code, field and Vietnamese description unchanged."""
    shown = {(e.code, e.field, e.description) for e in outcome.errors}
    texts = [ev.get("text", "") for ev in journal if ev.get("event") == "notification"]
    missing = []
    for err in sent:
        key = (err["code"], err["field"], err["description"])
        if key not in shown:
            missing.append(f"{err['code']} not reported verbatim to the user")
        elif not any(err["description"] in t and err["code"] in t for t in texts):
            missing.append(f"{err['code']}: description not found verbatim in the journalled notifications")
    if missing:
        return Check(False, "; ".join(missing), {"shown": sorted(shown), "sent": sent})
    return Check(True, f"all {len(sent)} error(s) reached the user verbatim (code, field, description)")


def retransmitted(attempts: list) -> Check:
    if len(attempts) >= 2:
        return Check(True, f"the DTS made {len(attempts)} attempts")
    return Check(False, f"the DTS made {len(attempts)} attempt(s); a retransmission was required")


def byte_identical(attempts: list) -> Check:
    """REL-05: every retransmission carries the octets of the first attempt."""
    first = attempts[0].message_text
    for a in attempts[1:]:
        if a.message_text != first:
            if a.message_id != attempts[0].message_id:
                return Check(False, f"attempt #{a.seq} carries a new messageId {a.message_id} "
                                    f"(first: {attempts[0].message_id})")
            return Check(False, f"attempt #{a.seq} has the same messageId but different octets "
                                f"(re-signed or re-serialised)")
    return Check(True, f"all {len(attempts)} attempts carry the byte-identical message text")


def waited_at_least(earlier, later, seconds: float, tolerance: float, what: str) -> Check:
    gap = later.received_at - earlier.received_at
    if gap + tolerance >= seconds:
        return Check(True, f"{what}: {gap:.3f} s between attempts (at least {seconds:.3f} s required)")
    return Check(False, f"{what}: only {gap:.3f} s between attempts, at least {seconds:.3f} s required",
                 {"gap_s": gap, "required_s": seconds})


# The specific causes SIG-12 requires the user to be told, in the words a Vietnamese or English
# user interface would use. A product may phrase them otherwise; these are the words customs reads for.
CERTIFICATE_CAUSE_WORDS = {
    "expired": ("expired", "hết hạn", "hết hiệu lực"),
    "not yet valid": ("not yet valid", "chưa có hiệu lực", "chưa đến"),
    "revoked": ("revoked", "thu hồi"),
    "wrong tax code": ("tax code", "mã số thuế", "MST"),
    "unsuitable key": ("key", "khóa", "khoá"),
}


def nothing_sent(requests: list, what: str) -> Check:
    if not requests:
        return Check(True, f"{what}: the gateway received nothing")
    return Check(False, f"{what}: the gateway received {len(requests)} request(s)",
                 {"exchanges": [r.seq for r in requests]})


def local_error_says(outcome, words, what: str) -> Check:
    """SIG-12/SIG-13/SEC-09: a local error (not a customs result) whose text says ``what`` — one of
    ``words`` appears in it (case-insensitive)."""
    local = [n for n in outcome.notifications if n.kind == "local-error"]
    if not local:
        return Check(False, f"no local error was shown (state {outcome.state!r}); the user must learn {what}")
    if any(w.lower() in n.text.lower() for n in local for w in words):
        return Check(True, f"the user was told {what}: {local[0].text!r}")
    return Check(False, f"the local error does not say {what}: {local[0].text!r}")


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
        return Check(False, f"request #{exchange.seq}: {problem}", {"exchange": exchange.seq})
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


# --- reliability and reply handling (issue 6) ------------------------------------------------------

def gap_after_response(earlier, later) -> float:
    """Seconds from the end of an attempt (the gateway's last octet or reset) to the next one's arrival.

    REL-06 counts a backoff "from the end of the failed attempt"; the gateway's ``responded_at`` is no
    later than the DTS's own end of attempt, so the gap never understates the DTS's wait.
    """
    end = earlier.responded_at if earlier.responded_at is not None else earlier.received_at
    return later.received_at - end


def waited_after_response(earlier, later, seconds: float, tolerance: float, what: str) -> Check:
    """A lower bound on the wait between the end of ``earlier`` and the start of ``later``."""
    gap = gap_after_response(earlier, later)
    if gap + tolerance >= seconds:
        return Check(True, f"{what}: waited {gap:.3f} s after request #{earlier.seq} ended "
                           f"(at least {seconds:.3f} s required)", {"gap_s": gap, "required_s": seconds})
    return Check(False, f"{what}: request #{later.seq} came {gap:.3f} s after request #{earlier.seq} ended, "
                        f"at least {seconds:.3f} s required", {"gap_s": gap, "required_s": seconds})


def after_sequences(queries: list) -> list[int | None]:
    """The ``afterSequence`` of each query's message text (None where it cannot be read)."""
    out = []
    for ex in queries:
        try:
            root = etree.fromstring(ex.message_text, safexml.hardened_parser())
            child = content_child(root)
            text = child.findtext(q(ENV, "afterSequence")) if child is not None else None
            out.append(int(text) if text is not None else None)
        except (etree.XMLSyntaxError, ValueError, TypeError):
            out.append(None)
    return out


# Words by which a user learns that a result is not known yet and must be fetched later (REL-07,
# REL-14), in an English or Vietnamese user interface.
UNKNOWN_OUTCOME_WORDS = ("unknown", "not known", "chưa rõ", "không rõ", "chưa xác định")
FETCH_LATER_WORDS = ("later", "query it", "manual query", "sau", "tra cứu lại", "truy vấn lại")


def told_user(outcome, words, what: str, *, kinds: set[str] | None = None) -> Check:
    """A notification shown to the user contains one of ``words`` (case-insensitive)."""
    shown = [n for n in outcome.notifications if kinds is None or n.kind in kinds]
    for n in shown:
        if any(w.lower() in n.text.lower() for w in words):
            return Check(True, f"the user was told {what}: {n.text!r}")
    texts = [n.text for n in shown][-3:]
    return Check(False, f"the user was not told {what}; last notifications: {texts}")


def no_overlap(exchanges: list) -> Check:
    """REL-13: each query starts only after the previous one's response ended."""
    for a, b in zip(exchanges, exchanges[1:]):
        if a.responded_at is None or b.received_at < a.responded_at:
            return Check(False, f"request #{b.seq} started while request #{a.seq} was still in progress")
    return Check(True, f"{len(exchanges)} queries, none overlapping another")


# --- signature and security cases (issue 4 remainder) ---------------------------------------------

def verifies_as_received(exchange, profile) -> Check:
    """SIG-02: the octets that reached the gateway are the octets signed — the message text verifies as
    received (a re-indented, re-encoded or re-prefixed text no longer matches its digest)."""
    _, problem = _parse(exchange.message_text, profile)
    if problem:
        return Check(False, f"request #{exchange.seq}: {problem}", {"exchange": exchange.seq})
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
        return Check(False, f"request #{exchange.seq}: {problem}")
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


# --- envelope header (issue 6): ENV-02, ENV-04..ENV-08, CAP-01 ----------------------------------------

_GUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
_BUSINESS_REF = re.compile(r"[A-Za-z0-9][A-Za-z0-9._/-]{0,34}")
NEW_DOCUMENT_FUNCTIONS = ("8", "5", "1")      # ENV-05: functions whose reference is a business reference


def request_header(exchange, profile):
    """The header fields a request carried (``Header``), or None where its message text cannot be read."""
    root, _ = _parse(exchange.message_text, profile)
    return read_header(root) if root is not None else None


def _headers(exchanges, profile) -> list[tuple]:
    """(exchange, header) of every request whose message text can be read."""
    out = []
    for ex in exchanges:
        header = request_header(ex, profile)
        if header is not None:
            out.append((ex, header))
    return out


def message_ids_random_v4(exchanges, profile, what: str) -> Check:
    """ENV-02: every messageId is a random (version 4, RFC 9562 variant) UUID in the GUID form of §4.2."""
    bad = []
    for ex, header in _headers(exchanges, profile):
        mid = header.get("Reference/messageId") or ""
        ok = bool(_GUID.fullmatch(mid)) and mid[14] == "4" and mid[19] in "89ab"
        if not ok:
            bad.append(f"#{ex.seq}: {mid!r}")
    if bad:
        return Check(False, f"{what}: messageId not a version-4 UUID in request(s) {', '.join(bad[:5])}",
                     {"offenders": bad[:50]})
    return Check(True, f"{what}: every messageId is a version-4 UUID ({len(exchanges)} request(s))")


def message_ids_never_reused(exchanges, profile, what: str) -> Check:
    """ENV-02: no messageId was used for two different message texts (a retransmission repeats the octets)."""
    texts: dict[str, dict[bytes, int]] = {}
    for ex, header in _headers(exchanges, profile):
        mid = header.get("Reference/messageId")
        if mid:
            texts.setdefault(mid, {}).setdefault(ex.message_text, ex.seq)
    reused = {mid: sorted(seen.values()) for mid, seen in texts.items() if len(seen) > 1}
    if reused:
        mid, seqs = next(iter(reused.items()))
        return Check(False, f"{what}: messageId {mid} was used for {len(seqs)} different message texts "
                            f"(requests #{', #'.join(map(str, seqs))})",
                     {"reused": {k: v for k, v in list(reused.items())[:20]}})
    return Check(True, f"{what}: {len(texts)} messageId(s) over {len(exchanges)} request(s), none used for "
                       f"two different message texts", {"message_ids": len(texts), "requests": len(exchanges)})


def table_4_2_rows(exchanges, profile) -> Check:
    """ENV-04: procedureType, Subject/type, Subject/function and the Content child form a row of Table 4-2,
    with procedureType per Table 4-1."""
    problems = []
    for ex in exchanges:
        root, problem = _parse(ex.message_text, profile)
        if problem:
            problems.append(f"#{ex.seq}: {problem}")
            continue
        header = read_header(root)
        type_, function = header.get("Subject/type"), header.get("Subject/function")
        row = profile.permitted_requests.get((type_, function))
        child = content_child(root)
        if row is None:
            problems.append(f"#{ex.seq}: {type_}/{function} is no row of Table 4-2")
        elif header.get("procedureType") != row.procedure_type:
            problems.append(f"#{ex.seq}: procedureType {header.get('procedureType')!r} with {type_}/{function}, "
                            f"Table 4-1 requires {row.procedure_type}")
        elif child is None or child.tag != row.content:
            found = etree.QName(child).localname if child is not None else "no single child"
            problems.append(f"#{ex.seq}: Content holds {found} with {type_}/{function}, Table 4-2 requires "
                            f"{etree.QName(row.content).localname}")
    if problems:
        return Check(False, "requests not forming a row of Table 4-2: " + "; ".join(problems[:3]),
                     {"problems": problems[:50]})
    rows = sorted({f"{ex.type}/{ex.function}" for ex in exchanges})
    return Check(True, f"{len(exchanges)} request(s) form rows of Table 4-2 ({', '.join(rows)})")


def header_values(exchanges, profile, expected: dict, what: str) -> Check:
    """Every request carries ``expected[path]`` at each header path (None: the element is absent)."""
    problems = []
    for ex, header in _headers(exchanges, profile):
        for path, value in expected.items():
            sent = header.get(path)
            if sent != value:
                shown = "absent" if sent is None else repr(sent)
                problems.append(f"#{ex.seq}: {path} {shown}, expected " + ("absent" if value is None else repr(value)))
    if not exchanges:
        return Check(False, f"{what}: no request to inspect")
    if problems:
        return Check(False, f"{what}: " + "; ".join(problems[:3]), {"problems": problems[:50]})
    shown = ", ".join(f"{p} {'absent' if v is None else v}" for p, v in expected.items())
    return Check(True, f"{what}: {len(exchanges)} request(s) carry {shown}")


def one_installation_id(exchanges, profile) -> Check:
    """ENV-07: Subject/sendApplication is one UUID in every request (restarts included)."""
    seen: dict[str, int] = {}
    for ex, header in _headers(exchanges, profile):
        seen.setdefault(header.get("Subject/sendApplication") or "", ex.seq)
    if len(seen) != 1:
        listed = ", ".join(f"{v!r} (first #{s})" for v, s in seen.items())
        return Check(False, f"Subject/sendApplication changed: {listed or 'none readable'}", {"values": list(seen)})
    value = next(iter(seen))
    try:
        is_uuid = len(value) == 36 and str(uuid.UUID(value)) == value.lower()
    except ValueError:
        is_uuid = False
    if not is_uuid:
        return Check(False, f"Subject/sendApplication {value!r} is not a UUID")
    return Check(True, f"Subject/sendApplication is the same UUID {value} in all {len(exchanges)} request(s)")


def business_references_fresh(exchanges, profile) -> Check:
    """ENV-05: each new business document (functions 8, 5, 1: a new messageId) has a reference not used
    before for its From/identity, type and function. A corrected document may keep the reference of one
    answered 271, or 272/273 as entry 1 (the synchronous reply)."""
    first: dict[str, tuple] = {}          # messageId -> (exchange, header), first reception
    refused: set[str] = set()             # messageIds answered 271, 272 or 273 synchronously
    for ex, header in _headers(exchanges, profile):
        if header.get("Subject/function") not in NEW_DOCUMENT_FUNCTIONS:
            continue
        mid = header.get("Reference/messageId")
        first.setdefault(mid, (ex, header))
        if ex.reply_function in ("271", "272", "273"):
            refused.add(mid)
    used: dict[tuple, list[str]] = {}
    problems = []
    for mid, (ex, header) in first.items():
        key = (header.get("From/identity"), header.get("Subject/type"), header.get("Subject/function"),
               header.get("Subject/reference"))
        earlier = used.setdefault(key, [])
        standing = [(m, seq) for m, seq in earlier if m not in refused]
        if standing:
            problems.append(f"#{ex.seq}: reference {key[3]!r} ({key[1]}/{key[2]}) already used by request "
                            f"#{standing[0][1]} (messageId {standing[0][0]})")
        earlier.append((mid, ex.seq))
    if not first:
        return Check(False, "no new business document (function 8, 5 or 1) was sent")
    if problems:
        return Check(False, "business reference reused for a new document: " + "; ".join(problems[:3]),
                     {"problems": problems})
    return Check(True, f"{len(first)} new document(s), each with a business reference not used before "
                       f"({', '.join(sorted(k[3] or '' for k in used))})")


def subject_references(exchanges, profile) -> Check:
    """ENV-05 first sentence, Table 4-2: a BusinessRef for functions 8, 5, 1; for a query (13) the messageId of
    a submission of the same type sent before it; for 16 the OtpRequest's paymentOrderId."""
    sent: dict[str, str] = {}            # messageId -> type of the submissions seen so far
    problems = []
    for ex in exchanges:
        root, problem = _parse(ex.message_text, profile)
        if problem:
            continue
        header = read_header(root)
        type_, function, ref = header.get("Subject/type"), header.get("Subject/function"), header.get("Subject/reference")
        if function in NEW_DOCUMENT_FUNCTIONS and not _BUSINESS_REF.fullmatch(ref or ""):
            problems.append(f"#{ex.seq}: {type_}/{function} reference {ref!r} is not a BusinessRef")
        elif function == "13" and sent.get(ref) != type_:
            problems.append(f"#{ex.seq}: query reference {ref!r} is no {type_} submission sent before it")
        elif function == "16":
            from .codec.namespaces import PAY
            child = content_child(root)
            order = child.findtext(q(PAY, "paymentOrderId")) if child is not None else None
            if ref != order:
                problems.append(f"#{ex.seq}: 702/16 reference {ref!r} differs from paymentOrderId {order!r}")
        if function != "13":
            sent.setdefault(header.get("Reference/messageId"), type_)
    if problems:
        return Check(False, "Subject/reference not as Table 4-2: " + "; ".join(problems[:3]), {"problems": problems})
    return Check(True, f"Subject/reference as Table 4-2 in {len(exchanges)} request(s)")


# ------------------------------------------------------------------------------------------
# Transport (issue 6): TRN-02, TRN-05, TRN-09, TRN-10, TRN-11, TRN-14, REL-04

from .codec.namespaces import SVC  # noqa: E402

# Words by which a user learns that the failure is a TLS / certificate security error (TRN-10).
TLS_ERROR_WORDS = ("TLS", "SSL", "certificate", "chứng thư", "chứng chỉ", "bảo mật")
CREDENTIAL_HEADERS = ("authorization", "proxy-authorization", "cookie", "cookie2")


def no_http_at_probe(connections: list[dict], what: str) -> Check:
    """TRN-10 / TRN-09: not one octet of HTTP reached the TLS probe (the DTS aborted before sending)."""
    sent = [c for c in connections if c["http_bytes"]]
    if sent:
        c = sent[0]
        return Check(False, f"{what}: the DTS sent {c['http_bytes']} octet(s) of HTTP over connection #{c['seq']} "
                            f"({c['request_line']!r}, handshake {c['handshake']} {c['protocol'] or ''})",
                     {"connections": connections})
    return Check(True, f"{what}: {len(connections)} connection(s), no HTTP octet received",
                 {"connections": connections})


def probe_reached(connections: list[dict], what: str) -> Check:
    if connections:
        return Check(True, f"{what}: the DTS opened {len(connections)} connection(s) to the probe")
    return Check(False, f"{what}: the DTS never connected to the probe, so the refusal was not observed")


def no_session(connections: list[dict], what: str) -> Check:
    """TRN-09: no TLS session was (or, for a suite this OpenSSL cannot offer, would have been) established."""
    made = [c for c in connections if c["handshake"] in ("ok", "would-succeed")]
    if made:
        c = made[0]
        return Check(False, f"{what}: a session was established on connection #{c['seq']} "
                            f"({c['protocol'] or ''} {c['cipher'] or ''}{'; ' + c['error'] if c['error'] else ''})",
                     {"connections": connections})
    return Check(True, f"{what}: no TLS session established ({len(connections)} handshake(s) refused)")


def no_forbidden_offer(connections: list[dict], what: str) -> Check:
    """TRN-09: the ClientHellos offered no SSL 3.0 / TLS 1.0 / 1.1-only session and no forbidden suite."""
    for c in connections:
        if c["forbidden_offered"]:
            return Check(False, f"{what}: connection #{c['seq']} offered forbidden suite(s) "
                                f"{', '.join(c['forbidden_offered'][:3])}", {"connections": connections})
        if c["protocol"] in ("SSLv3", "TLSv1", "TLSv1.1"):
            return Check(False, f"{what}: connection #{c['seq']} negotiated {c['protocol']}")
    return Check(True, f"{what}: no NULL, EXPORT, anonymous, RC4, DES or 3DES suite offered")


def session_with(connections: list[dict], cipher: str, what: str) -> Check:
    """TRN-09: the DTS completed TLS 1.2 with the one suite the probe allowed and sent its request."""
    used = [c for c in connections if c["handshake"] == "ok" and c["cipher"] == cipher and c["http_bytes"]]
    if used:
        return Check(True, f"{what}: TLS 1.2 with {cipher}, request relayed to the gateway")
    seen = [(c["handshake"], c["protocol"], c["cipher"], c["error"]) for c in connections]
    return Check(False, f"{what}: the DTS sent no request over {cipher}: {seen}", {"connections": connections})


def journalled_attempts(journal: list[dict], expected: int, what: str) -> Check:
    """SEC-06 ``attempt`` events: the DTS made exactly ``expected`` attempt(s) (REL-04, TRN-10: no retry)."""
    attempts = [e for e in journal if e.get("event") == "attempt"]
    if len(attempts) == expected:
        return Check(True, f"{what}: {expected} attempt journalled, no retransmission")
    return Check(False, f"{what}: {len(attempts)} attempts journalled, expected {expected} (no automatic retry)")


def not_retransmitted(requests: list, what: str) -> Check:
    """REL-04: the send operation ended after its one attempt — the message reached the gateway once."""
    if len(requests) == 1:
        return Check(True, f"{what}: one attempt (#{requests[0].seq}), not retransmitted")
    if not requests:
        return Check(False, f"{what}: the gateway received no attempt")
    return Check(False, f"{what}: {len(requests)} attempts of {requests[0].message_id} "
                        f"(#{', #'.join(str(r.seq) for r in requests)}); the outcome is final (REL-04)")


def credentials_only_in_body(exchange, cgw_path: str) -> Check:
    """TRN-11: UserId and Password travel only in the SOAP body: not in the URL, no Authorization,
    Proxy-Authorization or Cookie header, and the password in no header value."""
    try:
        call, _ = soap.parse_send_request(exchange.request_body)
    except soap.SoapFault as exc:
        return Check(False, f"request #{exchange.seq} is not a readable Send: {exc.faultstring}")
    problems = []
    if exchange.path != cgw_path:
        problems.append(f"the request URL is {exchange.path!r}, not {cgw_path!r}")
    headers = {k.lower(): v for k, v in exchange.request_headers.items()}
    problems += [f"it carries a {name} header" for name in CREDENTIAL_HEADERS if name in headers]
    for secret, label in ((call.password, "Password"), (call.user_id, "UserId")):
        if secret and secret in exchange.path:
            problems.append(f"the {label} appears in the URL")
        if secret and label == "Password" and any(secret in v for v in headers.values()):
            problems.append("the Password appears in a header")
    if problems:
        return Check(False, f"request #{exchange.seq}: " + "; ".join(problems))
    return Check(True, f"request #{exchange.seq}: credentials only in the SOAP body (no Authorization, Cookie, "
                       "or credentials in the URL)")


def _message_xml(exchange):
    """The request's ``MessageXML`` element and the raw octets between its tags (None if unreadable)."""
    try:
        root = etree.fromstring(exchange.request_body, safexml.hardened_parser())
    except etree.XMLSyntaxError:
        return None, b""
    found = root.find(f".//{{{SVC}}}MessageXML")
    raw = exchange.request_body
    start = raw.find(b"MessageXML")
    end = raw.rfind(b"MessageXML")
    return found, raw[start:end] if 0 <= start < end else b""


def message_xml_escaped(exchange) -> Check:
    """TRN-05: MessageXML holds the message text as character data — no child elements — and its
    value after XML unescaping is the message text the gateway read."""
    element, _ = _message_xml(exchange)
    if element is None:
        return Check(False, f"request #{exchange.seq}: no readable MessageXML")
    if len(element):
        return Check(False, f"request #{exchange.seq}: MessageXML has child element(s) "
                            f"<{etree.QName(element[0]).localname}>, not escaped character data")
    if not element.text or exchange.message_text is None or element.text.encode("utf-8") != exchange.message_text:
        return Check(False, f"request #{exchange.seq}: MessageXML's character data is not the message text")
    return Check(True, f"request #{exchange.seq}: MessageXML is character data holding the message text")


def no_cdata(exchange) -> Check:
    """TRN-05: the DTS SHOULD NOT use CDATA in MessageXML."""
    _, raw = _message_xml(exchange)
    if b"<![CDATA[" in raw:
        return Check(False, f"request #{exchange.seq}: MessageXML uses a CDATA section (SHOULD NOT)")
    return Check(True, f"request #{exchange.seq}: MessageXML escaped without CDATA")


def one_send_per_request(exchange) -> Check:
    """TRN-14: one ``svc:Send`` per HTTP request."""
    try:
        root = etree.fromstring(exchange.request_body, safexml.hardened_parser())
    except etree.XMLSyntaxError as exc:
        return Check(False, f"request #{exchange.seq} is not XML: {exc}")
    sends = root.findall(f".//{{{SVC}}}Send")
    if len(sends) == 1:
        return Check(True, f"request #{exchange.seq} carries one Send")
    return Check(False, f"request #{exchange.seq} carries {len(sends)} Send elements")


def at_most_concurrent(exchanges: list, limit: int) -> Check:
    """TRN-14: at most ``limit`` HTTP requests to the CGW in progress at once (SHOULD)."""
    events = sorted([(e.received_at, 1) for e in exchanges] +
                    [(e.responded_at if e.responded_at is not None else float("inf"), -1) for e in exchanges],
                    key=lambda t: (t[0], t[1]))
    current = peak = 0
    for _, delta in events:
        current += delta
        peak = max(peak, current)
    if peak <= limit:
        return Check(True, f"at most {peak} request(s) in progress at once ({len(exchanges)} in all)")
    return Check(False, f"{peak} requests were in progress at once (at most {limit} SHOULD be)")


# --- business documents and text (issue 6: DOC-02, DOC-03, TXT-02..06) ------------------------------

def _declaration_of(source):
    """The dec:Declaration in an exchange's message text, or in a document's octets (None if unreadable)."""
    from .codec.namespaces import DEC
    text = source if isinstance(source, bytes) else getattr(source, "message_text", None)
    try:
        root = etree.fromstring(text or b"", safexml.hardened_parser())
    except etree.XMLSyntaxError:
        return None
    if root.tag == q(DEC, "Declaration"):
        return root
    return root.find(f".//{q(DEC, 'Declaration')}")


def document_value(source, path: str) -> str | None:
    """The text of ``path`` (e.g. ``Invoice/totalValue``) under the Declaration of ``source``: an exchange
    (what was sent) or the document octets the DTS was given."""
    from .codec.namespaces import DEC
    decl = _declaration_of(source)
    if decl is None:
        return None
    return decl.findtext("/".join(q(DEC, step) for step in path.split("/")))


def document_values(source, path: str) -> list[str | None]:
    """The text of every ``path`` match (e.g. ``GoodsItem/value`` of each item) under the Declaration."""
    from .codec.namespaces import DEC
    decl = _declaration_of(source)
    if decl is None:
        return []
    return [el.text for el in decl.iterfind("/".join(q(DEC, step) for step in path.split("/")))]


def text_maximum(profile, parent: str, name: str) -> int:
    """The n of the Text(n) type the profile's content schemas give ``parent/name`` (TXT-04 limits)."""
    xs = "http://www.w3.org/2001/XMLSchema"
    for path in sorted((profile.directory / "xsd").glob("*.xsd")):
        for el in etree.parse(str(path)).getroot().iter(f"{{{xs}}}element"):
            owner = next((a for a in el.iterancestors(f"{{{xs}}}element") if a.get("name")), None)
            match = re.fullmatch(r"Text([0-9]+)(LF)?", el.get("type") or "")
            if match and el.get("name") == name and owner is not None and owner.get("name") == parent:
                return int(match.group(1))
    raise KeyError(f"{profile.id} gives {parent}/{name} no Text(n) type")


def goods_count(source) -> int | None:
    from .codec.namespaces import DEC
    decl = _declaration_of(source)
    return None if decl is None else len(decl.findall(q(DEC, "GoodsItem")))


def no_doctype(exchange) -> Check:
    """TXT-02: the message text holds no document type declaration (read without processing it)."""
    parser = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False, huge_tree=False)
    try:
        tree = etree.fromstring(exchange.message_text or b"", parser).getroottree()
    except etree.XMLSyntaxError as exc:
        return Check(False, f"request #{exchange.seq} is not well-formed XML: {exc}", {"exchange": exchange.seq})
    if tree.docinfo.doctype or tree.docinfo.internalDTD is not None:
        return Check(False, f"request #{exchange.seq} carries a DOCTYPE ({tree.docinfo.doctype!r})",
                     {"exchange": exchange.seq})
    return Check(True, f"request #{exchange.seq} has no DOCTYPE")


def character_data_nfc(exchange) -> Check:
    """TXT-03: every character data and attribute value of the message text is in Unicode NFC."""
    import unicodedata
    try:
        root = etree.fromstring(exchange.message_text or b"", safexml.hardened_parser())
    except etree.XMLSyntaxError as exc:
        return Check(False, f"request #{exchange.seq} is not well-formed XML: {exc}")
    for el in root.iter():
        values = [el.text, el.tail, *(el.attrib.values() if isinstance(el.tag, str) else ())]
        for value in values:
            if value and not unicodedata.is_normalized("NFC", value):
                where = el.tag if isinstance(el.tag, str) else el.getparent().tag
                return Check(False, f"request #{exchange.seq}: {where.split('}')[-1]} is not in NFC: "
                                    f"{ascii(value[:40])}", {"exchange": exchange.seq})
    return Check(True, f"request #{exchange.seq}: all character data is in NFC")


def same_text(label: str, expected: str | None, sent: str | None) -> Check:
    import unicodedata
    if sent is not None and sent == expected:
        return Check(True, f"{label} was sent as expected ({len(sent)} code points)")
    if sent is not None and unicodedata.normalize("NFC", sent) == expected:
        return Check(False, f"{label} was sent decomposed, not in NFC: {ascii(sent[:60])}")
    return Check(False, f"{label}: sent {sent!r}, expected {expected!r}")


def outcome_summary(outcome) -> str:
    """The state and the first local, transport or security message of an outcome, for a check's message."""
    shown = [n.text for n in outcome.notifications if n.kind in ("local-error", "transport-error", "security-error")]
    return f"state {outcome.state!r}" + (f": {shown[0]!r}" if shown else "")


def _edge_or_control(value: str, lf_allowed: bool) -> str | None:
    import unicodedata

    def edge(c):
        return c.isspace() or unicodedata.category(c) in ("Zs", "Zl", "Zp", "Cc")

    if value and (edge(value[0]) or edge(value[-1])):
        return f"white space at an edge ({value[:1]!r} … {value[-1:]!r})"
    for c in value:
        if unicodedata.category(c) == "Cc" and not (lf_allowed and c == "\n"):
            return f"the control character U+{ord(c):04X}"
    return None


def text_clean(label: str, given: str | None, sent: str | None, *, lf_allowed: bool = False) -> Check:
    """TXT-05: a Text(n) value sent without edge white space or control characters (LF only where
    allowed), keeping the user's words (white space inside may become a space)."""
    if sent is None:
        return Check(False, f"{label} is missing from the request")
    problem = _edge_or_control(sent, lf_allowed)
    if problem:
        return Check(False, f"{label} was sent with {problem}: {sent!r}")
    import unicodedata
    words = "".join(" " if unicodedata.category(c) == "Cc" else c for c in (given or "")).split()
    if words != sent.split():
        return Check(False, f"{label}: the user's words changed: given {given!r}, sent {sent!r}")
    return Check(True, f"{label} sent as {sent!r}")


def line_breaks_kept(label: str, given: str | None, sent: str | None) -> Check:
    """TXT-05: CR LF became LF — the line breaks the user typed are kept, as LF, where LF is allowed."""
    expected = (given or "").replace("\r\n", "\n")
    if sent == expected:
        return Check(True, f"{label}: {given.count(chr(13))} CR LF sent as LF")
    if sent is not None and "\r" in sent:
        return Check(False, f"{label} was sent with CR: {sent!r}")
    return Check(False, f"{label}: sent {sent!r}, expected the user's lines joined by LF: {expected!r}")


def line_numbers(exchange) -> Check:
    """DOC-03: GoodsItem/lineNo is 1, 2, 3… in document order."""
    from .codec.namespaces import DEC
    decl = _declaration_of(exchange)
    if decl is None:
        return Check(False, f"request #{exchange.seq} holds no readable declaration")
    numbers = [item.findtext(q(DEC, "lineNo")) for item in decl.findall(q(DEC, "GoodsItem"))]
    expected = [str(n) for n in range(1, len(numbers) + 1)]
    if numbers != expected:
        return Check(False, f"request #{exchange.seq}: lineNo {numbers}, expected {expected}", {"lineNo": numbers})
    return Check(True, f"request #{exchange.seq}: lineNo 1…{len(numbers)} in document order")


def total_exact(exchange) -> Check:
    """DOC-03: Invoice/totalValue is numerically the exact sum of GoodsItem/value (no rounding)."""
    from decimal import Decimal, InvalidOperation

    from .codec.namespaces import DEC
    decl = _declaration_of(exchange)
    if decl is None:
        return Check(False, f"request #{exchange.seq} holds no readable declaration")
    values = [item.findtext(q(DEC, "value")) or "" for item in decl.findall(q(DEC, "GoodsItem"))]
    total = decl.findtext(f"{q(DEC, 'Invoice')}/{q(DEC, 'totalValue')}")
    try:
        exact = sum((Decimal(v) for v in values), Decimal(0))
        sent = Decimal(total or "")
    except InvalidOperation:
        return Check(False, f"request #{exchange.seq}: totalValue {total!r} or a line value is not a decimal")
    if sent != exact:
        return Check(False, f"request #{exchange.seq}: totalValue {total}, the exact sum of the lines is "
                            f"{format(exact, 'f')}", {"totalValue": total, "sum": format(exact, "f")})
    return Check(True, f"request #{exchange.seq}: totalValue {total} is the exact sum of {len(values)} line(s)")


def values_unchanged(exchange, given: bytes, paths: list[str]) -> Check:
    """TXT-06: the numbers and dates the user gave reach the wire as given (not re-read in a locale)."""
    from decimal import Decimal
    number = re.compile(r"(0|[1-9][0-9]*)(\.[0-9]+)?", re.ASCII)

    def same(a, b):
        if a is not None and b is not None and number.fullmatch(a) and number.fullmatch(b):
            return Decimal(a) == Decimal(b)          # 12.50 and 12.5 are the same §4.2 decimal
        return a == b

    changed = []
    for path in paths:
        before, after = document_values(given, path), document_values(exchange, path)
        if len(before) != len(after) or not all(same(a, b) for a, b in zip(before, after)):
            changed.append(f"{path} {before} → {after}")
    if changed:
        return Check(False, f"request #{exchange.seq}: " + "; ".join(changed[:4]), {"changed": changed})
    return Check(True, f"request #{exchange.seq}: {', '.join(paths)} sent as given")


# The words by which a user is told to split a declaration (DOC-02), in an English or Vietnamese UI.
SPLIT_WORDS = ("split", "several declarations", "tách", "chia", "nhiều tờ khai")


# --- SEC-01 / SEC-02: clear-text secrets in the product's files --------------------------------------

MAX_INSPECTED_BYTES = 64 * 1024 * 1024     # per file: a larger file is read only this far (and said so)


def secret_encodings(secret: str) -> list[bytes]:
    """A secret as it may sit in a file: UTF-8, UTF-16LE (Windows settings), base64 of the UTF-8 octets."""
    import base64

    raw = secret.encode("utf-8")
    return [raw, secret.encode("utf-16-le"), base64.b64encode(raw)]


def private_key_encodings(key) -> list[bytes]:
    """An exported private key: PKCS#8 and traditional DER, unencrypted, and the first base64 line of each
    as PEM writes it (64 characters of the DER's base64)."""
    import base64

    from cryptography.hazmat.primitives import serialization

    out = []
    for fmt in (serialization.PrivateFormat.PKCS8, serialization.PrivateFormat.TraditionalOpenSSL):
        der = key.private_bytes(serialization.Encoding.DER, fmt, serialization.NoEncryption())
        out += [der, base64.b64encode(der)[:64]]
    return out


def search_files(paths, needles: dict[str, list[bytes]]) -> dict:
    """Every file under ``paths`` searched for every encoding of every named needle.
    Returns ``{"files": n, "roots": [...], "hits": [{"secret", "file", "encoding"}], "missing": [...]}``."""
    from pathlib import Path

    files, hits, missing, roots = 0, [], [], [str(p) for p in paths]
    for root in map(Path, paths):
        if not root.exists():
            missing.append(str(root))
            continue
        for path in ([root] if root.is_file() else sorted(p for p in root.rglob("*") if p.is_file())):
            try:
                with open(path, "rb") as fh:
                    data = fh.read(MAX_INSPECTED_BYTES)
            except OSError:
                continue
            files += 1
            for name, encodings in needles.items():
                for i, needle in enumerate(encodings):
                    if needle and needle in data:
                        hits.append({"secret": name, "file": str(path), "encoding": i})
    return {"files": files, "roots": roots, "hits": hits, "missing": missing}


def no_secret_in_files(search: dict, names: list[str], what: str) -> Check:
    """SEC-01/SEC-02: none of the named secrets was found in the product's files."""
    if not search["files"]:
        return Check(False, f"no product file could be inspected under {search['roots']} "
                            f"(missing: {search['missing']}); nothing to judge {what} by")
    found = [h for h in search["hits"] if h["secret"] in names]
    if found:
        first = found[0]
        return Check(False, f"{first['secret']} found in {first['file']} ({len(found)} hit(s) in all): {what}",
                     {"hits": found[:20]})
    return Check(True, f"{search['files']} product file(s) under {', '.join(search['roots'])} hold no "
                       f"{' / '.join(names)} (clear, UTF-16LE or base64)")


def journal_per_submission(per: list[dict], whole: list[dict], submission: str) -> Check:
    """SEC-06: the export for one submission holds that submission's events — all of them, nothing else."""
    foreign = [e for e in per if e.get("submission") != submission]
    if foreign:
        return Check(False, f"the export for submission {submission} holds {len(foreign)} event(s) of others "
                            f"(first: {foreign[0].get('event')!r} of {foreign[0].get('submission')!r})")
    expected = [e for e in whole if e.get("submission") == submission]
    key = lambda e: (e.get("time"), e.get("event"), e.get("messageId"))   # noqa: E731
    if sorted(map(key, per)) != sorted(map(key, expected)):
        return Check(False, f"the export for submission {submission} holds {len(per)} event(s); the whole "
                            f"export has {len(expected)} for it")
    return Check(True, f"the export for submission {submission} holds exactly its {len(per)} event(s)")
