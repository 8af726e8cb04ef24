"""Mutants: deliberately broken variants of the reference DTS, one defect each.

A mutant is a small subclass of ``ReferenceDTS`` overriding exactly one hook (see "Hooks" in
``dts.py``). Running the conformance cases against a mutant must fail the case named in
``caught_by``: that is how the harness shows that its cases can tell a broken DTS from a correct one.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass
from datetime import datetime

from ..codec import xmlsig
from ..codec.envelope import ErrorEntry, VN_TZ, new_message_id
from .config import DtsConfig
from .dts import Draft, ReferenceDTS
from .sender import Operation
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


class NoRetry(ReferenceDTS):
    def should_retransmit(self, outcome: AttemptOutcome) -> bool:
        return outcome.retryable and outcome.cause != "timeout"    # REL-03: a timeout is retryable


class SkipsCertificateChecks(ReferenceDTS):
    def check_certificate(self, now: datetime) -> None:
        return None                                  # SIG-12: signs with whatever certificate is installed


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
    Mutant("no-retry", "treats a timeout as final and never retransmits after it",
           ["REL-03"], "reliability.resend-after-timeout", NoRetry),
    Mutant("skips-certificate-checks", "signs and sends with an expired, revoked or otherwise unfit certificate",
           ["SIG-12"], "signature.refuses-unfit-certificate", SkipsCertificateChecks),
]}


def build_dts(config: DtsConfig, mutant: str | None = None, **kwargs) -> ReferenceDTS:
    """The reference DTS, or the named mutant of it. ``kwargs`` (clock, rng) go to the constructor."""
    if mutant is None:
        return ReferenceDTS(config, **kwargs)
    if mutant not in MUTANTS:
        raise ValueError(f"unknown mutant {mutant!r}; valid names: {', '.join(sorted(MUTANTS))}")
    return MUTANTS[mutant].cls(config, **kwargs)
