"""Mutants: deliberately broken variants of the reference DTS, one defect each.

A mutant is a small subclass of ``ReferenceDTS`` overriding exactly one hook (``hooks.py``;
payment hooks in ``payments.py``). Running the conformance cases against a mutant must fail the case named in
``caught_by``: that is how the harness shows that its cases can tell a broken DTS from a correct one.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass
from datetime import datetime

from lxml import etree
from signxml import CanonicalizationMethod, DigestAlgorithm, SignatureMethod, XMLSigner

from ..codec import safexml, xmlsig
from ..codec.envelope import ErrorEntry, VN_TZ, new_message_id
from ..codec.namespaces import ENV, q
from .config import DtsConfig
from .dts import Draft, ReferenceDTS
from .sender import Operation
from .signing import SigningUnavailable
from .transport import AttemptOutcome


class SoapActionUnquoted(ReferenceDTS):
    def soap_headers(self) -> dict[str, str]:
        headers = super().soap_headers()
        headers["SOAPAction"] = headers["SOAPAction"].strip('"')        # TRN-03: the quotes belong to the value
        return headers


class CreationTimeWithoutOffset(ReferenceDTS):
    def creation_time_text(self, moment: datetime) -> str:
        return moment.astimezone(VN_TZ).replace(microsecond=0, tzinfo=None).isoformat()   # ENV-03: no offset


class SignsSha1(ReferenceDTS):
    def signature_methods(self) -> tuple[str, str]:
        return xmlsig.RSA_SHA1, xmlsig.SHA1                               # SIG-04: SHA-256 only


def ascii_fold(text: str) -> str:
    """Vietnamese without diacritics, as a careless legacy-font converter would show it."""
    decomposed = unicodedata.normalize("NFD", text.replace("đ", "d").replace("Đ", "D"))
    return "".join(c for c in decomposed if not unicodedata.combining(c))


class ErrorsAsciiFolded(ReferenceDTS):
    def render_error(self, entry: ErrorEntry) -> str:
        return super().render_error(ErrorEntry(entry.code, entry.field, ascii_fold(entry.description)))  # RPL-14


class ResignsOnRetry(ReferenceDTS):
    def retransmission_text(self, op: Operation, k: int) -> bytes:
        if not isinstance(op.draft, Draft):
            return op.text
        return self.compose(op.draft)          # REL-05, SIG-02: new createMessageIssue and signature, same messageId


class NewMessageIdOnRetry(ReferenceDTS):
    def retransmission_text(self, op: Operation, k: int) -> bytes:
        if not isinstance(op.draft, Draft):
            return op.text
        fresh = Draft(dict(op.draft.fields, **{"Reference/messageId": new_message_id()}), op.draft.content)
        return self.compose(fresh)             # REL-05, REL-08: a retransmission must keep its messageId


class NewMessageIdOnLaterRetries(NewMessageIdOnRetry):
    def retransmission_text(self, op: Operation, k: int) -> bytes:
        # REL-05: from the second retransmission on, each carries a fresh messageId — a defect a case
        # with a single retransmission cannot see, and one that once crashed a case reading its replies
        return op.text if k < 2 else super().retransmission_text(op, k)


class NoRetry(ReferenceDTS):
    def should_retransmit(self, outcome: AttemptOutcome) -> bool:
        return outcome.retryable and outcome.cause != "timeout"    # REL-03: a timeout is retryable


class SkipsCertificateChecks(ReferenceDTS):
    def check_certificate(self, now: datetime) -> None:
        return None                                  # SIG-12: signs with whatever certificate is installed


def _table_8_1_signer() -> XMLSigner:
    """signxml configured with Table 8-1's algorithms, for mutants that get only the *shape* wrong."""
    return XMLSigner(signature_algorithm=SignatureMethod.RSA_SHA256, digest_algorithm=DigestAlgorithm.SHA256,
                     c14n_algorithm=CanonicalizationMethod.EXCLUSIVE_XML_CANONICALIZATION_1_0)


def _text(root: etree._Element) -> bytes:
    return xmlsig.XML_DECLARATION + etree.tostring(root, encoding="UTF-8")


class SignsBodyOnly(ReferenceDTS):
    def signed_text(self, root: etree._Element, signature_method: str, digest_method: str) -> bytes:
        body = root.find(q(ENV, "Body"))
        body.set("Id", "body")                      # Table 8-1: Reference URI="" (the whole envelope), not "#body"
        signer = self.key.signer()
        return _text(_table_8_1_signer().sign(root, key=signer.key, cert=list(signer.chain), reference_uri="#body"))


class OmitsCertificate(ReferenceDTS):
    def signed_text(self, root: etree._Element, signature_method: str, digest_method: str) -> bytes:
        return _text(_table_8_1_signer().sign(root, key=self.key.signer().key))   # Table 8-1: KeyValue, no X509Data


class IgnoresReplySignatures(ReferenceDTS):
    def verify_reply_signature(self, text: bytes) -> etree._Element:
        return safexml.parse_message_text(text)      # SIG-15, RPL-06: believes whatever arrives


class UnsignedOnSigningError(ReferenceDTS):
    def signing_failed(self, unsigned: etree._Element, problem: SigningUnavailable) -> bytes:
        return _text(unsigned)                       # SIG-13, SEC-03: sends the message without a signature


@dataclass(frozen=True)
class Mutant:
    name: str
    summary: str
    breaks: list[str]
    caught_by: str
    cls: type[ReferenceDTS] = ReferenceDTS


MUTANTS: dict[str, Mutant] = {m.name: m for m in [
    Mutant("soapaction-unquoted", "sends SOAPAction: urn:ecdi:service:1#Send without the double quotes",
           ["TRN-03"], "transport.valid-declaration-accepted", SoapActionUnquoted),
    Mutant("creation-time-without-offset", "writes createMessageIssue without its UTC offset",
           ["ENV-03", "DOC-01"], "schema.requests-validate", CreationTimeWithoutOffset),
    Mutant("signs-sha1", "signs with rsa-sha1 and a sha1 digest", ["SIG-04"], "signature.sha256-only", SignsSha1),
    Mutant("errors-ascii-folded", "shows Error descriptions with the Vietnamese diacritics stripped",
           ["RPL-14"], "reply.rejection-shown-verbatim", ErrorsAsciiFolded),
    Mutant("resigns-on-retry", "re-signs on retransmission: new createMessageIssue and signature, same messageId",
           ["REL-05", "SIG-02"], "reliability.resend-after-timeout", ResignsOnRetry),
    Mutant("new-message-id-on-retry", "retransmits with a fresh messageId",
           ["REL-05", "REL-08"], "reliability.resend-after-timeout", NewMessageIdOnRetry),
    Mutant("new-message-id-on-later-retries", "keeps the messageId on the first retransmission, then retransmits "
           "each time with a fresh one", ["REL-05"], "reply.malformed-reply-refused", NewMessageIdOnLaterRetries),
    Mutant("no-retry", "treats a timeout as final and never retransmits after it",
           ["REL-03"], "reliability.resend-after-timeout", NoRetry),
    Mutant("skips-certificate-checks", "signs and sends with an expired, revoked or otherwise unfit certificate",
           ["SIG-12"], "signature.refuses-unfit-certificate", SkipsCertificateChecks),
    Mutant("signs-body-only", "signs only the Body (Reference URI=\"#body\" on an Id attribute), not the whole envelope",
           ["SIG-01"], "signature.sha256-only", SignsBodyOnly),
    Mutant("omits-certificate", "puts the public key (KeyValue) in KeyInfo instead of X509Data with the certificate",
           ["SIG-01"], "signature.sha256-only", OmitsCertificate),
    Mutant("ignores-reply-signatures", "acts on replies without verifying their signature or the gateway certificate",
           ["SIG-15", "RPL-06"], "signature.verifies-replies", IgnoresReplySignatures),
    Mutant("unsigned-on-signing-error", "sends the message unsigned when the key cannot be used",
           ["SIG-13", "SEC-03"], "signature.never-unsigned", UnsignedOnSigningError),
]}


def build_dts(config: DtsConfig, mutant: str | None = None, **kwargs) -> ReferenceDTS:
    """The reference DTS, or the named mutant of it. ``kwargs`` (clock, rng) go to the constructor."""
    if mutant is None:
        return ReferenceDTS(config, **kwargs)
    if mutant not in MUTANTS:
        raise ValueError(f"unknown mutant {mutant!r}; valid names: {', '.join(sorted(MUTANTS))}")
    return MUTANTS[mutant].cls(config, **kwargs)


# --- reliability and reply handling (issue 6) ------------------------------------------------------

class NoRetryAfterTruncatedBody(ReferenceDTS):
    def should_retransmit(self, outcome: AttemptOutcome) -> bool:
        return outcome.retryable and outcome.cause != "incomplete"     # REL-03: a short body is retryable


class IgnoresRetryAfter(ReferenceDTS):
    def retransmission_wait(self, k: int, outcome: AttemptOutcome) -> float:
        from .sender import backoff_wait
        return backoff_wait(k, self.timings, self.rng)                  # REL-06: Retry-After not honoured


class ConstantBackoff(ReferenceDTS):
    def retransmission_wait(self, k: int, outcome: AttemptOutcome) -> float:
        return super().retransmission_wait(1, outcome)                  # REL-06: never grows exponentially


class UnknownShownAsRejected(ReferenceDTS):
    def exhausted_notice(self, attempts: int, last: str) -> tuple[str, str]:
        return "rejected", f"Sending failed after {attempts} attempts: the declaration was rejected."   # REL-07


class PollsImmediately(ReferenceDTS):
    def first_poll_delay(self) -> float:
        return 0.0                                                      # REL-13: T_poll_min after the 29


class PendingIsFailure(ReferenceDTS):
    def pending_reply(self, sub, reply) -> None:
        sub.polling_expired = True                                      # RPL-13: gives up on the first 12
        self._tell("customs-error", "12", "The status query failed: customs did not process the declaration.", sub)


class SilentPollingStop(ReferenceDTS):
    def polling_stopped_notice(self, sub) -> None:
        return None                                                     # REL-14: the user is never told


class WatermarkHighestSeen(ReferenceDTS):
    def query_after_sequence(self, sub) -> int:
        return max(sub.entries, default=0)                              # RPL-09: skips a missing entry


class MalformedReplyFinal(ReferenceDTS):
    def should_retransmit(self, outcome: AttemptOutcome) -> bool:
        return outcome.retryable and outcome.cause != "malformed-reply"  # RPL-07/REL-03: gives up on it


MUTANTS.update({m.name: m for m in [
    Mutant("no-retry-after-truncated-body", "treats a body shorter than its Content-Length as final",
           ["REL-03"], "reliability.resend-after-broken-response", NoRetryAfterTruncatedBody),
    Mutant("ignores-retry-after", "retransmits after its own backoff, ignoring a 503's Retry-After",
           ["REL-06"], "reliability.honours-retry-after", IgnoresRetryAfter),
    Mutant("constant-backoff", "waits the first backoff before every retransmission (no exponential growth)",
           ["REL-06"], "reliability.exponential-backoff", ConstantBackoff),
    Mutant("unknown-shown-as-rejected", "tells the user the declaration was rejected when its attempts ran out",
           ["REL-07"], "reliability.unknown-after-retries", UnknownShownAsRejected),
    Mutant("polls-immediately", "sends the first query right after the 29, not T_poll_min later",
           ["REL-13"], "reliability.polling-pace", PollsImmediately),
    Mutant("pending-is-failure", "takes a 12 (not yet processed) as a failure and stops polling",
           ["RPL-13"], "reliability.polling-pace", PendingIsFailure),
    Mutant("silent-polling-stop", "stops polling at poll_max_total without telling the user",
           ["REL-14"], "reliability.polling-stops-at-max-total", SilentPollingStop),
    Mutant("watermark-highest-seen", "queries after the highest sequence seen, not the highest contiguous one",
           ["RPL-09"], "reply.out-of-order-history", WatermarkHighestSeen),
    Mutant("malformed-reply-final", "ends the send operation on a malformed reply instead of retransmitting",
           ["RPL-07"], "reply.malformed-reply-refused", MalformedReplyFinal),
]})


class RefusesUnknownElements(ReferenceDTS):
    def verify_reply_signature(self, text: bytes) -> etree._Element:
        from .replies import ReplyRefused
        root = super().verify_reply_signature(text)
        known = (f"{{{ENV}}}", "{http://www.w3.org/2000/09/xmldsig#}")
        for el in root.iter():
            if isinstance(el.tag, str) and (not el.tag.startswith(known) or el.tag == q(ENV, "futureField")
                                            or any(a.startswith("{") for a in el.attrib)):
                # RPL-11: validates replies strictly — anything unknown makes the reply "malformed"
                raise ReplyRefused("malformed", "RPL-07", f"malformed reply: unknown element {el.tag}")
        return root


MUTANTS.update({m.name: m for m in [
    Mutant("refuses-unknown-elements", "refuses replies holding elements or attributes it does not know",
           ["RPL-11"], "reply.unknown-elements-ignored", RefusesUnknownElements),
]})


class OnlyClearanceFinal(ReferenceDTS):
    def final_replies(self, type_: str, function: str) -> list[str]:
        return ["35"]                               # RPL-10: a 272/273 in the history does not end polling


MUTANTS.update({m.name: m for m in [
    Mutant("only-clearance-final", "takes only 35 as final: keeps polling after a refusal (273) in the history",
           ["RPL-10"], "reply.refusal-in-history", OnlyClearanceFinal),
]})

MUTANTS.update({m.name: m for m in [
    Mutant("errors-ascii-folded-272", "shows a 272's Error descriptions with the Vietnamese diacritics stripped "
           "(the defect of errors-ascii-folded, met through a business error)",
           ["RPL-14"], "reply.business-error-shown", ErrorsAsciiFolded),
]})


class QueriesUnknownAtOnce(ReferenceDTS):
    def unknown_outcome_query_delay(self) -> float:
        return 0.0                                  # REL-08: queries before T_send after the last attempt


MUTANTS.update({m.name: m for m in [
    Mutant("queries-unknown-at-once", "queries a message of unknown outcome at once, not T_send after its last attempt",
           ["REL-08"], "reliability.query-settles-unknown-outcome", QueriesUnknownAtOnce),
]})

# The mutants of later families live in one module per family and register themselves in MUTANTS.
from . import (mutants_envelope, mutants_flows, mutants_payment, mutants_security, mutants_text,  # noqa: E402,F401
               mutants_transport)
from . import variants  # noqa: E402,F401  correct products written differently (CONFIGURATIONS)
