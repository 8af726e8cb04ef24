"""E-tax payment family (§10 PAY, SEC-08): orders, OTPs, maker and checker, as the user meets them.

Every payment case first lodges an import declaration through the DTS, so that its tax lines name a
declaration of the payer the gateway knows (Table 6-4); the tax lines, amounts and the user's note are
drawn from the run's seed (``payment-order-entry`` sample), so nothing can be hard-coded. The OTP is
read from the gateway's mailbox, where the user would read the e-mail (PAY-04).
"""

from __future__ import annotations

import unicodedata
from datetime import datetime

from lxml import etree

from conformance import checks, scenarios
from conformance.case import CaseFailure, Check, case
from conformance.codec.namespaces import PAY, q
from conformance.codec.safexml import hardened_parser
from conformance.verdict import EvidenceKind, Verdict

ENTRY = "payment-order-entry"
NO_BLOCK_WORDS = ("block", "spam", "junk", "filter", "chặn", "lọc", "thư rác")
# PAY-10: the OTP expired or was invalidated (the verbatim P0001 description says so too; the offer of a new
# one is PAY-09's action, exercised by the case).
EXPIRED_OTP_WORDS = ("expired", "invalid", "no longer valid", "hết hạn", "vô hiệu", "hết hiệu lực",
                     "không còn hiệu lực")
MAKER_WORDS = ("maker", "checker", "another user", "approve your own", "người lập", "người duyệt", "phê duyệt")


# --- helpers: what the case needs before and around the payment -------------------------------------

def declaration_of_payer(ecdi) -> str:
    """Lodge an import declaration through the DTS and return its number (the tax lines must name a
    declaration of the payer, Table 6-4); without one the case's set-up failed (INCONCLUSIVE)."""
    outcome = ecdi.lodge("declaration-import", type="929")
    ecdi.needs_recorded(ecdi.requests(type="929", function="8"), "the declaration to pay for", outcome=outcome)
    if not outcome.declaration_number:
        ecdi.setup_failed("no declaration number shown", "the declaration to pay for",
                          f"it ended {outcome.state!r}, so the payment could not be tested")
    return outcome.declaration_number


def two_users(ecdi) -> tuple[tuple[str, str], tuple[str, str]]:
    """Two local users with their own UserIds (SEC-08), as (local user, UserId) pairs."""
    accounts = list(ecdi.local_accounts().items())
    if len(accounts) < 2:
        for rid in ecdi.spec.requirements:
            ecdi.inconclusive("the SUT file lists one account: maker and checker need two local users, each with "
                              "a CGW account of his or her own ([[account]] in sut.toml)", rid)
        raise CaseFailure("one account only")
    return accounts[0], accounts[1]


def equal(label: str, got: str | None, expected: str | None) -> Check:
    """A value a request carried, compared with the one it must have."""
    if got == expected:
        return Check(True, f"{label} is {got!r}")
    return Check(False, f"{label} is {got!r}, expected {expected!r}")


def canonical_description(tax_code: str, entry: bytes) -> str:
    """PAY-01, rendered by the harness from what the user entered: taxcode, the entered tax lines in
    their order, and the entered note (NFC, trimmed: TXT-03/05) as ``+GC:``."""
    order = etree.fromstring(entry, hardened_parser())
    text = f"ECDI+MST:{tax_code}" + "".join(
        f"+TK:{ln.findtext(q(PAY, 'declarationNumber'))}/{ln.findtext(q(PAY, 'taxType'))}/"
        f"{ln.findtext(q(PAY, 'amountVND'))}" for ln in order.findall(q(PAY, "TaxLine")))
    note = unicodedata.normalize("NFC", (order.findtext(q(PAY, "description")) or "").strip())
    return text + (f"+GC:{note}" if note else "")


def sent_value(exchange, name: str) -> str | None:
    """The payment document's ``name`` in a request's message text (None where it cannot be read)."""
    content = checks.message_content(exchange)
    return content.findtext(q(PAY, name)) if content is not None else None


def otps_sent(exchanges) -> list[str | None]:
    """The approvals' OTPs, as the evidence keeps them: fingerprints (compare with ``ecdi.fingerprint``)."""
    return [sent_value(ex, "otp") for ex in exchanges]


def last_sent(requests: list, what: str, ecdi, requirement: str):
    """The last of ``requests``; the case stops (FAIL on ``requirement``) when none reached the gateway."""
    ecdi.check(checks.something_sent(requests, what), requirement, stop=True)
    return requests[-1]


# --- checks of what the user was shown -----------------------------------------------------------

def expiry_shown(outcome, receipt, tolerance: float) -> Check:
    """PAY-08: the OTP expiry shown (with its UTC offset: local time) is the 29's ``otpExpiresAt``."""
    sent = receipt.otp_expires_at if receipt else None
    shown = outcome.otp_expires_at
    detail = {"timer": "T_otp", "shown": shown, "sent": sent}
    if not shown or not sent:
        return Check(False, f"the DTS showed OTP expiry {shown!r}; the gateway sent {sent!r}", detail)
    try:
        shown_at, sent_at = datetime.fromisoformat(shown), datetime.fromisoformat(sent)
    except ValueError:
        return Check(False, f"the OTP expiry shown, {shown!r}, is not a date-time", detail)
    if shown_at.utcoffset() is None:
        return Check(False, f"the OTP expiry shown, {shown!r}, does not say which local time it is", detail)
    gap = (shown_at - sent_at).total_seconds()
    if abs(gap) > tolerance:
        return Check(False, f"the DTS showed the OTP expiring at {shown}, the gateway's otpExpiresAt is {sent} "
                            f"({gap:+.2f} s, tolerance ±{tolerance:.2f} s)", detail)
    return Check(True, f"the DTS showed the OTP expiry {shown} (gateway: {sent})", detail)


def otp_notice(outcome, order_id: str | None, sender: str | None) -> Check:
    """PAY-08: the user learns the OTP was e-mailed from ``otpSender`` (the address, verbatim) and that mail from
    it must not be blocked (in the product's words: undecided without the usual ones)."""
    naming = [n for n in outcome.notifications if sender and sender in n.text]
    if not naming:
        return Check(False, f"no notification names the OTP sender {sender!r} (order {order_id}); shown: "
                            f"{[n.text for n in outcome.notifications][-3:]}")
    return checks.says(naming, NO_BLOCK_WORDS, f"that mail from {sender} must not be blocked", "")


def journal_attributes(journal: list[dict], message_id: str | None, user: tuple[str, str], what: str) -> Check:
    """SEC-06/SEC-08: every journal event of the submission names the local user and UserId who acted."""
    events = [e for e in journal if message_id and (e.get("submission") == message_id or e.get("messageId") == message_id)]
    if not events:
        return Check(False, f"the journal has no event for {what} ({message_id})")
    wrong = [(e.get("event"), e.get("user"), e.get("userId")) for e in events
             if (e.get("user"), e.get("userId")) != user]
    if wrong:
        return Check(False, f"the journal attributes {what} to {sorted(set(w[1:] for w in wrong))}, not to "
                            f"{user[0]} ({user[1]})", {"events": wrong[:5]})
    return Check(True, f"the journal attributes all {len(events)} event(s) of {what} to {user[0]} ({user[1]})")


def journal_of_user(journal: list[dict], user: tuple[str, str]) -> Check:
    """SEC-08: the local user acted, and every event of that user names his or her own UserId."""
    events = [e for e in journal if e.get("user") == user[0]]
    if not events:
        return Check(False, f"the journal has no event of local user {user[0]}")
    foreign = sorted({e.get("userId") for e in events} - {user[1]})
    if foreign:
        return Check(False, f"local user {user[0]} acted with UserId(s) {foreign}, not his or her own {user[1]}",
                     {"events": [(e.get("event"), e.get("userId")) for e in events][:6]})
    return Check(True, f"all {len(events)} journal event(s) of {user[0]} name his or her own UserId {user[1]}")


# --- cases ------------------------------------------------------------------------------------------

@case(
    "payment.order-description-and-notice",
    requirements=["PAY-01", "PAY-02", "PAY-08"],
    capability="payment",
    purpose="A payment order the user enters goes out with the canonical description of its tax lines and the "
            "acting UserId as maker, and the user is shown the order id, the OTP expiry in local time and that "
            "the OTP was e-mailed from otpSender, whose mail must not be blocked.",
)
def test_order_description_and_notice(ecdi):
    number = declaration_of_payer(ecdi)
    entry = ecdi.payment_entry(ENTRY, declaration_number=number)
    outcome = ecdi.create_payment(entry)
    order_request = last_sent(ecdi.requests(type="701", function="8"), "payment order(s)", ecdi, "PAY-01")
    header = checks.request_header(order_request, ecdi.profile)
    expected = canonical_description(header["From/identity"] if header else "", entry)
    ecdi.check(equal("the order's description", sent_value(order_request, "description"), expected), "PAY-01")
    ecdi.check(equal("maker (the request's UserId)", sent_value(order_request, "maker"), order_request.user_id),
               "PAY-02")
    ecdi.needs_recorded([order_request], "the payment order")    # S0005 (description, maker): PAY-01/PAY-02's FAIL
    receipt = checks.reply_result(order_request)
    ecdi.check(checks.same_value("paymentOrderId", outcome.payment_order_id,
                                 receipt.payment_order_id if receipt else None), "PAY-08", evidence=EvidenceKind.DRIVER)
    ecdi.check(expiry_shown(outcome, receipt, ecdi.tolerance(ecdi.timer("T_otp"))), "PAY-08",
               evidence=EvidenceKind.DRIVER)
    ecdi.check(otp_notice(outcome, outcome.payment_order_id, receipt.otp_sender if receipt else None), "PAY-08",
               evidence=EvidenceKind.DRIVER)


@case(
    "payment.maker-and-checker",
    requirements=["PAY-02", "SEC-08"],
    capability="payment",
    purpose="One local user makes a payment order and another approves it with the OTP from the e-mail: each "
            "request carries its own user's UserId as maker or checker, and the journal attributes each action "
            "to the right local user and UserId.",
)
def test_maker_and_checker(ecdi):
    maker, checker = two_users(ecdi)
    number = declaration_of_payer(ecdi)
    created = ecdi.create_payment(ecdi.payment_entry(ENTRY, declaration_number=number), user=maker[0])
    order_request = last_sent(ecdi.requests(type="701", function="8"), "payment order(s)", ecdi, "PAY-02")
    receipt = checks.reply_result(order_request)
    order_id = created.payment_order_id or (receipt.payment_order_id if receipt else None)
    otp = ecdi.otp_from_mail(order_id) if order_id else None
    ecdi.approve(order_id or "", otp or "", user=checker[0])
    ecdi.check(equal(f"maker of {maker[0]}'s order", sent_value(order_request, "maker"), maker[1]),
               "PAY-02")
    ecdi.check(equal(f"the SOAP UserId of {maker[0]}'s order", order_request.user_id, maker[1]), "SEC-08")
    # the order's maker is judged above; a refusal of the order (its description, say) leaves nothing to approve
    ecdi.needs_recorded([order_request], "the payment order to approve", outcome=created, judges=False)
    journal = ecdi.journal()
    for user in (maker, checker):
        ecdi.check(journal_of_user(journal, user), "SEC-08", evidence=EvidenceKind.FILE)
    ecdi.check(journal_attributes(journal, order_request.message_id, maker, "the payment order"), "SEC-08",
               evidence=EvidenceKind.FILE)
    approval = last_sent(ecdi.requests(type="702", function="8"), f"approval(s) by {checker[0]}", ecdi, "PAY-02")
    ecdi.check(equal(f"checker of {checker[0]}'s approval", sent_value(approval, "checker"),
                     checker[1]), "PAY-02")
    ecdi.check(equal(f"the SOAP UserId of {checker[0]}'s approval", approval.user_id, checker[1]), "SEC-08")
    ecdi.check(journal_attributes(journal, approval.message_id, checker, "the approval"), "SEC-08",
               evidence=EvidenceKind.FILE)
    ecdi.needs_recorded([approval], "the approval")              # S0005 (checker): PAY-02's FAIL


@case(
    "payment.expired-otp-renewed",
    requirements=["PAY-09", "PAY-10"],
    capability="payment",
    purpose="After the OTP expires (273 P0001) the user is told so, the expired OTP is never sent again, and the "
            "new OTP offered goes out for the order (702/16) and its OTP approves it.",
)
def test_expired_otp_renewed(ecdi):
    maker, checker = two_users(ecdi)
    number = declaration_of_payer(ecdi)
    created = ecdi.create_payment(ecdi.payment_entry(ENTRY, declaration_number=number), user=maker[0])
    ecdi.needs_recorded(ecdi.requests(type="701", function="8"), "the payment order", outcome=created)
    order_id = created.payment_order_id
    ecdi.check(Check(bool(order_id), f"the DTS showed payment order id {order_id!r}"), "PAY-09",
               evidence=EvidenceKind.DRIVER, stop=True)
    first_otp = ecdi.otp_from_mail(order_id)
    jump = ecdi.timer("T_otp") + ecdi.tolerance(ecdi.timer("T_otp"))
    ecdi.gateway.advance_clock(jump)                     # the OTP's validity ends on the gateway's clock
    try:
        refused = ecdi.approve(order_id, first_otp or "", user=checker[0])
        approvals = ecdi.requests(type="702", function="8")
        expired = [a for a in approvals if "P0001" in a.reply_codes]
        # no P0001, no stimulus: a DTS may even refuse locally an OTP it knows expired (INCONCLUSIVE, not FAIL)
        got = "; ".join(f"#{a.seq} {a.reply_function or 'no reply'} {' '.join(a.reply_codes)}".strip()
                        for a in approvals) or "no approval reached the gateway"
        ecdi.check(Check(bool(expired), f"the approval with the expired OTP got: {got}",
                         expected="the gateway answers the approval sent after T_otp with 273 P0001 (OTP expired)",
                         observed=f"the gateway's answers to the approvals: {got}"), "PAY-10",
                   severity=Verdict.INCONCLUSIVE, stop=True)
        ecdi.check(checks.told_user(refused, EXPIRED_OTP_WORDS, "that the OTP expired or was invalidated"),
                   "PAY-10", evidence=EvidenceKind.DRIVER)
        ecdi.approve(order_id, first_otp or "", user=checker[0])      # the user types the same OTP again
        after = [a for a in ecdi.requests(type="702", function="8") if a.seq > expired[0].seq]
        refused_otp = ecdi.fingerprint(first_otp)
        again = [a for a, otp in zip(after, otps_sent(after)) if otp == refused_otp and a.message_id != expired[0].message_id]
        ecdi.check(Check(not again, f"after P0001, {len(again)} new approval(s) carried the refused OTP",
                         {"exchanges": [a.seq for a in again]}), "PAY-10")
        renewed = ecdi.request_otp(order_id, user=checker[0])
        requests = ecdi.requests(type="702", function="16")
        ecdi.check(checks.something_sent(requests, "after P0001, the new-OTP request", renewed), "PAY-09", stop=True)
        ecdi.needs_recorded(requests[-1:], "the new-OTP request")
        new_otp = ecdi.otp_from_mail(order_id)
        approved = ecdi.approve(order_id, new_otp or "", user=checker[0])
        last = ecdi.requests(type="702", function="8")[-1]
        carried, mailed = otps_sent([last])[0], ecdi.fingerprint(new_otp)
        ecdi.check(Check(carried == mailed, "the approval carried the new e-mail's OTP" if carried == mailed else
                         f"the approval carried OTP {carried}, the new e-mail's is {mailed}"), "PAY-09")
        ecdi.needs_recorded([last], "the approval with the new OTP")
        ecdi.check(checks.outcome_state(approved, {"accepted"}), "PAY-09", evidence=EvidenceKind.DRIVER)
    finally:
        ecdi.gateway.advance_clock(-jump)                # later cases meet the gateway's clock as it was


@case(
    "payment.maker-cannot-approve",
    requirements=["PAY-11"],
    capability="payment",
    purpose="The user who made a payment order tries to approve it: no approval is sent and the user is told why "
            "(a MUST from 1.1; in 1.0 a SHOULD, reported without affecting conformance).",
)
def test_maker_cannot_approve(ecdi):
    number = declaration_of_payer(ecdi)
    created = ecdi.create_payment(ecdi.payment_entry(ENTRY, declaration_number=number))
    ecdi.needs_recorded(ecdi.requests(type="701", function="8"), "the payment order", outcome=created)
    order_id = created.payment_order_id
    ecdi.check(Check(bool(order_id), f"the DTS showed payment order id {order_id!r}"), "PAY-11",
               evidence=EvidenceKind.DRIVER, stop=True)
    outcome = ecdi.approve(order_id, ecdi.otp_from_mail(order_id) or "")     # the same (first) user
    ecdi.check(checks.nothing_sent(ecdi.requests(type="702", function="8"), "the maker's own approval"), "PAY-11")
    ecdi.check(checks.told_user(outcome, MAKER_WORDS, "why the maker may not approve the order"), "PAY-11",
               evidence=EvidenceKind.DRIVER)


@case(
    "payment.otp-mail-never-arrives",
    requirements=["PAY-08", "PAY-09"],
    capability="payment",
    purpose="The OTP e-mail of a new order never arrives (blocked): the user, who was told where it comes from, "
            "requests a new OTP, is shown the new expiry and approves with it — nothing waits for the lost mail.",
)
def test_otp_mail_never_arrives(ecdi):
    maker, checker = two_users(ecdi)
    ecdi.given(scenarios.scenario("otp-mail-withheld",
                                  scenarios.rule({"action": "withhold_mail"}, type_="701", function="8", times=1)))
    number = declaration_of_payer(ecdi)
    created = ecdi.create_payment(ecdi.payment_entry(ENTRY, declaration_number=number), user=maker[0])
    ecdi.needs_recorded(ecdi.requests(type="701", function="8"), "the payment order", outcome=created)
    order_id = created.payment_order_id
    ecdi.check(Check(bool(order_id), f"the DTS showed payment order id {order_id!r}"), "PAY-09",
               evidence=EvidenceKind.DRIVER, stop=True)
    lost = ecdi.otp_mails(order_id)
    if lost:
        ecdi.inconclusive(f"the gateway delivered {len(lost)} OTP e-mail(s) it was told to withhold", "PAY-09")
    renewed = ecdi.request_otp(order_id, user=checker[0])
    requests = ecdi.requests(type="702", function="16")
    ecdi.check(checks.something_sent(requests, "with no OTP e-mail, the new-OTP request", renewed), "PAY-09",
               stop=True)
    ecdi.needs_recorded(requests, "the new-OTP request")
    receipt = checks.reply_result(requests[0])
    ecdi.check(checks.same_value("paymentOrderId after the new-OTP request", renewed.payment_order_id,
                                 receipt.payment_order_id if receipt else None), "PAY-08", evidence=EvidenceKind.DRIVER)
    ecdi.check(expiry_shown(renewed, receipt, ecdi.tolerance(ecdi.timer("T_otp"))), "PAY-08",
               evidence=EvidenceKind.DRIVER)
    otp = ecdi.otp_from_mail(order_id)
    ecdi.check(Check(otp is not None, "the new OTP's e-mail arrived" if otp else "no e-mail after the new-OTP request"),
               "PAY-09", stop=True)
    approved = ecdi.approve(order_id, otp, user=checker[0])
    ecdi.check(checks.approved_with_current_otp(approved, ecdi.requests(type="702", function="8")), "PAY-09",
               evidence=EvidenceKind.DRIVER)
