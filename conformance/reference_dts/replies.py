"""Reading a reply before acting on it (RPL-06): hardened parse, signature, schema, correlation.

``ReplyReader.read`` either returns a ``Reply`` built from the *signed* tree (never from the raw
input: signature wrapping) or raises ``ReplyRefused``:

* ``kind="malformed"`` (RPL-07, SEC-05): not well-formed, DOCTYPE, larger than ``S_max``, deeper than
  64 elements, missing a required element or with a known element of wrong type. To a request
  other than a query this is a retryable outcome (REL-03); to a query the reply is discarded.
* ``kind="security"`` (SIG-15, SEC-04): bad signature, gateway certificate not valid at the reply's
  ``createMessageIssue`` or not issued under ``cgw_sign_anchor``, or a forged / misrouted reply.
  Never acted on; the user is told of a security error.

Unknown elements and attributes are ignored wherever they are (RPL-11): only the profile's reply
schema decides what is "required" and "of wrong type", and values are read by name.
"""

from __future__ import annotations

import copy
import re
from dataclasses import dataclass
from pathlib import Path

from lxml import etree

from ..codec import certs, safexml, xmlsig
from ..codec.envelope import (HEADER_LAYOUT, ErrorEntry, Header, Result, content_child, ecdi_path, parse_datetime,
                              read_header)
from ..codec.namespaces import ENV

MAX_DEPTH = safexml.MAX_DEPTH  # SEC-05: the root Envelope is at depth 1 (one figure for gateway and DTS)

# Table 4-3 placeholders that SEC-04 does not check in a 271 (the 271 is correlated by being the
# synchronous answer to our request). Reference/version's placeholder is the highest accepted version.
PLACEHOLDERS = {"Subject/reference": "", "To/identity": "0000000000", "Subject/type": "000"}


# RPL-11: the elements a reply may hold that this DTS knows (Tables 4-3 and 7-1), as a tree of local
# names in the envelope namespace. Everything else is removed before the schema check, so an unknown
# element or attribute, in any namespace and at any depth, is ignored rather than "malformed".
_LEAF = None
_RESULT = {
    "resultCode": _LEAF, "sequence": _LEAF, "receptionNumber": _LEAF, "declarationNumber": _LEAF, "channel": _LEAF,
    "Taxes": {"Tax": {"taxType": _LEAF, "amountVND": _LEAF}, "totalVND": _LEAF, "dueDate": _LEAF},
    "clearedAt": _LEAF, "paymentOrderId": _LEAF, "otpSender": _LEAF, "otpExpiresAt": _LEAF,
    "Errors": {"Error": {"code": _LEAF, "field": _LEAF, "description": _LEAF}},
}
_REPLY_HEADER = {group: ({leaf: _LEAF for leaf in leaves if leaf != "certificationId"} if leaves else _LEAF)
                 for group, leaves in HEADER_LAYOUT}          # Table 4-3: no certificationId in replies
KNOWN_REPLY = {"Header": _REPLY_HEADER, "Body": {"Content": {"Result": _RESULT}}}

# RPL-11 values the strict reply schema refuses but a DTS must accept: an unknown function code (recorded
# and shown as "status <code>") and an unknown W code (shown as a warning).
_TOLERATED = (
    (re.compile(r"/Envelope/Header/Subject/function"), re.compile(r"[0-9]{1,3}")),
    (re.compile(r"/Envelope/Body/Content/Result/Errors/Error(\[[0-9]+\])?/code"), re.compile(r"W[0-9]{4}")),
)


def known_part(signed_root: etree._Element) -> etree._Element:
    """A copy of the reply holding only the elements of ``KNOWN_REPLY``, without any attribute."""
    root = copy.deepcopy(signed_root)

    def prune(el: etree._Element, known: dict | None) -> None:
        for attr in list(el.attrib):
            del el.attrib[attr]
        for child in list(el):
            if not isinstance(child.tag, str):
                continue  # comments/PIs are not elements; exclusive C14N already dropped comments
            qn = etree.QName(child)
            if known is None or qn.namespace != ENV or qn.localname not in known:
                _remove_keeping_tail(child)
            else:
                prune(child, known[qn.localname])

    prune(root, KNOWN_REPLY)
    return root


def _remove_keeping_tail(el: etree._Element) -> None:
    parent, previous = el.getparent(), el.getprevious()
    if el.tail and el.tail.strip():
        if previous is not None:
            previous.tail = (previous.tail or "") + el.tail
        else:
            parent.text = (parent.text or "") + el.tail
    parent.remove(el)


def _tolerated(issue, nodes: dict[str, etree._Element]) -> bool:
    node = nodes.get(issue.path)
    value = node.text or "" if node is not None else ""
    return any(p.fullmatch(issue.path) and v.fullmatch(value) for p, v in _TOLERATED)


class ReplyRefused(Exception):
    def __init__(self, kind: str, requirement: str, reason: str):
        super().__init__(reason)
        self.kind = kind                # "malformed" | "security"
        self.requirement = requirement  # RPL-07, SEC-05, SIG-15, SEC-04
        self.reason = reason


@dataclass(frozen=True)
class Expectation:
    """What "the request" (ENV-10) says, against which a reply is correlated (SEC-04)."""

    reference: str     # the submission's messageId: a reply's Subject/reference must name it
    to_identity: str   # our From/identity
    type: str          # Subject/type
    version: str       # Reference/version


@dataclass
class Reply:
    text: bytes
    header: Header
    result: Result

    @property
    def message_id(self) -> str:
        return self.header.message_id

    @property
    def function(self) -> str:
        return self.header.function

    @property
    def sequence(self) -> int:
        return self.result.sequence

    @property
    def transient(self) -> bool:
        """Sequence 0: every 271 and a query's 12 / E0002 — not part of any history (RPL-02)."""
        return self.result.sequence == 0

    @property
    def errors(self) -> list[ErrorEntry]:
        return [e for e in self.result.errors if not e.code.startswith("W")]

    @property
    def warnings(self) -> list[ErrorEntry]:
        """W codes, known or not: shown, never a failure (RPL-11, RPL-15)."""
        return [e for e in self.result.errors if e.code.startswith("W")]

    def has_code(self, *codes: str) -> bool:
        return any(e.code in codes for e in self.result.errors)


def _highest_accepted_version(profile) -> frozenset[str]:
    accepted = getattr(profile, "deployment", {}).get("accepted_versions") or []
    if isinstance(accepted, str):
        accepted = [v.strip() for v in accepted.split(",") if v.strip()]
    return frozenset({max(accepted, key=lambda v: tuple(int(p) for p in v.split(".")))}) if accepted else frozenset()


def correlation_problem(header: Header, expect: Expectation, *, version_placeholders=frozenset()) -> str | None:
    """SEC-04: why a reply does not belong to the request it claims to answer, or None.

    A reply must name the submission we sent or queried in ``Subject/reference`` — this DTS asks for
    *the* one the exchange was about, so a reply naming another of our messages is misrouted too —
    and repeat our ``From/identity`` (as ``To/identity``), ``Subject/type`` and ``Reference/version``.
    In a 271, fields that hold their Table 4-3 placeholder are not checked.
    """
    is_271 = header.get("Subject/function") == "271"
    for path, wanted in (("Subject/reference", expect.reference), ("To/identity", expect.to_identity),
                         ("Subject/type", expect.type), ("Reference/version", expect.version)):
        got = header.get(path)
        if is_271 and (got == PLACEHOLDERS.get(path) or path == "Reference/version" and got in version_placeholders):
            continue
        if got != wanted:
            return f"{path} is {got!r} where the request had {wanted!r}: forged or misrouted reply"
    return None


class ReplyReader:
    """RPL-06 for every reply, with the profile's limits and the configured ``cgw_sign_anchor``."""

    def __init__(self, profile, sign_anchor_pem: Path, *, authenticate=None, certificate_problem=None,
                 correlate=None, limits=None):
        self.profile = profile
        self.sign_anchor_pem = Path(sign_anchor_pem)
        self.max_bytes = int(profile.params["S_max"])
        self._version_placeholders = _highest_accepted_version(profile)
        # The DTS passes its hooks here (``verify_reply_signature``, ``reply_certificate_problem``,
        # ``reply_correlation_problem``, ``reply_parse_limits``), so that a mutant can break one of them.
        self.authenticate = authenticate or self.authenticated_root
        self.certificate_problem = certificate_problem or gateway_certificate_problem
        self.correlate = correlate or (lambda header, expect: correlation_problem(
            header, expect, version_placeholders=self._version_placeholders))
        self.limits = limits or (lambda: (self.max_bytes, MAX_DEPTH))

    def _anchors(self):
        try:
            return certs.load_pem_chain(self.sign_anchor_pem)
        except (OSError, ValueError) as exc:
            raise ReplyRefused("security", "SIG-15",
                               f"the gateway signing anchor (cgw_sign_anchor) is not configured or unreadable: {exc}") from None

    def read(self, text: bytes, expect: Expectation) -> Reply:
        # 1. Hardened parse (SEC-05): no DTD, no entity, no network; size and depth limits.
        max_bytes, max_depth = self.limits()
        try:
            safexml.parse_message_text(text, max_bytes=max_bytes, max_depth=max_depth)
        except safexml.XmlRefused as exc:
            raise ReplyRefused("malformed", "RPL-07", f"malformed reply: {exc.reason}") from None
        # 2. SIG-15: signature and gateway certificate; from here on only the signed tree counts.
        signed_root = self.authenticate(text)
        # 3. Reply schema, Tables 4-3 and 7-1, on the known part only (RPL-07, RPL-11).
        known = known_part(signed_root)
        nodes = {ecdi_path(el, self.profile.repeatable): el for el in known.iter() if isinstance(el.tag, str)}
        issues = [i for i in self.profile.validate_envelope(known, "reply") if not _tolerated(i, nodes)]
        if issues:
            first = issues[0]
            raise ReplyRefused("malformed", "RPL-07", f"malformed reply: {first.path}: {first.reason}")
        header = read_header(known)
        if header.get("Subject/reference") == "" and header.get("Subject/function") != "271":
            raise ReplyRefused("malformed", "RPL-07", "malformed reply: empty Subject/reference outside a 271")
        result_el = content_child(known)
        if result_el is None:
            raise ReplyRefused("malformed", "RPL-07", "malformed reply: Content does not hold one Result")
        try:
            result = Result.from_element(result_el)
        except (KeyError, ValueError) as exc:
            raise ReplyRefused("malformed", "RPL-07", f"malformed reply: {exc}") from None
        # 5. Correlation (SEC-04).
        problem = self.correlate(header, expect)
        if problem:
            raise ReplyRefused("security", "SEC-04", problem)
        return Reply(text, header, result)

    def authenticated_root(self, text: bytes) -> etree._Element:
        """SIG-15: the signature exactly per Table 8-1 with RSA-SHA256, by a gateway certificate issued
        under ``cgw_sign_anchor`` (never the general trust store) and valid at the reply's own
        ``createMessageIssue``. Returns the signed tree, the only one acted on (signature wrapping).

        The certificate is judged before the reply schema: an impostor's reply is a security matter
        whatever it holds, and ``createMessageIssue`` is read from the signed tree only.
        """
        anchors = self._anchors()
        try:
            verified = xmlsig.verify_envelope(text, methods=(xmlsig.RSA_SHA256,), digests=(xmlsig.SHA256,))
        except xmlsig.SignatureProblem as exc:
            raise ReplyRefused("security", "SIG-15", f"reply signature invalid (content altered or not as "
                                                      f"Table 8-1): {exc.reason}") from None
        except safexml.XmlRefused as exc:
            raise ReplyRefused("malformed", "RPL-07", f"malformed reply: {exc.reason}") from None
        try:
            issued = parse_datetime(read_header(verified.signed_root)["SendApplication/createMessageIssue"])
        except (KeyError, TypeError, ValueError) as exc:
            raise ReplyRefused("malformed", "RPL-07", f"malformed reply: createMessageIssue: {exc}") from None
        problem = self.certificate_problem(verified.signer, verified.intermediates, anchors, issued)
        if problem:
            raise ReplyRefused("security", "SIG-15", problem)
        return verified.signed_root


def gateway_certificate_problem(signer, intermediates, anchors, issued) -> str | None:
    """SIG-15: the reply's signer certificate is valid at the reply's ``createMessageIssue``, has a
    suitable key and chains to ``cgw_sign_anchor`` — any certificate the anchor issued, so a renewed
    gateway certificate is accepted without reconfiguration. None when it may be trusted."""
    for problem, what in ((certs.validity_problem(signer, issued), "gateway certificate expired or not yet valid"),
                          (certs.key_problem(signer), "gateway key"),
                          (certs.chain_problem(signer, intermediates, anchors, issued),
                           "gateway certificate untrusted")):
        if problem:
            return f"{what}: {problem}"
    return None
