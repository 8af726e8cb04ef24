"""Mutants of the flows cases (see ``mutants.py`` for what a mutant is): one hook override each.

Restart (REL-09), duplicate replies (RPL-08), warnings (RPL-15), capabilities (CAP-04, CAP-05, CAP-07,
CAP-08), amendments and cancellations (RPL-10, RPL-14) — issue 6.
"""

from __future__ import annotations

from .dts import ReferenceDTS
from .mutants import MUTANTS, ErrorsAsciiFolded, Mutant
from .replies import Reply
from .store import HistoryEntry, Submission


class ForgetsUnfinishedSends(ReferenceDTS):
    def unfinished_sends(self) -> list[Submission]:
        return []                                   # REL-09: after a restart the unfinished send is never resumed


class ReprocessesDuplicateReplies(ReferenceDTS):
    def already_processed(self, reply: Reply) -> bool:
        return False                                # RPL-08: no memory of processed reply messageIds


class HidesWarnings(ReferenceDTS):
    def show_warnings(self, sub: Submission, reply: Reply) -> None:
        return None                                 # RPL-15: W codes never reach the user


class StatementOmitsExport(ReferenceDTS):
    @staticmethod
    def shipped_statement() -> str:                 # CAP-04: the product lodges exports it does not claim
        text = ReferenceDTS.shipped_statement()
        return text.replace('"export", ', "", 1)


class StatementWithUnknownKey(ReferenceDTS):
    @staticmethod
    def shipped_statement() -> str:                 # CAP-05: a key Table 13-2 does not have
        text = ReferenceDTS.shipped_statement()
        head, sep, rest = text.partition("[pixit]")
        return head + 'support_email = "hotro@example.vn"\n\n' + sep + rest


class HidesEnvironment(ReferenceDTS):
    def environment_notice(self) -> str:
        return ""                                   # CAP-07: nothing tells the user production from test


class UnscaledProfileTimers(ReferenceDTS):
    def first_poll_delay(self) -> float:
        return self.profile.timer("T_poll_min", 1.0)   # CAP-08: s applied to the PIXIT values only


class CancellationLeavesDeclarationOpen(ReferenceDTS):
    def complete_cancelled(self, sub: Submission, entry: HistoryEntry) -> None:
        return None                                 # RPL-10: the cancelled declaration is polled on


class AmendmentPolledLikeDeclaration(ReferenceDTS):
    def final_replies(self, type_: str, function: str) -> list[str]:
        return super().final_replies(type_, "8")    # RPL-10: a 32 does not end an amendment's history


MUTANTS.update({m.name: m for m in [
    Mutant("forgets-unfinished-sends", "after a restart does not resume the send operation that was under way",
           ["REL-09"], "reliability.resume-after-crash", ForgetsUnfinishedSends),
    Mutant("reprocesses-duplicate-replies", "keeps no record of processed reply messageIds: a reply delivered twice "
           "is acted on and shown twice", ["RPL-08"], "reply.duplicate-processed-once", ReprocessesDuplicateReplies),
    Mutant("hides-warnings", "never shows the W codes of a reply", ["RPL-15"], "reply.warning-not-failure",
           HidesWarnings),
    Mutant("statement-omits-export", "ships a statement without 'export' yet lodges export declarations when asked",
           ["CAP-04"], "capability.unclaimed-never-sent", StatementOmitsExport),
    Mutant("statement-unknown-key", "ships a capability statement with a key Table 13-2 does not have",
           ["CAP-05"], "capability.statement-keys", StatementWithUnknownKey),
    Mutant("hides-environment", "does not show which environment (production or test) is active",
           ["CAP-07"], "capability.configured-environment-shown", HidesEnvironment),
    Mutant("unscaled-profile-timers", "applies the time scale to its PIXIT timings but not to the profile's T_poll_min",
           ["CAP-08"], "reliability.polling-pace", UnscaledProfileTimers),
    Mutant("cancellation-leaves-declaration-open", "after a cancellation's 32 still counts the cancelled "
           "declaration's history as open and polls it", ["RPL-10"], "flows.cancel-recorded-declaration",
           CancellationLeavesDeclarationOpen),
    Mutant("amendment-polled-like-declaration", "takes the final replies of a declaration (35, 272, 273) for an "
           "amendment: keeps polling after its 32", ["RPL-10"], "flows.amend-recorded-declaration",
           AmendmentPolledLikeDeclaration),
    Mutant("errors-ascii-folded-s0005", "shows the S0005 answering an amendment of an unknown declaration number "
           "with the Vietnamese diacritics stripped (the defect of errors-ascii-folded)",
           ["RPL-14"], "flows.unknown-declaration-refused", ErrorsAsciiFolded),
    Mutant("errors-ascii-folded-cancel-s0005", "shows the S0005 answering a cancellation of an unknown declaration "
           "number with the Vietnamese diacritics stripped (the defect of errors-ascii-folded)",
           ["RPL-14"], "flows.cancel-unknown-declaration-refused", ErrorsAsciiFolded),
]})


# --- mutants for requirements no earlier mutant broke (REL-01, CAP-06, RPL-12) ----------------------

class GivesUpEarly(ReferenceDTS):
    def attempt_deadline(self) -> float:
        return super().attempt_deadline() / 2          # REL-01: abandons an attempt before t_send


class BackoffBeyondStatement(ReferenceDTS):
    def retransmission_wait(self, k, outcome) -> float:
        return 2 * super().retransmission_wait(k, outcome)   # CAP-06: waits twice what its statement says


class RejectionAsTransportError(ReferenceDTS):
    def message_rejected(self, sub, reply) -> None:
        # RPL-12: a 271 is taken for a failed transmission: the outcome is "unknown", not "rejected"
        self._tell("transport-error", "271", "The gateway could not process the message; try again later.", sub)


MUTANTS.update({m.name: m for m in [
    Mutant("gives-up-early", "abandons an attempt after half of pixit.t_send_s", ["REL-01"],
           "reliability.resend-after-timeout", GivesUpEarly),
    Mutant("backoff-beyond-statement", "waits twice the backoff its capability statement promises",
           ["CAP-06"], "reliability.exponential-backoff", BackoffBeyondStatement),
    Mutant("rejection-as-transport-error", "shows a 271 as a transport failure and leaves the outcome unknown",
           ["RPL-12"], "reply.rejection-shown-verbatim", RejectionAsTransportError),
]})


class GenericSignatureErrors(ReferenceDTS):
    def render_error(self, entry) -> str:
        if entry.code.startswith("G"):                 # RPL-14: hides which signature check customs failed
            return "Chữ ký số không hợp lệ. Vui lòng kiểm tra lại chứng thư số."
        return super().render_error(entry)


MUTANTS.update({m.name: m for m in [
    Mutant("generic-signature-errors", "shows every G-code rejection as one generic 'invalid signature' text",
           ["RPL-14"], "reply.error-code-matrix", GenericSignatureErrors),
]})
