"""CGW payment family (§10 PAY, ENV-05): orders, OTPs, maker and checker, as a gateway must run them.

The harness pays the taxes of a declaration it declared (Table 6-4: tax lines name a declaration of the
payer) and reads the OTP where the user would: the e-mail, through the statement's OTP mailbox. Without
that facility a case that needs it is NOT-APPLICABLE, saying so: it never passes a gateway it could not judge. OTP validity is timed in real
time (scaled T_otp): moving a shared gateway clock would expire the OTPs of the cases running beside it.
"""

import re
import time

from conformance import cgw_documents as documents
from conformance import cgw_play as play
from conformance.case import Check, case, runs_first
from conformance.checks import gateway_replies as gr
from conformance.codec.envelope import parse_datetime

ORDER_ID = re.compile(r"PO[0-9]{14}")
DESCRIPTION = "/Envelope/Body/Content/PaymentOrder/description"


def order_fields(reply, ecdi) -> Check:
    """PAY-03/05: a 29 with receptionNumber, paymentOrderId, otpSender (the statement's) and otpExpiresAt."""
    got = gr.read_reply(reply, ecdi.profile)
    if isinstance(got, str):
        return Check(False, got)
    r = got.result
    problems = [p for p, bad in (
        (f"no receptionNumber", not r.reception_number),
        (f"paymentOrderId {r.payment_order_id!r} is not PO + 14 digits", not ORDER_ID.fullmatch(r.payment_order_id or "")),
        (f"otpSender {r.otp_sender!r}, published {ecdi.statement.parameters['otp_sender']!r}",
         r.otp_sender != ecdi.statement.parameters["otp_sender"]),
        ("no otpExpiresAt", not r.otp_expires_at)) if bad]
    if got.function != "29" or problems:
        return Check(False, f"the {got.summary()} reply: " + ("; ".join(problems) or "not a 29"))
    return Check(True, f"29 with receptionNumber {r.reception_number}, {r.payment_order_id}, otpSender "
                       f"{r.otp_sender}, otpExpiresAt {r.otp_expires_at}")


def otp_validity(reply, ecdi) -> Check:
    """PAY-04: otpExpiresAt = issue time + T_otp of the profile (scaled, §2.1), read against the reply's own
    createMessageIssue (the gateway's clock when it signed, as written: to the second or finer), within the
    tolerance of the run."""
    got = gr.read_reply(reply, ecdi.profile)
    if isinstance(got, str) or not got.result.otp_expires_at:
        return Check(False, got if isinstance(got, str) else "no otpExpiresAt")
    written = got.header["SendApplication/createMessageIssue"]
    seconds = (parse_datetime(got.result.otp_expires_at) - parse_datetime(written)).total_seconds()
    want, slack = ecdi.timer("T_otp"), ecdi.tolerance(ecdi.timer("T_otp"))
    resolution = 0.001 if "." in written else 1.0       # a time without fractions hides up to a second
    if want - slack <= seconds <= want + resolution + slack:
        return Check(True, f"the OTP is valid {seconds:.1f} s from issue (T_otp {want:g} s in {ecdi.profile.id})")
    return Check(False, f"the OTP is valid {seconds:.1f} s from issue; T_otp is {want:g} s in {ecdi.profile.id} "
                        f"(± {slack:g} s)")


def otp_absent(reply, otp: str) -> Check:
    """PAY-04: the OTP never appears in an ECDI reply."""
    if reply is not None and otp.encode() in reply:
        return Check(False, "the OTP appears in the reply's octets")
    return Check(True, "the OTP is not in the reply")


def expires_at(order_reply, ecdi):
    got = gr.read_reply(order_reply, ecdi.profile)
    return None if isinstance(got, str) or not got.result.otp_expires_at else parse_datetime(got.result.otp_expires_at)


def judge(ecdi, rid: str, reply, order_reply, function: str, code: str, why: str) -> bool:
    """The approval's answer; a P0001 the OTP's own expiry explains (the gateway signed it at or after
    otpExpiresAt: the harness was slower than a scaled T_otp) is INCONCLUSIVE, not the gateway's fault."""
    got, deadline = gr.read_reply(reply, ecdi.profile), expires_at(order_reply, ecdi)
    if (code != "P0001" and not isinstance(got, str) and got.result.result_code == "P0001" and deadline is not None
            and parse_datetime(got.header["SendApplication/createMessageIssue"]) >= deadline):
        ecdi.inconclusive(f"{why}: the OTP had expired by itself (otpExpiresAt {deadline.isoformat()}, T_otp "
                          f"{ecdi.timer('T_otp'):g} s): the harness was too slow to judge", rid)
        ecdi.disturbed = True          # the plugin runs the case again, alone
        return False
    return ecdi.check(gr.answered(reply, ecdi.profile, function, code, why=why), rid)


def refused_old_otp(reply, profile) -> Check:
    """PAY-04/05: the replaced OTP no longer approves — 273 P0001 (invalidated) or P0002 (not the current
    OTP's value): PAY-06's order reads either way (decisions.md)."""
    got = gr.read_reply(reply, profile)
    if not isinstance(got, str) and got.function == "273" and got.result.result_code in ("P0001", "P0002"):
        return Check(True, f"the replaced OTP is refused: {got.summary()}")
    return Check(False, f"the replaced OTP: {got if isinstance(got, str) else got.summary()}, expected 273 P0001 "
                        "or P0002")


@case(
    "cgw-payment.order-and-otp", party="CGW", requirements=["PAY-03", "PAY-04", "PAY-05", "ENV-05"],
    purpose="A payment order is receipted 29 with its reception number, paymentOrderId, otpSender and "
            "otpExpiresAt = issue + T_otp of the profile; the OTP comes by e-mail only; a 702/16 issues a new "
            "OTP (29 again) that invalidates the old one (P0001); a 702/16 for an unknown order is P0004, one "
            "whose reference differs from its paymentOrderId X0002. A gateway that puts the OTP in a reply, "
            "keeps 1.0's 120 s under 1.1, or lets an old OTP approve, FAILs.",
)
def test_order_and_otp(ecdi):
    mailbox = play.control(ecdi, "otp_mailbox")
    reply, order_id = play.ordered(ecdi)
    ecdi.check(order_fields(reply, ecdi), "PAY-03")
    ecdi.check(otp_validity(reply, ecdi), "PAY-04")
    first = mailbox.latest_otp(order_id)
    ecdi.check(otp_absent(reply, first), "PAY-04")
    _, renewed = play.payment(ecdi, documents.otp_request(order_id), type="702", function="16", reference=order_id)
    ecdi.check(order_fields(renewed, ecdi), "PAY-05")
    second = mailbox.latest_otp(order_id)
    ecdi.check(otp_absent(renewed, second), "PAY-04")
    if second == first:
        ecdi.inconclusive("the new OTP drew the old one's value (1 in 10^6): its invalidation cannot be told", "PAY-05")
    else:
        ecdi.check(refused_old_otp(play.approve(ecdi, order_id, first), ecdi.profile), "PAY-05")
    unknown = "PO" + "9" * 14
    _, none = play.payment(ecdi, documents.otp_request(unknown), type="702", function="16", reference=unknown)
    ecdi.check(gr.answered(none, ecdi.profile, "272", "P0004", why="a 702/16 for an unknown order"), "PAY-05")
    _, mismatch = play.payment(ecdi, documents.otp_request(order_id), type="702", function="16", reference=unknown)
    ecdi.check(gr.answered(mismatch, ecdi.profile, "271", "X0002", why="Subject/reference ≠ paymentOrderId"),
               "ENV-05")


@case(
    "cgw-payment.approval", party="CGW", requirements=["PAY-06", "PAY-02"],
    purpose="A wrong OTP is 273 P0002, and the N_otp_attempts-th wrong one invalidates the OTP (then even the "
            "right one is P0001); on another order the right OTP from the checker is 32 with the paymentOrderId, "
            "and approving it again P0004. A checker other than the sending user is 272 S0005. A gateway with "
            "no attempt limit, or that approves twice, FAILs.",
)
def test_approval(ecdi):
    mailbox = play.control(ecdi, "otp_mailbox")
    _, _, number = play.declared(ecdi, "the declaration the orders pay")
    order, order_id = play.ordered(ecdi, number)
    right = mailbox.latest_otp(order_id)
    wrong = f"{(int(right) + 1) % 1_000_000:06d}"
    limit = int(ecdi.profile.params["N_otp_attempts"])
    in_time = all(judge(ecdi, "PAY-06", play.approve(ecdi, order_id, wrong), order, "273", "P0002",
                        f"wrong OTP, attempt {attempt} of {limit}") for attempt in range(1, limit + 1))
    if in_time:
        ecdi.check(gr.answered(play.approve(ecdi, order_id, right), ecdi.profile, "273", "P0001",
                               why=f"the right OTP after {limit} wrong ones"), "PAY-06")
    other, other_id = play.ordered(ecdi, number)
    otp = mailbox.latest_otp(other_id)
    checker = play.checker(ecdi)
    stranger = documents.approval(other_id, play.account(ecdi).user, otp)       # checker ≠ the sending user
    ecdi.check(gr.answered(play.payment(ecdi, stranger, type="702", by=checker)[1], ecdi.profile, "272", "S0005",
                           why="checker is not the SOAP UserId"), "PAY-02")
    approved = play.approve(ecdi, other_id, otp)
    if not judge(ecdi, "PAY-06", approved, other, "32", "00000", "the right OTP from the checker"):
        return
    got = gr.read_reply(approved, ecdi.profile)
    ecdi.check(Check(not isinstance(got, str) and got.result.payment_order_id == other_id,
                     f"the 32 names paymentOrderId {None if isinstance(got, str) else got.result.payment_order_id}"),
               "PAY-06")
    ecdi.check(gr.answered(play.approve(ecdi, other_id, otp), ecdi.profile, "272", "P0004",
                           why="an order already approved"), "PAY-06")


@case(
    "cgw-payment.maker-checker", party="CGW", requirements=["PAY-07", "PAY-02"],
    purpose="In 1.1 the maker approving his own order gets 273 P0003 (before any OTP check); in 1.0 the gateway "
            "does what it publishes (parameters.mc_required). An order whose maker is not the sending user is "
            "272 S0005. A 1.1 gateway that lets the maker approve FAILs.",
)
def test_maker_checker(ecdi):
    refuses = ecdi.profile.params.get("MC_required") == "mandatory" or ecdi.statement.parameters["mc_required"]
    order, order_id = play.ordered(ecdi)
    maker = play.account(ecdi)
    if refuses:
        reply = play.approve(ecdi, order_id, "000000", by=maker)     # P0003 comes before the OTP (PAY-06)
        ecdi.check(gr.answered(reply, ecdi.profile, "273", "P0003", why="the maker as checker"), "PAY-07")
    else:
        otp = play.control(ecdi, "otp_mailbox").latest_otp(order_id)
        judge(ecdi, "PAY-07", play.approve(ecdi, order_id, otp, by=maker), order, "32", "00000",
              "maker as checker, published as allowed")
    checker = play.checker(ecdi)
    _, _, number = play.declared(ecdi, "the declaration of the misattributed order")
    order = documents.payment_order(maker.tax_code, checker.user, number)          # maker ≠ the sending user
    _, reply = play.payment(ecdi, order)
    ecdi.check(gr.answered(reply, ecdi.profile, "272", "S0005", why="maker is not the SOAP UserId"), "PAY-02")


@case(
    "cgw-payment.description", party="CGW", requirements=["PAY-01"],
    purpose="The canonical description (ECDI+MST:taxcode, one +TK: per tax line in order, +GC: note) is "
            "accepted; a lower-case prefix, tax lines out of order, another tax code or an amount differing from "
            "its TaxLine is 272 S0005 at the description. A gateway that accepts any text FAILs.",
)
def test_description(ecdi):
    _, _, number = play.declared(ecdi, "the declaration the orders pay")
    tax_code = play.account(ecdi).tax_code
    lines = [(number, tax, amount) for tax, amount in documents.TAX_LINES]
    canonical = documents.description(tax_code, lines)
    _, reply = play.payment(ecdi, documents.payment_order(tax_code, play.account(ecdi).user, number))
    ecdi.check(gr.accepted(reply, ecdi.profile, why=f"the canonical {canonical!r}"), "PAY-01")
    for what, rendered in (
            ("a lower-case prefix", "ecdi" + canonical[4:]),
            ("the tax lines out of order", documents.description(tax_code, lines[::-1])),
            ("another tax code", documents.description("0100000000", lines)),
            ("an amount differing from its TaxLine", documents.description(
                tax_code, [lines[0][:2] + (str(int(lines[0][2]) + 1),), *lines[1:]]))):
        order = documents.payment_order(tax_code, play.account(ecdi).user, number, rendered=rendered)
        ecdi.check(gr.answered(play.payment(ecdi, order)[1], ecdi.profile, "272", "S0005", field=DESCRIPTION,
                               why=what), "PAY-01")


@runs_first     # it waits T_otp of the profile in real time (300 s in 1.1 at time scale 1)
@case(
    "cgw-payment.otp-validity", party="CGW", requirements=["PAY-04", "PAY-06"],
    purpose="An OTP still approves just before T_otp of the profile after its issue (120 s in 1.0, 300 s in 1.1, "
            "scaled) and is 273 P0001 just after it, timed in real time from the orders' sending. A 1.1 gateway "
            "still expiring OTPs after 1.0's 120 s, or never expiring them, FAILs.",
)
def test_otp_validity(ecdi):
    mailbox = play.control(ecdi, "otp_mailbox")
    t_otp = ecdi.timer("T_otp")
    margin = max(ecdi.tolerance(t_otp), 0.1 * t_otp)
    _, _, number = play.declared(ecdi, "the declaration the orders pay")
    sent = time.time()                            # the first order is issued after this
    _, early_id = play.ordered(ecdi, number)
    _, late_id = play.ordered(ecdi, number)
    issued_by = time.time()                       # the second order was issued before this
    otps = {i: mailbox.latest_otp(i) for i in (early_id, late_id)}
    wait = sent + t_otp - margin - time.time()
    if wait < 0:
        too_slow(ecdi, f"the orders took {time.time() - sent:.1f} s to place, past T_otp - {margin:g} s")
        return
    time.sleep(wait)
    reply = play.approve(ecdi, early_id, otps[early_id])
    took = ecdi.exchanges()[-1].responded_at - sent          # the approval was answered this long after issue
    got = gr.read_reply(reply, ecdi.profile)
    if took >= t_otp and not isinstance(got, str) and got.result.result_code == "P0001":
        too_slow(ecdi, f"the approval was answered {took:.2f} s after the order was sent, past T_otp {t_otp:g} s")
        return
    ecdi.check(gr.answered(reply, ecdi.profile, "32", "00000",
                           why=f"answered {took:.2f} s after the order was sent; T_otp {t_otp:g} s in "
                               f"{ecdi.profile.id}"), "PAY-04")
    time.sleep(max(0.0, issued_by + t_otp + margin - time.time()))
    for what in (f"at least {t_otp + margin:g} s after issue; T_otp {t_otp:g} s in {ecdi.profile.id}",
                 "an expired OTP stays expired"):
        ecdi.check(gr.answered(play.approve(ecdi, late_id, otps[late_id]), ecdi.profile, "273", "P0001", why=what),
                   "PAY-04" if what.startswith("at least") else "PAY-06")


def too_slow(ecdi, why: str) -> None:
    """The harness, not the gateway, missed the moment: INCONCLUSIVE, and the case runs again alone."""
    ecdi.inconclusive(f"{why}: the harness was too slow to judge the OTP's validity", "PAY-04")
    ecdi.disturbed = True
