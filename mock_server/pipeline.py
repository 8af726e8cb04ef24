"""Evaluation of one ``Send`` request in the order of Table 7-3 (RPL-05).

``CHECKS`` is the ordered list of steps 1-18 (17 and 18, the state of amended/cancelled declarations
and payment orders, live in ``flows``). Each step is a small function ``(gateway, exchange)`` that
returns ``None`` ("continue") or an outcome — a reply to send (``Answer``), a stored entry to
redeliver (``Replay``) or a SOAP fault (``Fault``).

``evaluate`` runs the steps, then, in this order and in one place each:
1. reads the exchange's facts (header, attempt number) and chooses the case's scenario rule;
2. lets ``faults`` act on it — before the checks, on their outcome (``apply_rule``) and on the
   response — the only code that interprets fault injection;
3. finishes (step 19): records a submission and answers 29 — or answers a query from the
   submission's history (RPL-03) — and turns the outcome into signed reply octets.

An exception in any step becomes HTTP 500 ``soap:Server`` with the traceback kept in the evidence
verdict only (TRN-07: never a traceback to the client). The evaluation is synchronous and runs on the
server's single event-loop thread, so two requests with one messageId are never evaluated concurrently
(REL-10) without any lock; only its pure CPU work (``prepare``: parsing, XSD validation, signature)
may be done ahead in a worker process (``cpu_pool``), touching no state but the exchange's own.

Steps read the request from ``exchange.root``, the tree parsed from the received octets. This is
safe from signature wrapping because step 9 has verified that the only ``ds:Signature`` is the
root's last child with ``Reference URI=""`` (the whole document is signed); the verifier's own
``signed_root`` cannot be used instead, since exclusive C14N drops the comments that step 13 must
still find.
"""

from __future__ import annotations

import base64
import hmac
import pickle
import re
import sys
import traceback
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any, Callable

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from lxml import etree

from conformance.codec import certs, lexical, soap, xmlsig
from conformance.codec.memo import BoundedMemo
from conformance.codec.envelope import (
    VN_TZ,
    ErrorEntry,
    Tax,
    Header,
    Result,
    content_child,
    ecdi_path,
    fit_field,
    format_datetime,
    inside_signature,
    parse_datetime,
    read_header,
)
from conformance.codec.namespaces import DEC, ENV, PAY, q
from conformance.codec.safexml import MAX_DEPTH, XmlRefused, hardened_parser, read_message_text
from conformance.profile import Profile

from . import faults, flows, redaction
from .config import Account
from .database import AlreadyRecorded, StorageUnavailable
from .scenario import HistoryStep, Rule
from .store import Submission

DER = Encoding.DER

# ------------------------------------------------------------------------------------------
# Outcomes


@dataclass(frozen=True)
class Answer:
    """A reply to build for this request: function code and errors (warnings are added later)."""

    function: str
    errors: tuple[ErrorEntry, ...] = ()


@dataclass(frozen=True)
class Replay:
    """A stored history entry to redeliver byte-identical (RPL-02, REL-10)."""

    text: bytes


@dataclass(frozen=True)
class Fault:
    """HTTP 500 with a SOAP Fault (TRN-07)."""

    code: str
    text: str


Outcome = Answer | Replay | Fault


@dataclass
class Response:
    """What goes back on the wire: a reply message text (HTTP 200) or a fault (HTTP 500), and how
    it travels (``faults.Delivery``; status 0 with a ``reset`` delivery sends nothing at all)."""

    status: int
    body: bytes
    reply_text: bytes | None = None
    delivery: faults.Delivery = field(default_factory=lambda: faults.Delivery())


INTERNAL_ERROR = "Lỗi nội bộ của cổng thông tin hải quan; yêu cầu chưa được ghi nhận (internal gateway error)"

# ------------------------------------------------------------------------------------------
# The exchange being evaluated


@dataclass
class HttpRequest:
    path: str                          # with the query string
    headers: dict[str, str]
    body: bytes


@dataclass
class Exchange:
    """Everything learnt about one request while it is evaluated; becomes one evidence row."""

    request: HttpRequest
    now: datetime                      # gateway clock at reception: every check uses this
    case_id: str
    call: soap.SendCall | None = None
    account: Account | None = None     # the authenticated user (step 3)
    profile: Profile | None = None     # the profile of Reference/version once step 6 passed
    root: etree._Element | None = None
    beyond: etree._Element | None = None   # first element deeper than MAX_DEPTH (its children not read)
    header: Header = field(default_factory=lambda: Header({}))
    lexical: lexical.LexicalIssue | None = None   # first comment/PI/non-NFC node (step 7, used by 13)
    signature: xmlsig.VerifiedSignature | None = None
    queried: Submission | None = None  # the submission a query targets (step 14)
    attempt: int = 0                   # n-th reception of this messageId; 0 when none is readable
    warnings: list[ErrorEntry] = field(default_factory=list)
    verdict: dict = field(default_factory=dict)
    rule: Rule | None = None
    delay: float = 0.0
    started_before: float = 0.0        # seconds from the attempt's start (its connection's set-up) to reception
    skip_ahead: int = 0                # a query reveals this many entries beyond the next (out_of_order)
    order: Any = None                  # payments.Order a 702 refers to (step 17)
    reply_fields: dict = field(default_factory=dict)   # extra Result fields of entry 1 (step 18)
    mail: dict | None = None           # the OTP e-mail recording sends (PAY-04)
    mail_withheld: bool = False        # scenario ``withhold_mail``: that e-mail never reaches the user
    secrets: Any = None                # redaction.Secrets of the body and message text, found by the worker
    _parsed: bool = False
    _xml_problem: XmlRefused | None = None
    _once: dict = field(default_factory=dict)

    def once(self, key, compute: Callable[[], Any]) -> Any:
        """``compute()``, computed once per exchange (``prepare`` may have done it off the event loop);
        an exception it raised is raised again."""
        if key not in self._once:
            try:
                self._once[key] = (True, compute())
            except Exception as exc:           # noqa: BLE001 — kept for the step that asks
                self._once[key] = (False, exc)
        done, value = self._once[key]
        if not done:
            raise value
        return value

    def read_soap(self) -> tuple[soap.SendCall, bool]:
        """The ``Send`` call and whether a SOAP Header was present; raises ``soap.SoapFault``."""
        return self.once("soap", lambda: soap.parse_send_request(self.request.body))

    @property
    def text(self) -> bytes | None:
        return self.call.message_text if self.call else None

    def parse(self, s_max: int) -> XmlRefused | None:
        """Parse the message text once (hardened); returns the refusal, if any."""
        if not self._parsed and self.call is not None:
            self._parsed = True
            try:
                self.root, self.beyond = read_message_text(self.call.message_text, max_bytes=s_max)
                self.header = read_header(self.root)
            except XmlRefused as exc:
                self._xml_problem = exc
        return self._xml_problem

    def facts(self) -> dict[str, Any]:
        """The facts scenario rules match on (scenario.WHEN_KEYS)."""
        h = self.header
        return {"type": h.get("Subject/type"), "function": h.get("Subject/function"),
                "reference": h.get("Subject/reference"), "message_id": h.get("Reference/messageId"),
                "user_id": self.call.user_id if self.call else None, "attempt": self.attempt or None,
                "after_sequence": self._after_sequence()}

    def _after_sequence(self) -> int | None:
        child = content_child(self.root) if self.root is not None else None
        text = child.findtext(q(ENV, "afterSequence")) if child is not None and child.tag == q(ENV, "Query") else None
        return int(text) if text is not None and re.fullmatch(r"[0-9]{1,4}", text) else None


def error(gw, code: str, path: str = "", description: str | None = None) -> ErrorEntry:
    return ErrorEntry(code, fit_field(path), description or gw.describe(code))


def reject(gw, code: str, path: str = "", description: str | None = None) -> Answer:
    """A 271 (message-level rejection, never recorded) — with the code this gateway's behaviour gives."""
    return Answer("271", (error(gw, gw.behaviour.code_for(code), path, description),))


# ------------------------------------------------------------------------------------------
# Steps 1-16


def step_soap(gw, ex: Exchange) -> Outcome | None:
    """1. A well-formed SOAP 1.1 ``Send`` with the right Content-Type and SOAPAction (TRN-07)."""
    headers = {k.lower(): v for k, v in ex.request.headers.items()}
    content_type = headers.get("content-type")
    if not soap.media_type_ok(content_type):
        return Fault("soap:Client", f"Content-Type {content_type!r} is not {soap.CONTENT_TYPE!r} (TRN-07)")
    action = headers.get("soapaction")
    if action != soap.SOAP_ACTION:
        return Fault("soap:Client", f"SOAPAction {action!r} is not {soap.SOAP_ACTION} (TRN-07)")
    try:
        ex.call, has_soap_header = ex.read_soap()
    except soap.SoapFault as fault:
        return Fault(fault.faultcode, fault.faultstring)
    if not gw.behaviour.accepts_cdata and b"<![CDATA[" in ex.request.body:
        return Fault("soap:Client", "MessageXML must be escaped character data")
    # TRN-03 and TRN-11 bind the DTS; the gateway ignores the deviations and records them.
    ex.verdict["transport"] = {
        "soap_header": has_soap_header,
        "credentials_outside_body": sorted(
            name for name in ("authorization", "cookie") if name in headers
        ) + (["query-string"] if "?" in ex.request.path else []),
    }
    return None


def step_size(gw, ex: Exchange) -> Outcome | None:
    """2. Message text no larger than ``S_max`` (TRN-13)."""
    if len(ex.call.message_text) > gw.default_profile.params["S_max"]:
        return reject(gw, "E0001")
    return None


def step_credentials(gw, ex: Exchange) -> Outcome | None:
    """3. Known, enabled user with the right password; one answer for all three failures (TRN-12)."""
    user_id, password = _credentials(gw, ex)
    account = gw.accounts.get(user_id)
    matches = account is not None and hmac.compare_digest(account.password.encode("utf-8"), password.encode("utf-8"))
    # the evidence keeps only the password's fingerprint (redaction.py): whether it was the account's is this fact
    ex.verdict["credentials"] = {"user_known": account is not None, "password_matches_account": matches}
    ok = matches and account.enabled
    if not ok:
        if account is None and gw.behaviour.tells_unknown_user:
            return reject(gw, "U0001", description=f"{gw.describe('U0001')} (UserId không tồn tại)")
        return reject(gw, "U0001")
    ex.account = account
    return None


def _credentials(gw, ex: Exchange) -> tuple[str, str]:
    """UserId and Password: the SOAP body's (TRN-11), or an ``Authorization: Basic`` header's when this
    gateway's behaviour reads one."""
    header = {k.lower(): v for k, v in ex.request.headers.items()}.get("authorization", "")
    if gw.behaviour.reads_http_credentials and header.lower().startswith("basic "):
        try:
            user_id, _, password = base64.b64decode(header[6:]).decode("utf-8").partition(":")
            return user_id, password
        except ValueError:
            pass
    return ex.call.user_id, ex.call.password


def step_xml(gw, ex: Exchange) -> Outcome | None:
    """4. XML 1.0, UTF-8, no BOM, no DOCTYPE (TXT-01, TXT-02)."""
    problem = ex.parse(parse_limit(gw))
    if problem:
        ex.verdict["xml"] = problem.reason
        return reject(gw, problem.code, problem.field)
    return None


def step_replay(gw, ex: Exchange) -> Outcome | None:
    """5. A recorded messageId: stored entry 1 if byte-identical, else E0003 (REL-10)."""
    sub = gw.store.submission(ex.header.get("Reference/messageId") or "")
    if sub is None:
        return None
    if not authorised(ex.account, sub.from_identity):
        return reject(gw, "U0002", "/Envelope/Header/From/identity")
    if sub.request_text != stored_text(gw, ex.text) and gw.behaviour.replay_compares_text:
        return reject(gw, "E0003", "/Envelope/Header/Reference/messageId")
    entry1 = gw.store.entries(sub.message_id)[0]
    if entry1.function == "29" and gw.behaviour.replay_new_reception_number:
        return Replay(_receipt_again(gw, sub))
    return Replay(entry1.text)


def _receipt_again(gw, sub: Submission) -> bytes:
    """Entry 1 (a 29) built afresh with the next reception number (the behaviour knob of that name)."""
    number = f"{gw.store.next_number('reception'):010d}"
    return gw.replies.build(sub.header, "29", _result([], sequence=1, reception_number=number,
                                                      declaration_number=sub.declaration_number))


def parse_limit(gw) -> int:
    """The largest message text parsed: ``S_max`` (step 2 refused larger ones), or all HTTP reads
    (4 × ``S_max``, TRN-13) when this gateway's behaviour skips step 2."""
    s_max = gw.default_profile.params["S_max"]
    return 4 * s_max if "size" in gw.behaviour.skipped_checks else s_max


def stored_text(gw, text: bytes) -> bytes:
    """A message text as the store keeps it: an OTP as its fingerprint (compared so, REL-10)."""
    return gw.fingerprint.elements(text, ("otp",))[0]


def step_version(gw, ex: Exchange) -> Outcome | None:
    """6. ``Reference/version`` in ``accepted_versions`` (CAP-03); its profile applies from here on.

    A document with no version to judge (its root is no ``e:Envelope``, or it has no
    ``Header/Reference/version``) is not X0003: step 7 names its first offending node (X0002), under
    the profile of the highest accepted version (Table 4-3's placeholder)."""
    ex.profile = _profile_of(gw, ex)
    if ex.profile is None:
        return reject(gw, "X0003", "/Envelope/Header/Reference/version")
    return None


def _profile_of(gw, ex: Exchange) -> Profile | None:
    version = ex.header.get("Reference/version") if ex.root.tag == q(ENV, "Envelope") else None
    return gw.default_profile if version is None else gw.profiles.get(version)


def step_envelope(gw, ex: Exchange) -> Outcome | None:
    """7. Envelope structure and header types (ENV-01), comments/PIs/NFC outside the content, Table 4-2.

    A document nested deeper than ``MAX_DEPTH`` outside ``ds:Signature`` ends here too: its first
    offending node is within the levels read (no valid message text nests deeper than 8), and nothing
    after this step, the signature first, can be judged on a document read in part (decisions.md)."""
    issues = list(_envelope_issues(ex, ex.profile))
    ex.lexical = ex.once(("lexical", ex.profile.id), lambda: lexical.lexical_problem(ex.root, ex.profile.repeatable))
    if not gw.behaviour.lexical_rules:
        ex.lexical = None
    if ex.lexical is not None and not _in_content(ex, ex.lexical.path):
        issues.append(ex.lexical)
    issues = issues or _table_4_2_issues(ex)
    if not issues and ex.beyond is not None and not inside_signature(ex.beyond):
        issues = _content_issues(ex) or [_Issue(ecdi_path(ex.beyond, ex.profile.repeatable),
                                                f"elements nest deeper than {MAX_DEPTH} levels")]
    ex.verdict["schema"] = [{"step": 7, "path": i.path, "reason": i.reason} for i in issues]
    if issues:
        return reject(gw, "X0002", issues[0].path)
    return None


def step_certification(gw, ex: Exchange) -> Outcome | None:
    """8. ``certificationId`` in the register of certified DTS products (ENV-08, 1.1 only)."""
    if ex.profile.params.get("certification_id") != "mandatory":
        return None
    value = ex.header.get("SendApplication/certificationId")
    if value not in gw.certified_products:
        return reject(gw, "X0005", "/Envelope/Header/SendApplication/certificationId")
    return None


def step_signature(gw, ex: Exchange) -> Outcome | None:
    """9. Signature exactly per Table 8-1 (SIG-05); SHA-1 per the profile's ``SHA1`` (SIG-06/07)."""
    try:
        ex.signature = _verified(ex, ex.profile, gw.behaviour.sha1_rule)
    except xmlsig.SignatureProblem as problem:
        ex.verdict["signature"] = {"ok": False, "code": problem.code, "reason": problem.reason}
        return reject(gw, problem.code, problem.field)
    sig = ex.signature
    if sig.signature_method in gw.behaviour.refused_signature_methods:
        ex.verdict["signature"] = {"ok": False, "code": "G0001", "reason": f"{sig.signature_method} not verified"}
        return reject(gw, "G0001")
    ex.verdict["signature"] = {"ok": True, "method": sig.signature_method, "digest": sig.digest_method}
    if sig.uses_sha1:
        ex.warnings.append(error(gw, "W0001"))
    return None


def _envelope_issues(ex: Exchange, profile: Profile) -> list:
    return ex.once(("envelope", profile.id), lambda: profile.validate_envelope(ex.root, "request"))


def _verified(ex: Exchange, profile: Profile, sha1_rule: str | None = None) -> xmlsig.VerifiedSignature:
    """The signature verified as ``profile`` says, or with ``sha1_rule`` as its ``SHA1`` parameter
    (raises ``xmlsig.SignatureProblem``)."""
    sha1_accepted = (sha1_rule or profile.params["SHA1"]) == "accept-with-warning"
    extra_methods, extra_digests = ((xmlsig.RSA_SHA1,), (xmlsig.SHA1,)) if sha1_accepted else ((), ())
    return ex.once(("signature", profile.id, sha1_accepted), lambda: xmlsig.verify_envelope(
        ex.text,
        methods=(xmlsig.RSA_SHA256, xmlsig.ECDSA_SHA256, *extra_methods),
        digests=(xmlsig.SHA256, *extra_digests),
        sha1_refused_code=None if sha1_accepted else "G0007",
    ))


def step_certificate(gw, ex: Exchange) -> Outcome | None:
    """10. Signer certificate, Table 8-2 rows in order: G0008, G0004, G0002, G0003, G0006, G0005; W0002."""
    cert = ex.signature.signer
    intermediates = [*ex.signature.intermediates, *gw.known_intermediates]
    from_identity = ex.header["From/identity"]
    verdict = ex.verdict["certificate"] = {
        "subject": cert.subject.rfc4514_string(), "issuer": cert.issuer.rfc4514_string(),
        "serial": format(cert.serial_number, "x"), "tax_code": certs.tax_code_of(cert),
    }

    def refuse(code: str, reason: str, path: str = "") -> Answer | None:
        verdict.update(ok=False, code=code, reason=reason)
        if code in gw.behaviour.skipped_certificate_rows:       # a row this gateway does not check
            verdict.update(ok=True, unchecked=code)
            return None
        return reject(gw, code, path)

    issued = _issue_time(ex)
    for code, problem in _certificate_rows(gw, ex, cert, intermediates, issued, from_identity):
        refusal = refuse(code, problem, "/Envelope/Header/From/identity" if code == "G0006" else "")
        if refusal is not None:
            return refusal
    verdict["ok"] = True
    if cert.not_valid_after_utc - ex.now < timedelta(days=30):
        ex.warnings.append(error(gw, "W0002"))
    return None


def _certificate_rows(gw, ex: Exchange, cert, intermediates, issued, from_identity):
    """(code, problem) of each failing Table 8-2 row, in its order; computed lazily, so the first refusal
    ends the evaluation. A CRL that cannot be used (SIG-10: neither accept nor refuse) is the row ``E9001``."""
    problem = certs.key_problem(cert)
    if problem:
        yield "G0008", problem
    problem = certs.chain_problem(cert, intermediates, gw.trust_anchors, ex.now)
    if problem:
        yield "G0004", problem
    problem = (issued and certs.validity_problem(cert, issued)) or certs.validity_problem(cert, ex.now)
    if problem:
        yield "G0002", problem
    issuer = certs.issuer_of(cert, intermediates + gw.trust_anchors)
    try:
        if certs.revoked(cert, gw.crls_for(cert), issuer=issuer, at=ex.now):
            yield "G0003", "listed in the issuing CA's CRL"
    except certs.NoUsableCRL as exc:
        yield "E9001", str(exc)
    problem = certs.tax_code_problem(cert, from_identity)
    if problem:
        yield "G0006", problem
    if (cert.issuer, cert.serial_number) not in gw.registered.get(from_identity, set()):
        yield "G0005", f"certificate not registered with customs for {from_identity} (SIG-11)"


def step_issue_time(gw, ex: Exchange) -> Outcome | None:
    """11. ``createMessageIssue`` within [reception − T_age_max, reception + T_skew] (ENV-03)."""
    issued = _issue_time(ex)
    skew = timedelta(seconds=ex.profile.timer("T_skew", gw.time_scale))
    age = timedelta(seconds=ex.profile.timer("T_age_max", gw.time_scale))
    if issued is None or issued > ex.now + skew or issued < ex.now - age:
        ex.verdict["issue_time"] = {"createMessageIssue": ex.header.get("SendApplication/createMessageIssue"),
                                    "gateway_time": format_datetime(ex.now)}
        return reject(gw, "X0004", "/Envelope/Header/SendApplication/createMessageIssue")
    return None


def step_authorisation(gw, ex: Exchange) -> Outcome | None:
    """12. The user acts for ``From/identity`` (ENV-09)."""
    if not authorised(ex.account, ex.header["From/identity"]):
        return reject(gw, "U0002", "/Envelope/Header/From/identity")
    return None


def step_content(gw, ex: Exchange) -> Outcome | None:
    """13. Content structure and lexical rules (DOC-01, TXT-03..05); ENV-05 for function 16."""
    issues = _content_issues(ex)
    if not issues and ex.header["Subject/function"] == "16" and "otp_request_reference" not in gw.behaviour.skipped_checks:
        order_id = content_child(ex.root).findtext(q(PAY, "paymentOrderId"))
        if order_id != ex.header["Subject/reference"]:
            issues.append(_Issue("/Envelope/Header/Subject/reference", "differs from OtpRequest/paymentOrderId"))
    ex.verdict.setdefault("schema", []).extend({"step": 13, "path": i.path, "reason": i.reason} for i in issues)
    if issues:
        return reject(gw, "X0002", issues[0].path)
    return None


def step_query_target(gw, ex: Exchange) -> Outcome | None:
    """14. Queries: E9002 below ``T_poll_min`` (REL-15, a MAY), then the target must exist (E0002)."""
    if ex.header["Subject/function"] != "13":
        return None
    reference = ex.header["Subject/reference"]
    started = ex.now.timestamp() - ex.started_before           # REL-15 counts from starts (REL-01)
    previous = gw.store.note_query_start(reference, started)
    if gw.enforce_poll_interval and previous is not None:
        poll_min = ex.profile.timer("T_poll_min", gw.time_scale) * gw.behaviour.poll_min_factor
        if started - previous < poll_min * (1 - gw.poll_interval_allowance):
            return reject(gw, "E9002")
    sub = gw.store.submission(reference)
    if sub is None or sub.from_identity != ex.header["From/identity"] or sub.type != ex.header["Subject/type"]:
        return Answer("272", (error(gw, "E0002", "/Envelope/Header/Subject/reference"),))
    ex.queried = sub
    return None


def step_duplicate_reference(gw, ex: Exchange) -> Outcome | None:
    """15. A business reference already receipted (entry 1 was 29 or 32) for this tax code, type and
    function (REL-11); the description quotes the earlier reception number."""
    h = ex.header
    if h["Subject/function"] not in ("8", "5", "1"):
        return None
    earlier = gw.store.receipted(h["From/identity"], h["Subject/type"], h["Subject/function"], h["Subject/reference"],
                                 user_ids=gw.session.user_ids)
    if earlier is None:
        return None
    text = f"{gw.describe('E0074')} (số tiếp nhận {earlier.reception_number})"
    return Answer("272", (error(gw, "E0074", "/Envelope/Header/Subject/reference", text),))


def step_field_values(gw, ex: Exchange) -> Outcome | None:
    """16. Rule-column checks (DOC-01, DOC-03) and ENV-06, all S0005 found (at most 100)."""
    if ex.header["Subject/function"] == "13":
        return None
    found = [*_office_errors(gw, ex), *_declaration_errors(gw, ex), *flows.field_errors(gw, ex)]
    if found:
        return Answer("272", tuple(found[:100]))
    return None


CHECKS: list[Callable[[Any, Exchange], Outcome | None]] = [
    step_soap,                  # 1
    step_size,                  # 2
    step_credentials,           # 3
    step_xml,                   # 4
    step_replay,                # 5
    step_version,               # 6
    step_envelope,              # 7
    step_certification,         # 8
    step_signature,             # 9
    step_certificate,           # 10
    step_issue_time,            # 11
    step_authorisation,         # 12
    step_content,               # 13
    step_query_target,          # 14
    step_duplicate_reference,   # 15
    step_field_values,          # 16
    flows.step_state,           # 17
    flows.step_approval,        # 18
]


# ------------------------------------------------------------------------------------------
# Helpers of the steps


@dataclass(frozen=True)
class _Issue:
    path: str
    reason: str


def authorised(account, from_identity: str) -> bool:
    """ENV-09: registered for the tax code, or for the parent of a branch ``<parent>-NNN``."""
    return account is not None and any(certs.tax_code_matches(code, from_identity) for code in account.tax_codes)


def _issue_time(ex: Exchange) -> datetime | None:
    try:
        return parse_datetime(ex.header.get("SendApplication/createMessageIssue") or "")
    except ValueError:
        return None


def _content_issues(ex: Exchange) -> list:
    """Schema issues of the Content child, then a comment/PI/non-NFC node inside it (step 13)."""
    issues = list(ex.once(("content", ex.profile.id), lambda: ex.profile.validate_content(ex.root)))
    if ex.lexical is not None and _in_content(ex, ex.lexical.path):
        issues.append(ex.lexical)
    return issues


def _in_content(ex: Exchange, path: str) -> bool:
    """True if ``path`` designates the Content child or a node below it (step 13, not step 7)."""
    child = content_child(ex.root)
    if child is None:
        return False
    base = ecdi_path(child, ex.profile.repeatable)
    return path == base or path.startswith(base + "/")


# Lexical forms (§4.2) of the Subject/reference types Table 4-2 names. The XSD types Subject/reference
# as the union of all of them; which one a request needs is a co-occurrence rule XSD 1.0 cannot state.
REFERENCE_FORMS = {
    "BusinessRef": re.compile(r"[A-Za-z0-9][A-Za-z0-9._/-]{0,34}"),
    "PaymentOrderId": re.compile(r"PO[0-9]{14}"),
    "GUID": re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"),
}


def _table_4_2_issues(ex: Exchange) -> list[_Issue]:
    """ENV-04/ENV-05 (the profile's Table 4-2), and ENV-08's "certificationId present in 1.1"."""
    h = ex.header
    row = ex.profile.permitted_requests.get((h.get("Subject/type"), h.get("Subject/function")))
    if row is None:
        return [_Issue("/Envelope/Header/Subject/function", "type/function is not a row of Table 4-2")]
    if h.get("procedureType") != row.procedure_type:
        return [_Issue("/Envelope/Header/procedureType", "procedureType does not match Subject/type (Table 4-1)")]
    if ex.profile.params["certification_id"] == "mandatory" and "SendApplication/certificationId" not in h.fields:
        return [_Issue("/Envelope/Header/SendApplication/certificationId", "certificationId is mandatory (ENV-08)")]
    child = content_child(ex.root)
    if child is None or child.tag != row.content:
        path = ecdi_path(child, ex.profile.repeatable) if child is not None else "/Envelope/Body/Content"
        return [_Issue(path, f"Content must hold {etree.QName(row.content).localname} for this type/function")]
    if not REFERENCE_FORMS[row.reference].fullmatch(h.get("Subject/reference") or ""):
        return [_Issue("/Envelope/Header/Subject/reference", f"Subject/reference must be a {row.reference} (Table 4-2)")]
    return []


def _office_errors(gw, ex: Exchange) -> list[ErrorEntry]:
    """ENV-06: the office exists (929/930) or is ``central_office`` (701/702)."""
    h = ex.header
    office = h["To/identity"]
    if h["Subject/type"] in ("701", "702"):
        ok = office == ex.profile.deployment["central_office"]
    else:
        ok = office in ex.profile.offices
    if ok:
        return []
    return [error(gw, "S0005", "/Envelope/Header/To/identity", "Mã đơn vị hải quan nhận không tồn tại hoặc không đúng")]


# Rule-column checks against the test deployment's reference lists (Table 6-1, codes.toml):
# (path below Declaration, code list, Vietnamese description of the S0005).
_LISTED_VALUES = (
    ("Partner/countryCode", "country", "Mã nước của đối tác không có trong danh mục ISO 3166-1"),
    ("Invoice/currency", "currency", "Mã đồng tiền không có trong danh mục ISO 4217"),
    ("GoodsItem/hsCode", "hs_code", "Mã HS không có trong biểu thuế hiện hành"),
    ("GoodsItem/originCountry", "country", "Mã nước xuất xứ không có trong danh mục ISO 3166-1"),
    ("GoodsItem/unit", "unit", "Mã đơn vị tính không có trong danh mục UN/ECE Rec. 20"),
)


def _declaration_errors(gw, ex: Exchange) -> list[ErrorEntry]:
    """Table 6-1 Rule-column checks of a Declaration (also inside an Amendment), in document order
    per rule: declaration type against the message type, listed codes, invoice date against
    createMessageIssue, DOC-03 line numbers and total."""
    child = content_child(ex.root)
    decl = child if child is not None and child.tag == q(DEC, "Declaration") else None
    if decl is None and child is not None:
        decl = child.find(q(DEC, "Declaration"))
    if decl is None:
        return []
    profile, rep = ex.profile, ex.profile.repeatable
    found = []

    def s0005(el, description):
        found.append(error(gw, "S0005", ecdi_path(el, rep), description))

    def dec(path):
        return "/".join(q(DEC, step) for step in path.split("/"))

    capability = profile.permitted_requests[(ex.header["Subject/type"], "8")].capability   # import | export
    type_code = decl.find(dec("typeCode"))
    if type_code.text not in profile.codes[f"declaration_type_{capability}"]:
        s0005(type_code, "Mã loại hình không phù hợp với loại tờ khai (nhập khẩu/xuất khẩu)")
    for path, code_list, description in _LISTED_VALUES:
        for el in decl.iterfind(dec(path)):
            if el.text not in profile.codes[code_list]:
                s0005(el, description)
    invoice_date = decl.find(dec("Invoice/date"))
    if invoice_date.text > ex.header["SendApplication/createMessageIssue"][:10]:   # its own UTC offset
        s0005(invoice_date, "Ngày hóa đơn sau ngày tạo thông điệp")
    items = decl.findall(dec("GoodsItem"))
    for n, item in enumerate(items, start=1):
        line_no = item.find(dec("lineNo"))
        if line_no.text != str(n):
            s0005(line_no, f"Số thứ tự dòng hàng phải là {n} (đánh số liên tục 1, 2, 3…)")
    expected = sum((Decimal(item.findtext(dec("value"))) for item in items), Decimal(0))
    total = decl.find(dec("Invoice/totalValue"))
    if Decimal(total.text) != expected:
        s0005(total, f"Tổng trị giá hóa đơn không bằng tổng trị giá các dòng hàng ({expected.normalize():f})")
    return found


# ------------------------------------------------------------------------------------------
# The run


def prepare(gw, ex: Exchange) -> None:
    """The pure CPU work of steps 1, 4, 7, 9 and 13 — SOAP and message-text parsing, XSD validation and
    its explanation, the signature — done ahead, so that app.py can run it off the event loop within a time budget (issue 13:
    no request stalls another). The steps later find its results (``Exchange.once``); it reads only the
    gateway's profiles, records nothing and never raises."""
    try:
        ex.call = ex.read_soap()[0]
        s_max = gw.default_profile.params["S_max"]
        if len(ex.call.message_text) > s_max or ex.parse(s_max) is not None:
            return
        profile = _profile_of(gw, ex)
        if profile is None:
            return
        ex.once(("lexical", profile.id), lambda: lexical.lexical_problem(ex.root, profile.repeatable))
        clean = not _envelope_issues(ex, profile)
        if clean or ex.beyond is not None:      # step 13's issues also name a too-deep node at step 7
            ex.once(("content", profile.id), lambda: profile.validate_content(ex.root))
        if clean:
            _verified(ex, profile)
    except Exception:                          # noqa: BLE001 — the steps meet the same problem and answer it
        return


def portable_preparation(gw, body: bytes, known: list[str]) -> dict:
    """``prepare`` on a request's octets, its results as plain data for ``adopt`` wherever it ran (a worker process
    of ``cpu_pool``, or a thread of the gateway's when none can start), and where the passwords ``known`` and the
    secret elements are in the octets the evidence row keeps (so the
    evidence writer does not scan megabytes). A signature travels as its certificates' DER (its
    ``signed_root`` stays behind: no step reads it)."""
    ex = Exchange(HttpRequest("", {}, body), None, "")
    prepare(gw, ex)
    portable = {"_secrets": redaction.find_secrets(body, ex.text, known)}
    for key, (done, value) in ex._once.items():
        if done and isinstance(value, xmlsig.VerifiedSignature):
            value = _PortableSignature(value.signer.public_bytes(DER), [c.public_bytes(DER) for c in value.intermediates],
                                       value.signature_method, value.digest_method)
        try:
            pickle.dumps(value)
        except Exception:                      # noqa: BLE001 — an odd exception: the step recomputes it
            continue
        portable[key] = (done, value)
    if ex._parsed:                             # the tree travels as octets lxml re-reads in C (a document
        beyond = _index_path(ex.beyond) if ex.beyond is not None else None   # deeper than libxml2 took expat)
        tree = etree.tostring(ex.root.getroottree()) if ex.root is not None else None
        portable["_parsed"] = (tree, beyond, ex._xml_problem)
    return portable


def adopt(ex: Exchange, portable: dict) -> None:
    """Take the results ``portable_preparation`` computed for this exchange's octets."""
    portable = dict(portable)
    parsed = portable.pop("_parsed", None)
    ex.secrets = portable.pop("_secrets", None)
    for key, (done, value) in portable.items():
        if done and isinstance(value, _PortableSignature):
            value = value.restored()
        ex._once[key] = (done, value)
    if parsed is not None:
        tree, beyond, ex._xml_problem = parsed
        ex._parsed = True
        if tree is not None:
            ex.root = etree.fromstring(tree, hardened_parser())
            ex.beyond = _by_index_path(ex.root, beyond) if beyond is not None else None
            if ex._xml_problem is None:
                ex.header = read_header(ex.root)
    soap_call = ex._once.get("soap")
    if soap_call is not None and soap_call[0]:
        ex.call = soap_call[1][0]


def _index_path(el: etree._Element) -> list[int]:
    path = []
    while el.getparent() is not None:
        path.append(el.getparent().index(el))
        el = el.getparent()
    return path[::-1]


def _by_index_path(root: etree._Element, path: list[int]) -> etree._Element:
    for index in path:
        root = root[index]
    return root


@dataclass
class _PortableSignature:
    signer: bytes
    intermediates: list[bytes]
    signature_method: str
    digest_method: str

    def restored(self) -> xmlsig.VerifiedSignature:
        return xmlsig.VerifiedSignature(_certificate(self.signer), [_certificate(c) for c in self.intermediates],
                                        self.signature_method, self.digest_method, signed_root=None)


_CERTIFICATES = BoundedMemo(1024)


def _certificate(der: bytes) -> x509.Certificate:
    """One object per certificate seen (bounded): the checks of step 10 remember their findings about
    that object (``certs``), so a signer's chain, CRL and key are verified once, not on every request."""
    return _CERTIFICATES.get(der, lambda: x509.load_der_x509_certificate(der))


def abandoned(gw, ex: Exchange) -> Response:
    """REL-02 / TRN-08: the request could not be evaluated within its budget; E9001, nothing recorded.
    The reply echoes the request's header if it was read by then (``prepare`` may still be running)."""
    late = Exchange(ex.request, ex.now, ex.case_id, header=ex.header)
    return finish(gw, late, reject(gw, "E9001"), recordable=False)


def evaluate(gw, ex: Exchange) -> Response:
    """Evaluate one request and return the response; never raises.

    The scenario rule is chosen once, from the facts readable before any check runs, so that faults
    which must pre-empt evaluation (overload, reset before reading) can; ``faults`` interprets it.
    """
    try:
        _read_facts(gw, ex)
        ex.rule = gw.case.first_match(ex.facts())
        early = faults.before(gw, ex)
    except StorageUnavailable:                 # the shared database is away: the gateway answers 503 (app.py)
        raise
    except Exception:                          # noqa: BLE001
        return _fault(_internal_error(ex))
    if early is not None:
        return faults.shape(gw, ex, early) if early.status == 200 else early
    natural = _run_checks(gw, ex)
    try:
        outcome = apply_rule(gw, ex, natural)
        response = (_fault(outcome) if isinstance(outcome, Fault)
                    else finish(gw, ex, outcome, recordable=natural is None or _is_business_answer(natural)))
        return faults.shape(gw, ex, response)
    except StorageUnavailable:
        raise
    except Exception:                          # noqa: BLE001 — the gateway must answer every request
        return _fault(_internal_error(ex))


def _run_checks(gw, ex: Exchange) -> Outcome | None:
    """The checks in order; the names of those passed go into the verdict (one string per name, shared by
    every verdict: thousands of held requests each kept their own copies)."""
    passed = ex.verdict.setdefault("steps_passed", [])
    for name, step in checks_run(gw.behaviour):
        try:
            outcome = step(gw, ex)
        except StorageUnavailable:
            raise
        except Exception:                      # noqa: BLE001
            outcome = _internal_error(ex)
        if outcome is not None:
            ex.verdict["failed_step"] = name
            return outcome
        passed.append(name)
    return None


def checks_run(behaviour) -> list[tuple[str, Callable[[Any, Exchange], Outcome | None]]]:
    """(name, step) in the order this gateway runs them: Table 7-3 unless its behaviour reorders or skips."""
    steps = [(sys.intern(step.__name__.removeprefix("step_")), step) for step in CHECKS]
    if behaviour.check_order:
        by_name = dict(steps)
        steps = [(sys.intern(name), by_name[name]) for name in behaviour.check_order]
    return [(name, step) for name, step in steps if name not in behaviour.skipped_checks]


def _read_facts(gw, ex: Exchange) -> None:
    """Header and attempt number for evidence and rule matching, read before any check (a request
    that is not a readable ``Send`` has no facts; step 1 answers it)."""
    if ex.call is None:
        try:
            ex.call = ex.read_soap()[0]
        except soap.SoapFault:
            return
    ex.parse(parse_limit(gw))
    message_id = ex.header.get("Reference/messageId")
    if message_id:
        ex.attempt = gw.store.count_reception(message_id)


def apply_rule(gw, ex: Exchange, natural: Outcome | None) -> Outcome | None:
    """The case's scenario rule on the natural outcome (interpreted in ``faults``)."""
    return faults.after(gw, ex, natural)


def finish(gw, ex: Exchange, outcome: Outcome | None, *, recordable: bool) -> Response:
    """Step 19 and the replies themselves: record or answer, sign, frame."""
    if isinstance(outcome, Fault):
        return _fault(outcome)
    if isinstance(outcome, Replay):
        return _reply(outcome.text)
    function = ex.header.get("Subject/function")
    if outcome is None:
        if function == "13":
            return _answer_query(gw, ex)
        outcome = Answer("32" if ex.header.get("Subject/type") == "702" and function == "8" else "29")
    if outcome.function == "271":                         # W codes never go in a 271 (§5.3)
        code = outcome.errors[0].code
        if gw.behaviour.status_for(code):                 # TRN-06's and TRN-07's seam: how a refusal travels
            return Response(gw.behaviour.status_for(code), f"{gw.behaviour.status_for(code)} {code}".encode())
        if code in gw.behaviour.fault_for_codes:
            return _fault(Fault("soap:Client", outcome.errors[0].description))
        if code in gw.behaviour.recorded_refusals and _recordable_text(ex):
            return _reply(_record(gw, ex, "271", list(outcome.errors)))
        return _reply(gw.replies.build(ex.header.fields, "271", _result(list(outcome.errors), sequence=0)))
    errors = [*outcome.errors, *ex.warnings]
    if recordable and function != "13":                   # RPL-02: a submission's reply is its entry 1
        try:
            return _reply(_record(gw, ex, outcome.function, errors))
        except AlreadyRecorded:    # another gateway process recorded this messageId meanwhile: a replay (REL-10)
            return finish(gw, ex, step_replay(gw, ex), recordable=False)
    return _reply(gw.replies.build(ex.header.fields, outcome.function, _result(errors, sequence=0)))


def _recordable_text(ex: Exchange) -> bool:
    """A request read far enough to be recorded: its call, tree and a messageId not recorded yet."""
    return (ex.call is not None and ex.root is not None and bool(ex.header.get("Reference/messageId"))
            and ex.header.get("Subject/function") != "13")


def _record(gw, ex: Exchange, function: str, errors: list[ErrorEntry]) -> bytes:
    """Record the submission with entry 1 (REL-12: committed before the reply leaves), with what
    recording it does (``flows.on_record``: order, OTP, approval) in the same transaction."""
    h = ex.header
    scenario = gw.case.scenario
    script: list[dict] = []
    if function == "29" and h["Subject/type"] in ("929", "930"):
        steps = scenario.history if h["Subject/function"] == "8" else scenario.amend_cancel_history
        script = [step.to_data() for step in steps]

    with gw.store.transaction():
        extra = flows.on_record(gw, ex, function)

        def entry1(reception_number: str) -> tuple[str, bytes]:
            result = _result(errors, sequence=1, reception_number=reception_number if function == "29" else None,
                             **extra)
            return function, gw.replies.build(h.fields, function, result)

        entry = gw.store.record(message_id=h.message_id, case_id=ex.case_id, user_id=ex.call.user_id,
                                header=h.fields, request_text=stored_text(gw, ex.text), received_at=ex.now.timestamp(),
                                script=script,
                                pending_queries=scenario.pending_queries, make_entry1=entry1,
                                declaration_number=extra.get("declaration_number"))
    if ex.mail and not ex.mail_withheld:
        gw.mailbox.send(**ex.mail)
    return entry.text


def _answer_query(gw, ex: Exchange) -> Response:
    """RPL-03: the lowest visible entry above ``afterSequence``, else reveal the next scripted entry
    (after ``pending_queries`` quiet queries), else a transient 12."""
    sub = ex.queried
    after = int(content_child(ex.root).findtext(q(ENV, "afterSequence")))
    floor = after + gw.behaviour.query_after_offset          # the seam of RPL-03: 0 is the spec's
    entries = gw.store.entries(sub.message_id)
    visible = [e for e in entries if e.sequence > 1 or not gw.behaviour.forgets_entry1]
    newer = next((e for e in visible if e.sequence > floor), None)
    if newer is not None:
        return _reply(newer.text)
    if sub.script and after == entries[-1].sequence and gw.store.note_quiet_query(sub.message_id) > sub.pending_queries:
        entry = _reveal(gw, sub)
        for _ in range(min(ex.skip_ahead, len(sub.script) - 1)):   # RPL-03 allows a higher entry first
            entry = _reveal(gw, gw.store.submission(sub.message_id))
        while entry.sequence <= floor and gw.store.submission(sub.message_id).script:
            entry = _reveal(gw, gw.store.submission(sub.message_id))
        return _reply(entry.text)
    return _reply(gw.replies.build(ex.header.fields, "12", _result(ex.warnings, sequence=0)))


def _reveal(gw, sub: Submission):
    """Make the submission's next scripted history entry visible: build, sign and store it."""
    step = HistoryStep.from_data(sub.script[0])
    number = gw.store.declaration_number(sub.message_id) if step.function == "30" else sub.declaration_number
    errors = [error(gw, e.code, e.field, e.description) for e in (*step.errors, *step.warnings)]   # RPL-01
    taxes = {}
    if step.function == "33":
        due = (gw.clock.now() + timedelta(days=step.taxes_due_days)).astimezone(VN_TZ).date().isoformat()
        taxes = {"taxes": [Tax(t, a) for t, a in step.taxes],
                 "taxes_total_vnd": str(sum(int(a) for _, a in step.taxes)), "taxes_due_date": due}

    def entry(sequence: int) -> tuple[str, bytes]:
        result = _result(errors, sequence=sequence, declaration_number=number, channel=step.channel,
                         cleared_at=format_datetime(gw.clock.now()) if step.function == "35" else None, **taxes)
        return step.function, gw.replies.build(sub.header, step.function, result)

    revealed = gw.store.append_entry(sub.message_id, entry)
    flows.after_reveal(gw, sub, step.function)
    return revealed


def _result(errors: list[ErrorEntry], *, sequence: int, **fields) -> Result:
    """RPL-01: resultCode is the first non-W code, or 00000."""
    code = next((e.code for e in errors if not e.code.startswith("W")), "00000")
    return Result(result_code=code, sequence=sequence, errors=list(errors), **fields)


def _reply(text: bytes) -> Response:
    return Response(200, soap.send_response_body(text), text)


def _fault(fault: Fault) -> Response:
    return Response(500, soap.fault_body(fault.code, fault.text))


def _is_business_answer(outcome: Outcome | None) -> bool:
    """A natural 272/273: the request passed every message-level check (step 5 included: its
    messageId is not recorded yet), so a non-query is a submission."""
    return isinstance(outcome, Answer) and outcome.function in ("272", "273")


def _describe_outcome(outcome: Outcome | None) -> dict:
    if outcome is None:
        return {"accepted": True}
    if isinstance(outcome, Answer):
        return {"function": outcome.function, "codes": [e.code for e in outcome.errors]}
    if isinstance(outcome, Replay):
        return {"replay": True}
    return {"fault": outcome.code, "text": outcome.text}


def _internal_error(ex: Exchange) -> Fault:
    """soap:Server for the client (TRN-07); the traceback goes to the evidence verdict only."""
    ex.verdict.setdefault("internal_error", []).append(traceback.format_exc())
    return Fault("soap:Server", INTERNAL_ERROR)
