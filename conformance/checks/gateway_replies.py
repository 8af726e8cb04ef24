"""What a gateway answered, judged from the octets alone (the harness plays the DTS; issue 16).

Every check here takes message texts — the request the harness sent, the reply the gateway returned —
and the profile; none talks to the gateway. The CGW case families call them and name the requirement:
the code a Table 7-3 step gives (RPL-05 and the step's own requirement), the reply's Result (RPL-01),
its header (ENV-10, Table 4-3) and its signature (SIG-14, by the codec and by ``xmlsec1``).
"""

from __future__ import annotations

import re
import shutil
import subprocess
import tempfile
import unicodedata
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from cryptography import x509
from lxml import etree

from ..case import Check
from ..codec import certs, safexml, xmlsig
from ..codec.envelope import Header, Result, content_child, parse_datetime, read_header
from ..reference_dts.replies import gateway_certificate_problem

GUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
BUSINESS_REPLIES = ("271", "272", "273")
DECLARED = ("30", "10", "33", "31", "32", "35")   # a declaration's entries from 30 on (Table 7-2 order)


@dataclass(frozen=True)
class Reply:
    """A reply message text read without judging it: its header fields and its Result."""

    text: bytes
    header: Header
    result: Result

    @property
    def function(self) -> str:
        return self.header.get("Subject/function") or ""

    @property
    def codes(self) -> list[str]:
        return [e.code for e in self.result.errors]

    @property
    def first_error(self):
        return next((e for e in self.result.errors if not e.code.startswith("W")), None)

    def summary(self) -> str:
        """``271 X0002 /Envelope/Header/...`` — what a report line shows of it."""
        first = self.first_error
        field = f" {first.field}" if first is not None and first.field else ""
        return f"{self.function} {self.result.result_code}{field}".strip()


def read_reply(text: bytes | None, profile) -> Reply | str:
    """The reply, or why it cannot be read (a one-line reason)."""
    if text is None:
        return "no reply message text (no SendResponse)"
    try:
        root = safexml.parse_message_text(text, max_bytes=profile.params["S_max"])
    except safexml.XmlRefused as exc:
        return f"the reply is not readable: {exc.code} {exc.reason}"
    result_el = content_child(root)
    if result_el is None:
        return "the reply's Content does not hold one Result"
    try:
        return Reply(text, read_header(root), Result.from_element(result_el))
    except (KeyError, ValueError) as exc:
        return f"the reply's Result cannot be read: {exc}"


def _unreadable(reason: str) -> Check:
    return Check(False, reason)


# ------------------------------------------------------------------------------------------
# The answer a request gets (Table 7-3, §5.3)


def answered(text: bytes | None, profile, function: str, code: str | None = None, *, field: str | None = None,
             why: str = "") -> Check:
    """The reply is ``function`` with ``code`` as its resultCode and first non-W Error/code (and, where
    given, ``field`` as that error's Error/field). ``why`` says which step or rule asks for it."""
    reply = read_reply(text, profile)
    expected = f"{function} {code or ''}".strip() + (f" at {field}" if field is not None else "")
    because = f" ({why})" if why else ""
    if isinstance(reply, str):
        return Check(False, f"expected {expected}{because}; {reply}", expected=expected, observed=reply)
    first = reply.first_error
    got_field = first.field if first is not None else None
    first_code = first.code if first is not None else "00000"
    ok = reply.function == function and (code is None or reply.result.result_code == first_code == code)
    if ok and field is not None and got_field != field:
        ok = False
    observed = reply.summary() + (f" (codes {' '.join(reply.codes)})" if reply.codes else "")
    detail = {"function": reply.function, "result_code": reply.result.result_code, "codes": reply.codes,
              "field": got_field}
    if ok:
        return Check(True, f"answered {observed}{because}", detail)
    return Check(False, f"answered {observed}, expected {expected}{because}", detail,
                 expected=expected, observed=observed)


def warned(text: bytes | None, profile, code: str) -> Check:
    """The reply carries the warning ``code`` among its Error/codes (§5.3: W codes in non-271 replies)."""
    reply = read_reply(text, profile)
    if isinstance(reply, str):
        return Check(False, reply)
    if code in reply.codes:
        return Check(True, f"the {reply.summary()} reply carries {code}")
    return Check(False, f"the {reply.summary()} reply carries no {code} (codes: {' '.join(reply.codes) or 'none'})")


def same_description(first: bytes | None, second: bytes | None, profile, what: str, other: str) -> Check:
    """TRN-12: two refusals that must not tell their causes apart carry the same code and description."""
    a, b = read_reply(first, profile), read_reply(second, profile)
    if isinstance(a, str) or isinstance(b, str):
        return Check(False, a if isinstance(a, str) else b)
    ea, eb = a.first_error, b.first_error
    said = [(e.code, e.description) if e else (r.function, "") for r, e in ((a, ea), (b, eb))]
    if said[0] == said[1]:
        return Check(True, f"{what} and {other} are answered alike: {said[0][0]} {said[0][1]!r}")
    return Check(False, f"{what} is answered {said[0]}, {other} {said[1]}: the difference tells them apart")


def accepted(text: bytes | None, profile, function: str = "29", why: str = "") -> Check:
    """The request was recorded: ``function`` (29, or 32 to a 702/8) with resultCode 00000."""
    return answered(text, profile, function, "00000", why=why)


# ------------------------------------------------------------------------------------------
# RPL-01: the Result of Table 7-1


def required_elements(function: str, request_type: str, request_function: str, sequence: int) -> list[str]:
    """Table 7-1's "Present" column: the Result fields a reply of ``function`` must hold, given the request it
    answers (a declaration's entries from 30 on, and every entry of an amendment or cancellation, carry the
    declaration number)."""
    need = []
    if function == "29":
        need.append("reception_number")
    if request_type in ("929", "930") and sequence >= 1 and (
            request_function in ("5", "1") or function in DECLARED):
        need.append("declaration_number")
    if function == "10":
        need.append("channel")
    if function == "33":
        need += ["taxes", "taxes_total_vnd", "taxes_due_date"]
    if function == "35":
        need.append("cleared_at")
    if function == "29" and (request_type, request_function) in (("701", "8"), ("702", "16")):
        need += ["payment_order_id", "otp_sender", "otp_expires_at"]
    if function in ("32", "273") and (request_type, request_function) == ("702", "8"):
        need.append("payment_order_id")
    return need


def result_rules(text: bytes | None, profile, *, request_type: str = "", request_function: str = "") -> Check:
    """RPL-01: the reply passes the reply schema (Tables 4-3 and 7-1), holds the elements its function
    requires for the request it answers, and its Errors obey §5.3: in 271/272/273 at least one non-W
    code, non-W codes before W codes, resultCode = the first non-W code; elsewhere only W codes and
    00000; each code may be carried by that function; each description is non-empty text in NFC."""
    reply = read_reply(text, profile)
    if isinstance(reply, str):
        return _unreadable(reply)
    root = safexml.parse_message_text(text, max_bytes=profile.params["S_max"])
    problems = [f"{i.path}: {i.reason}" for i in profile.validate_envelope(_without_signature(root), "reply")][:3]
    result, function = reply.result, reply.function
    for name in required_elements(function, request_type, request_function, result.sequence):
        if not getattr(result, name):
            problems.append(f"a {function} to {request_type}/{request_function} lacks {name}")
    codes = reply.codes
    non_w = [c for c in codes if not c.startswith("W")]
    if function in BUSINESS_REPLIES:
        if not non_w:
            problems.append(f"a {function} carries no non-W Error/code")
        elif result.result_code != non_w[0]:
            problems.append(f"resultCode {result.result_code} is not the first non-W code {non_w[0]}")
        if non_w and any(c.startswith("W") for c in codes[:codes.index(non_w[-1])]):
            problems.append(f"a W code precedes a non-W code ({' '.join(codes)})")
    else:
        if non_w:
            problems.append(f"a {function} carries non-W codes {' '.join(non_w)}")
        if result.result_code != "00000":
            problems.append(f"a {function} has resultCode {result.result_code}, not 00000")
    for code in codes:
        known = profile.result_codes.get(code)
        if known is None:
            problems.append(f"Error/code {code} is not a code of §5.3 in {profile.id}")
        elif known.functions and function not in known.functions:
            problems.append(f"{code} may not appear in a {function} reply")
    for e in result.errors:
        if not e.description or unicodedata.normalize("NFC", e.description) != e.description:
            problems.append(f"the description of {e.code} is empty or not in NFC")
    if problems:
        return Check(False, f"the {reply.summary()} reply breaks Table 7-1/§5.3: " + "; ".join(problems),
                     {"problems": problems})
    return Check(True, f"the {reply.summary()} reply's Result is as Table 7-1 and §5.3 require")


def _without_signature(root: etree._Element) -> etree._Element:
    """The reply as the schema sees it: Table 4-3's header and Table 7-1's Result (the signature is SIG-14's)."""
    copy = etree.fromstring(etree.tostring(root))
    for sig in copy.findall(f"{{{xmlsig.DS}}}Signature"):
        copy.remove(sig)
    return copy


# ------------------------------------------------------------------------------------------
# ENV-10: the reply header of Table 4-3


@dataclass(frozen=True)
class Deployment:
    """What Table 4-3 needs of the deployment: the highest accepted version and ``central_office``."""

    accepted_versions: tuple[str, ...]
    central_office: str

    @property
    def version_placeholder(self) -> str:
        return max(self.accepted_versions, key=lambda v: tuple(int(p) for p in v.split(".")))


PLACEHOLDERS = {"procedureType": "0", "From/name": "-", "To/name": "-", "To/identity": "0000000000",
                "Subject/type": "000", "Subject/reference": "", "Subject/receiveApplication": "-"}


def expected_header(request: Header | None, deployment: Deployment) -> dict[str, str]:
    """Table 4-3's values for a reply to ``request`` (None: unreadable — the placeholders). A reply to a query
    names the queried submission (the query's Subject/reference), any other the request's messageId."""
    if request is None:
        return {**PLACEHOLDERS, "Reference/version": deployment.version_placeholder,
                "From/identity": deployment.central_office, "Subject/sendApplication": "CGW"}
    query = request.get("Subject/function") == "13"
    return {
        "procedureType": request.get("procedureType"), "Reference/version": request.get("Reference/version"),
        "From/name": request.get("To/name"), "From/identity": request.get("To/identity"),
        "To/name": request.get("From/name"), "To/identity": request.get("From/identity"),
        "Subject/type": request.get("Subject/type"),
        "Subject/reference": request.get("Subject/reference") if query else request.get("Reference/messageId"),
        "Subject/sendApplication": "CGW", "Subject/receiveApplication": request.get("Subject/sendApplication"),
    }


def _header_of(text: bytes | None) -> Header | None:
    if text is None:
        return None
    try:
        return read_header(safexml.parse_message_text(text))
    except (safexml.XmlRefused, KeyError, ValueError):
        return None


def reply_header(request: bytes | None, reply_text: bytes | None, profile, deployment: Deployment, *,
                 submission: bytes | None = None, readable: bool = True) -> Check:
    """ENV-10: the reply header follows Table 4-3. ``request`` is the request answered; ``submission``
    the submission's request when the reply is a history entry delivered to a query; ``readable`` False
    when the request was sent unreadable on purpose (the placeholders apply)."""
    reply = read_reply(reply_text, profile)
    if isinstance(reply, str):
        return _unreadable(reply)
    asked = _header_of(request) if readable else None
    if readable and asked is None:
        return Check(False, "the request sent cannot be read back (a harness fault)", undecided=True)
    want = expected_header(_header_of(submission) if submission is not None else asked, deployment)
    problems = [f"{path} is {reply.header.get(path)!r}, Table 4-3 wants {value!r}"
                for path, value in want.items() if reply.header.get(path) != value]
    message_id = reply.header.get("Reference/messageId") or ""
    if not GUID.fullmatch(message_id):
        problems.append(f"Reference/messageId {message_id!r} is not a lower-case GUID")
    elif asked is not None and message_id == asked.get("Reference/messageId"):
        problems.append("Reference/messageId repeats the request's instead of a fresh one")
    if reply.header.get("SendApplication/certificationId") is not None:
        problems.append("the reply carries a certificationId (Table 4-3: absent)")
    if problems:
        return Check(False, f"the {reply.summary()} reply's header breaks Table 4-3: " + "; ".join(problems),
                     {"problems": problems})
    return Check(True, f"the {reply.summary()} reply's header follows Table 4-3"
                       + ("" if readable else " with its placeholders"))


# ------------------------------------------------------------------------------------------
# SIG-14: the reply's signature


def _anchors(sign_anchor_pem: Path) -> list[x509.Certificate] | str:
    try:
        return certs.load_pem_chain(sign_anchor_pem)
    except (OSError, ValueError) as exc:
        return f"the statement's cgw_sign_anchor {sign_anchor_pem} cannot be read: {exc}"


def reply_signature(text: bytes | None, sign_anchor_pem: Path) -> Check:
    """SIG-14 by the codec: exactly the Table 8-1 shape with RSA-SHA256 and SHA-256, valid over the whole
    reply, by a certificate with keyUsage digitalSignature issued under ``cgw_sign_anchor`` and valid at
    the reply's createMessageIssue."""
    if text is None:
        return _unreadable("no reply message text to verify")
    anchors = _anchors(sign_anchor_pem)
    if isinstance(anchors, str):
        return Check(False, anchors, undecided=True)
    try:
        verified = xmlsig.verify_envelope(text, methods=(xmlsig.RSA_SHA256,), digests=(xmlsig.SHA256,))
    except xmlsig.SignatureProblem as exc:
        return Check(False, f"the reply's signature is not as Table 8-1 with RSA-SHA256: {exc.reason}")
    except safexml.XmlRefused as exc:
        return Check(False, f"the reply is not readable: {exc.reason}")
    try:
        issued = parse_datetime(read_header(verified.signed_root)["SendApplication/createMessageIssue"])
    except (KeyError, TypeError, ValueError) as exc:
        return Check(False, f"the reply's createMessageIssue cannot be read: {exc}")
    problem = gateway_certificate_problem(verified.signer, verified.intermediates, anchors, issued)
    if problem is None:
        try:
            usage = verified.signer.extensions.get_extension_for_class(x509.KeyUsage).value
            if not usage.digital_signature:
                problem = "the gateway certificate's keyUsage lacks digitalSignature"
        except x509.ExtensionNotFound:
            problem = "the gateway certificate has no keyUsage"
    if problem:
        return Check(False, f"the reply is signed, but {problem} (cgw_sign_anchor)")
    return Check(True, "the reply is signed per Table 8-1 with RSA-SHA256 by "
                       f"{verified.signer.subject.rfc4514_string()}, issued under cgw_sign_anchor")


def xmlsec1_verifies(text: bytes | None, sign_anchor_pem: Path) -> Check:
    """SIG-14 by a second implementation (libxmlsec1 over OpenSSL): the signature and the chain to
    ``cgw_sign_anchor``, with only the empty Reference URI enabled. Without the tool: INCONCLUSIVE."""
    tool = shutil.which("xmlsec1")
    if tool is None:
        return Check(False, "xmlsec1 is not installed on the harness machine (Debian package xmlsec1)",
                     undecided=True)
    if text is None:
        return _unreadable("no reply message text to verify")
    with tempfile.TemporaryDirectory(prefix="ecdi-xmlsec1-") as folder:
        reply = Path(folder) / "reply.xml"
        reply.write_bytes(text)
        cmd = [tool, "--verify", "--enabled-reference-uris", "empty", "--trusted-pem", str(sign_anchor_pem),
               "--verification-gmt-time", _signing_time(text), str(reply)]
        try:
            done = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
        except subprocess.TimeoutExpired:
            return Check(False, "xmlsec1 did not finish within 60 s", undecided=True)
    said = (done.stdout + done.stderr).strip().splitlines()
    if done.returncode == 0 and "OK" in said:
        return Check(True, "xmlsec1 --verify: OK (signature and chain to cgw_sign_anchor)")
    return Check(False, f"xmlsec1 --verify refuses the reply: {said[-1] if said else done.returncode}",
                 {"xmlsec1": said[-5:]})


def _signing_time(text: bytes) -> str:
    """The reply's createMessageIssue as xmlsec1's ``YYYY-MM-DD HH:MM:SS`` UTC: the chain is judged when the
    gateway signed (a test gateway's own clock may be set ahead, §2.1); now when it cannot be read."""
    try:
        moment = parse_datetime(_header_of(text)["SendApplication/createMessageIssue"]).astimezone(timezone.utc)
    except (TypeError, KeyError, ValueError):
        moment = datetime.now(timezone.utc)
    return moment.strftime("%Y-%m-%d %H:%M:%S")


# ------------------------------------------------------------------------------------------
# REL-02: the synchronous reply within T_cgw


def answered_within(exchanges, limit_s: float, tolerance_s: float, again=None) -> Check:
    """REL-02: each exchange's response ended within ``limit_s`` (T_cgw, scaled) of the request's sending,
    plus the tolerance (the harness times from before its request leaves to after the response arrives: the
    gateway's own span is shorter). Most replies slow is a FAIL. A minority is undecided on its own — as
    likely the machine's load on the way (connection, TLS, queueing) — and judged by ``again``, a second
    sample of the same requests: a kind of request slow in both is the gateway's (FAIL), a one-off stall
    stays undecided (the case runs again, alone). Slow exchanges name their windows for the lag rule."""
    timed, slow = _timed(exchanges, limit_s + tolerance_s)
    if not timed:
        return Check(False, "no timed exchange to judge", undecided=True)
    took = _took(max(timed, key=_took))
    if not slow:
        return Check(True, f"{len(timed)} replies, the slowest in {took:.3f} s (T_cgw {limit_s:g} s)")
    bound = f"T_cgw {limit_s:g} s (+{tolerance_s:g} s)"
    sporadic = 2 * len(slow) <= len(timed)
    if not sporadic or again is None:
        return _slow(f"{len(slow)} of {len(timed)} replies took longer than {bound}, the slowest {took:.3f} s "
                     f"(exchange #{max(slow, key=_took).seq})"
                     + (": too few to tell the gateway from the load on the way" if sporadic else ""),
                     slow, limit_s + tolerance_s, undecided=sporadic)
    _, slow_again = _timed(again, limit_s + tolerance_s)
    kinds = {request_kind(ex) for ex in slow}
    repeated = [ex for ex in slow_again if request_kind(ex) in kinds]
    if not repeated:
        return _slow(f"{len(slow)} of {len(timed)} replies took longer than {bound}: #"
                     + ", #".join(str(ex.seq) for ex in slow) + "; none of their kinds again in a second "
                     f"sample: a one-off stall, not judged", slow, limit_s + tolerance_s, undecided=True)
    pairs = []
    for kind in sorted({request_kind(ex) for ex in repeated}, key=str):
        first, second = (max((ex for ex in sample if request_kind(ex) == kind), key=_took) for sample in (slow, repeated))
        pairs.append(f"{_kind_text(kind)}: #{first.seq} {_took(first):.3f} s, again #{second.seq} {_took(second):.3f} s")
    more = f"; {len(pairs) - 3} more kinds" if len(pairs) > 3 else ""
    return _slow(f"the same kind of request answered later than {bound} in two samples "
                 f"({'; '.join(pairs[:3])}{more})",
                 repeated, limit_s + tolerance_s)


def request_kind(ex) -> tuple:
    """What REL-02's second sample compares: the request's type and function and the answer it got (a query
    answered 30 is not one answered 12), so only the same treatment twice slow counts as reproducible."""
    return ex.type, ex.function, ex.reply_function or ex.response_status, tuple(ex.reply_codes or ())[:1]


def _kind_text(kind: tuple) -> str:
    kind_type, function, answer, codes = kind
    asked = f"{kind_type}/{function}" if function else "an unreadable request"
    return f"{asked} answered {answer}" + (f" {codes[0]}" if codes else "")


def _took(ex) -> float:
    return ex.responded_at - ex.received_at


def _timed(exchanges, bound_s: float) -> tuple[list, list]:
    timed = [ex for ex in exchanges if ex.received_at and ex.responded_at]
    return timed, [ex for ex in timed if _took(ex) > bound_s]


def _slow(message: str, slow: list, bound_s: float, undecided: bool = False) -> Check:
    return Check(False, message, {"windows": [[ex.received_at, ex.responded_at] for ex in slow],
                                  "shortfall_s": max(_took(ex) for ex in slow) - bound_s}, undecided=undecided)
