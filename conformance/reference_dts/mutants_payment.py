"""Mutants of the payment cases (see ``mutants.py`` for what a mutant is): one hook override each.

Also the reference DTS's *configurations*: whole variants that override several hooks, so they are no
mutants (``ecdi mutants --score`` does not count them). ``legacy-1.0`` is the reference DTS as built for
ECDI 1.0 and never updated; ``ecdi run --mutant legacy-1.0`` under both profiles, then ``ecdi diff``,
shows what Annex A changed for such a product (docs/decisions.md, "Payments (issue 6)").
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from lxml import etree

from ..codec import xmlsig
from ..profile import load_profile
from .mutants import MUTANTS, Mutant
from .payments import KnownOrder
from .dts import ReferenceDTS


@dataclass(frozen=True)
class ProfiledMutant(Mutant):
    """A mutant whose defect only counts under one profile (a requirement that is a SHOULD elsewhere,
    CAP-02): ``ecdi mutants --score`` and the self-test run its case with ``--profile profile``."""

    profile: str = "ecdi-1.1"


class DescriptionAsEntered(ReferenceDTS):
    def payment_description(self, order: etree._Element, tax_code: str, note: str | None) -> str:
        return note or ""                               # PAY-01: the user's note, not the canonical rendering


class UserIdOfFirstUser(ReferenceDTS):
    def payment_user_id(self) -> str:
        return self.config.users[0].user_id             # PAY-02: maker/checker not the request's own UserId


class OtpNoticeWithoutSender(ReferenceDTS):
    def otp_notice(self, order_id: str, expires: datetime, sender: str) -> str:
        return f"Payment order {order_id} recorded; check your e-mail for the OTP."   # PAY-08: no sender, no advice


class SharedCredentials(ReferenceDTS):
    def account_for(self, local_user: str):
        return self.config.users[0]                     # SEC-08: every local user sends with the first one's


class RetriesRefusedOtp(ReferenceDTS):
    def otp_refused_before(self, order: KnownOrder, otp: str) -> bool:
        return False                                    # PAY-10: an OTP answered P0001 is sent again


class MakerApproves(ReferenceDTS):
    def maker_approval_refusal(self, order: KnownOrder, checker: str) -> str | None:
        return None                                     # PAY-11: the maker's own approval is sent


class NoNewOtp(ReferenceDTS):
    def offers_new_otp(self, order: KnownOrder) -> bool:
        return False                                    # PAY-09: no "request new OTP" for an order awaiting approval


MUTANTS.update({m.name: m for m in [
    Mutant("description-as-entered", "sends the user's note as the payment order's description instead of the "
           "canonical ECDI+MST:…+TK:… rendering", ["PAY-01"], "payment.order-description-and-notice",
           DescriptionAsEntered),
    Mutant("otp-notice-without-sender", "tells the user to check the e-mail for the OTP without naming otpSender or "
           "advising not to block its mail", ["PAY-08"], "payment.order-description-and-notice",
           OtpNoticeWithoutSender),
    Mutant("maker-checker-of-first-user", "writes the first local user's UserId as maker or checker, whoever "
           "sends the request", ["PAY-02"], "payment.maker-and-checker", UserIdOfFirstUser),
    Mutant("shared-credentials", "lets every local user send with the first user's stored CGW credentials",
           ["SEC-08"], "payment.maker-and-checker", SharedCredentials),
    Mutant("retries-refused-otp", "sends a new approval with the OTP value customs answered P0001",
           ["PAY-10"], "payment.expired-otp-renewed", RetriesRefusedOtp),
    ProfiledMutant("maker-approves", "sends the maker's approval of his or her own order (PAY-11 is a MUST in 1.1; "
                   "scored under ecdi-1.1)", ["PAY-11"], "payment.maker-cannot-approve", MakerApproves),
    Mutant("no-new-otp", "offers no \"request new OTP\" for an order awaiting approval", ["PAY-09"],
           "payment.otp-mail-never-arrives", NoNewOtp),
]})


# --- configurations: several hooks at once, so not mutants ------------------------------------------

class Legacy10(ReferenceDTS):
    """The reference DTS as built for ECDI 1.0 and never updated for the payment changes of Annex A (#1, #2).

    Conformant under 1.0 (PAY-11 is a SHOULD there, reported as not met), not under 1.1."""

    LEGACY = load_profile("ecdi-1.0")

    def maker_approval_refusal(self, order: KnownOrder, checker: str) -> str | None:
        return None                                     # Annex A #2: in 1.0 preventing it was only a SHOULD

    def shown_otp_expiry(self, otp_expires_at: str, received: datetime) -> datetime:
        # Annex A #1: assumes the 1.0 T_otp (120 s × s) from reception instead of reading otpExpiresAt
        return received + timedelta(seconds=self.LEGACY.timer("T_otp", self.config.effective_scale))


class Legacy10Sha1(Legacy10):
    """``legacy-1.0`` that also signs with SHA-1, as 1.0 gateways accepted with W0001 (Annex A #3).

    SIG-04 forbids SHA-1 in every profile, so it conforms to neither; under 1.1 every request is
    refused G0007 — what a product that "fell back to SHA-1" meets on the day 1.1 applies."""

    def signature_methods(self) -> tuple[str, str]:
        return xmlsig.RSA_SHA1, xmlsig.SHA1


CONFIGURATIONS: dict[str, Mutant] = {c.name: c for c in [
    Mutant("legacy-1.0", "the reference DTS built for ECDI 1.0 and never updated: lets the maker approve (PAY-11, "
           "a SHOULD in 1.0) and shows the OTP expiry as reception + the 1.0 T_otp (PAY-08)",
           ["PAY-08", "PAY-11"], "payment.maker-cannot-approve", Legacy10),
    Mutant("legacy-1.0-sha1", "legacy-1.0 that also signs with SHA-1 (accepted with W0001 in 1.0, G0007 in 1.1; "
           "SIG-04 forbids it in both)", ["PAY-08", "PAY-11", "SIG-04"], "signature.sha256-only", Legacy10Sha1),
]}
