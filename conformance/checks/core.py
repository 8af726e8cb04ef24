"""Checks every family uses: the SOAP frame, message texts, what the user was told."""

from __future__ import annotations

from lxml import etree

from ..case import Check
from ..codec import certs, lexical, safexml, soap, xmlsig
from ..codec.envelope import Result, content_child, parse_datetime, read_header
from ..codec.namespaces import ENV, q


def _parse(text: bytes | None, profile):
    if text is None:
        return None, "no message text could be read from the request"
    try:
        return safexml.parse_message_text(text, max_bytes=profile.params["S_max"]), None
    except safexml.XmlRefused as exc:
        return None, f"{exc.code}: {exc.reason}"


def unreadable(exchange, problem: str) -> Check:
    """A check of another requirement over a message text that cannot be read (not UTF-8, a BOM, a DOCTYPE,
    not well-formed: TXT-01/TXT-02's own findings): nothing to judge, INCONCLUSIVE — never its FAIL."""
    return Check(False, f"request #{exchange.seq} cannot be judged here: {problem} (TXT-01/TXT-02)",
                 {"exchange": exchange.seq}, undecided=True)


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
        return unreadable(exchange, problem)
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
        return unreadable(exchange, problem)
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
        return unreadable(exchange, problem)
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


def read_tree(text: bytes | None):
    """The root of ``text`` read with the hardened parser, or None when it is absent or not XML: a case
    never crashes on what a product sent, nor on a reply a scenario broke on purpose (truncated, DOCTYPE)."""
    if not text:
        return None
    try:
        return etree.fromstring(text, safexml.hardened_parser())
    except (etree.XMLSyntaxError, ValueError):
        return None


def reply_result(exchange) -> Result | None:
    """The ``e:Result`` of the reply the gateway sent in an exchange; None where there is none to read."""
    child = content_child(root) if (root := read_tree(exchange.reply_text)) is not None else None
    if child is None or child.tag != q(ENV, "Result"):
        return None
    try:
        return Result.from_element(child)
    except (ValueError, TypeError, AttributeError):     # a reply broken on purpose (no sequence, ...)
        return None


def message_content(exchange):
    """The ``Content`` child of a request's message text as the gateway recorded it, or None."""
    root = read_tree(exchange.message_text)
    return content_child(root) if root is not None else None


def reply_message_id(exchange) -> str | None:
    """The messageId of the reply the gateway sent in ``exchange`` (None where it cannot be read)."""
    root = read_tree(exchange.reply_text)
    return read_header(root).get("Reference/messageId") if root is not None else None


def same_value(label: str, shown: str | None, sent: str | None) -> Check:
    if sent is not None and shown == sent:
        return Check(True, f"the DTS showed the {label} {sent} that the gateway sent")
    return Check(False, f"the DTS showed {label} {shown!r}; the gateway sent {sent!r}")


def outcome_state(outcome, expected: set[str]) -> Check:
    if outcome.state in expected:
        return Check(True, f"the DTS reported the outcome as {outcome.state}")
    why = f" ({outcome.raised})" if outcome.raised else ""
    return Check(False, f"the DTS reported {outcome.state!r}{why}, expected one of {sorted(expected)}")


def approved_with_current_otp(outcome, approvals) -> Check:
    """PAY-09's last step: the approval with the new e-mail's OTP is accepted. A 273 P0001 (OTP expired or
    invalidated) with no wrong value (P0002) before it says the OTP expired before the approval reached the
    gateway. Nothing in PAY-08/09 bounds how soon a product approves; under a scaled T_otp a loaded machine's
    timed-out and resent requests (REL-03) can outlast the OTP (20 sessions at once on two cores did), so that
    outcome cannot be judged: undecided, not a FAIL (docs/decisions.md, "An OTP that expired on the way")."""
    if outcome.state == "accepted":
        return outcome_state(outcome, {"accepted"})
    codes = [code for a in approvals for code in a.reply_codes]
    if "P0001" in codes and "P0002" not in codes[:codes.index("P0001")]:
        late = next(a for a in approvals if "P0001" in a.reply_codes)
        return Check(False, f"the OTP expired before the approval reached the gateway (request #{late.seq}: "
                            f"273 P0001, no wrong value before it): how long the product took cannot be judged here",
                     undecided=True)
    return outcome_state(outcome, {"accepted"})


def errors_shown_verbatim(outcome, journal: list[dict], sent: list[dict]) -> Check:
    """RPL-14: every Error shown with code, field and Vietnamese description unchanged."""
    shown = {(e.code, e.field, e.description) for e in outcome.errors}
    texts = [ev.get("text", "") for ev in journal if ev.get("event") == "notification"]
    missing, seen = [], []
    for err in sent:
        key = (err["code"], err["field"], err["description"])
        if key not in shown:
            missing.append(f"{err['code']} not reported verbatim to the user")
            same = [e for e in outcome.errors if e.code == err["code"]]
            seen.append(f"{err['code']}: " + (f"field “{same[0].field}”, description “{same[0].description}”"
                                              if same else "not shown at all"))
        elif not any(err["description"] in t and err["code"] in t for t in texts):
            missing.append(f"{err['code']}: description not found verbatim in the journalled notifications")
            near = [t for t in texts if err["code"] in t]
            seen.append(f"{err['code']}: journalled as “{near[0]}”" if near else
                        f"{err['code']}: shown verbatim, but no journalled notification names it")
    if missing:
        return Check(False, "; ".join(missing), {"shown": sorted(shown), "sent": sent},
                     expected="shown and journalled verbatim: " + "; ".join(
                         f"{e['code']}: field “{e['field'] or ''}”, description “{e['description']}”" for e in sent),
                     observed="; ".join(seen))
    return Check(True, f"all {len(sent)} error(s) reached the user verbatim (code, field, description)")


def retransmitted(attempts: list) -> Check:
    if len(attempts) >= 2:
        return Check(True, f"the DTS made {len(attempts)} attempts")
    return Check(False, f"the DTS made {len(attempts)} attempt(s); a retransmission was required",
                 expected="after the attempt timed out, at least one retransmission of the message (2 or more "
                          "attempts with the same messageId)",
                 observed=f"{len(attempts)} attempt(s) reached the gateway" + (
                     f" (#{', #'.join(str(a.seq) for a in attempts)})" if attempts else ""))


def byte_identical(attempts: list) -> Check:
    """REL-05, shared by every case that sees retransmissions: the attempts of one send operation (the
    requests one user action caused) all carry the first attempt's octets, and its UserId."""
    if len(attempts) < 2:
        return Check(True, f"{len(attempts)} attempt(s): no retransmission to compare")
    first = attempts[0]
    for a in attempts[1:]:
        if a.message_text != first.message_text:
            if a.message_id != first.message_id:
                return Check(False, f"attempt #{a.seq} carries a new messageId {a.message_id} "
                                    f"(first: {first.message_id})")
            return Check(False, f"attempt #{a.seq} has the same messageId but different octets "
                                f"(re-signed or re-serialised)")
        if a.user_id != first.user_id:
            return Check(False, f"attempt #{a.seq} is sent with UserId {a.user_id!r}, the first with {first.user_id!r}")
    return Check(True, f"all {len(attempts)} attempts carry the byte-identical message text")


# The specific causes SIG-12 requires the user to be told, in the words a Vietnamese or English
# user interface would use. A product may phrase them otherwise; these are the words customs reads for.
CERTIFICATE_CAUSE_WORDS = {
    "expired": ("expired", "hết hạn", "hết hiệu lực"),
    "not yet valid": ("not yet valid", "chưa có hiệu lực", "chưa đến"),
    "revoked": ("revoked", "thu hồi"),
    "wrong tax code": ("tax code", "mã số thuế", "MST"),
    "unsuitable key": ("key", "khóa", "khoá"),
}


def outcome_summary(outcome) -> str:
    """The state and the first local, transport or security message of an outcome, for a check's message."""
    shown = [n.text for n in outcome.notifications if n.kind in ("local-error", "transport-error", "security-error")]
    return f"state {outcome.state!r}" + (f": {shown[0]!r}" if shown else "")


def something_sent(requests: list, what: str, outcome=None) -> Check:
    """The twin of ``nothing_sent``: ``what`` reached the gateway; the DTS's outcome, when given, says
    what the user saw instead (a local refusal, a transport error)."""
    summary = f" ({outcome_summary(outcome)})" if outcome is not None else ""
    return Check(bool(requests), f"{what}: the gateway received {len(requests)} request(s){summary}")


def nothing_sent(requests: list, what: str) -> Check:
    if not requests:
        return Check(True, f"{what}: the gateway received nothing")
    return Check(False, f"{what}: the gateway received {len(requests)} request(s)",
                 {"exchanges": [r.seq for r in requests]})


def says(shown: list, words, what: str, where: str) -> Check:
    """What the user was told means ``what``: one of ``words`` (English and Vietnamese, case-insensitive)
    in a notification of ``shown`` passes; nothing shown (blank texts count as nothing) fails; texts
    without those words are *undecided* — a product may say it otherwise — and are shown for review."""
    texts = [n.text for n in shown if n.text and n.text.strip()]
    for text in texts:
        if any(w.lower() in text.lower() for w in words):
            return Check(True, f"the user was told {what}: {text!r}")
    if not texts:
        return Check(False, f"the user was not told {what}: {where}")
    return Check(False, f"for review: none of the words for {what} ({', '.join(words[:4])}, …) appears in what the "
                        f"user was shown: {texts[-3:]}", {"review": texts}, undecided=True)


def local_error_says(outcome, words, what: str) -> Check:
    """SIG-12/SIG-13/SEC-09: a local error (not a customs result) whose text says ``what`` (see ``says``)."""
    local = [n for n in outcome.notifications if n.kind == "local-error"]
    return says(local, words, what, f"no local error was shown (state {outcome.state!r})")


