"""CGW payment family (§10 PAY, ENV-05): orders, OTPs, maker and checker, as a gateway must run them.

The harness pays the taxes of a declaration it declared (Table 6-4: tax lines name a declaration of the
payer) and reads the OTP where the user would: the e-mail, through the statement's OTP mailbox. Without
that facility a case that needs it is NOT-APPLICABLE, saying so: it never passes a gateway it could not judge. OTP validity is timed in real
time (scaled T_otp): moving a shared gateway clock would expire the OTPs of the cases running beside it.
"""

import time

from conformance import cgw_documents as documents
from conformance import cgw_play as play
from conformance.case import Check, case, runs_first
from conformance.checks import gateway_payments as pay
from conformance.checks import gateway_replies as gr
from conformance.codec.envelope import parse_datetime

DESCRIPTION = "/Envelope/Body/Content/PaymentOrder/description"


def otp_sender(ecdi) -> str:
    return ecdi.statement.parameters["otp_sender"]


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


@case(
    "cgw-payment.order-and-otp", party="CGW", requirements=["PAY-03", "PAY-04", "PAY-05", "ENV-05"],
    purpose="A payment order is receipted 29 with its reception number, paymentOrderId, otpSender and "
            "otpExpiresAt = issue + T_otp of the profile; the OTP comes by e-mail only; a 702/16 issues a new "
            "OTP (29 again) that invalidates the old one (P0001); a 702/16 for an unknown order is P0004, one "
            "whose reference differs from its paymentOrderId X0002. A gateway that puts the OTP in a reply, "
            "keeps 1.0's 120 s under 1.1, or lets an old OTP approve, FAILs.",
)
def test_order_and_otp(ecdi):
    ecdi.facility("otp_mailbox")
    order, order_id = play.ordered(ecdi)
    reply = order.reply_text
    ecdi.check(pay.order_fields(reply, ecdi.profile, otp_sender(ecdi)), "PAY-03")
    t_otp = ecdi.timer("T_otp")
    ecdi.check(pay.otp_validity(reply, ecdi.profile, t_otp, ecdi.tolerance(t_otp)), "PAY-04")
    first = play.otp(ecdi, order_id)
    ecdi.check(pay.otp_absent(reply, first), "PAY-04")
    _, renewed = otp_request(ecdi, order_id, order_id)
    ecdi.check(pay.order_fields(renewed, ecdi.profile, otp_sender(ecdi)), "PAY-05")
    second = play.otp(ecdi, order_id)
    ecdi.check(pay.otp_absent(renewed, second), "PAY-04")
    if second == first:
        ecdi.inconclusive("the new OTP drew the old one's value (1 in 10^6): its invalidation cannot be told", "PAY-05")
    else:
        ecdi.check(pay.refused_old_otp(play.approve(ecdi, order_id, first).reply_text, ecdi.profile), "PAY-05")
    unknown = "PO" + "9" * 14
    _, none = otp_request(ecdi, unknown, unknown)
    ecdi.check(gr.answered(none, ecdi.profile, "272", "P0004", why="a 702/16 for an unknown order"), "PAY-05")
    _, mismatch = otp_request(ecdi, order_id, unknown)
    ecdi.check(gr.answered(mismatch, ecdi.profile, "271", "X0002", why="Subject/reference ≠ paymentOrderId"),
               "ENV-05")


def otp_request(ecdi, order_id: str, reference: str):
    """A 702/16 for ``order_id`` whose Subject/reference is ``reference`` (ENV-05: they must agree)."""
    return play.payment(ecdi, lambda c: documents.otp_request(order_id), type="702", function="16",
                        reference=reference)


@case(
    "cgw-payment.approval", party="CGW", requirements=["PAY-06", "PAY-02"],
    purpose="A wrong OTP is 273 P0002, and the N_otp_attempts-th wrong one invalidates the OTP (then even the "
            "right one is P0001); on another order the right OTP from the checker is 32 with the paymentOrderId, "
            "and approving it again P0004. A checker other than the sending user is 272 S0005. A gateway with "
            "no attempt limit, or that approves twice, FAILs.",
)
def test_approval(ecdi):
    ecdi.facility("otp_mailbox")
    _, _, number = play.declared(ecdi, "the declaration the orders pay")
    order, order_id = play.ordered(ecdi, number)
    right = play.otp(ecdi, order_id)
    wrong = "000000" if right != "000000" else "111111"
    limit = int(ecdi.profile.params["N_otp_attempts"])
    in_time = all(judge(ecdi, "PAY-06", play.approve(ecdi, order_id, wrong).reply_text, order.reply_text, "273",
                        "P0002", f"wrong OTP, attempt {attempt} of {limit}") for attempt in range(1, limit + 1))
    if in_time:
        ecdi.check(gr.answered(play.approve(ecdi, order_id, right).reply_text, ecdi.profile, "273", "P0001",
                               why=f"the right OTP after {limit} wrong ones"), "PAY-06")
    other, other_id = play.ordered(ecdi, number)
    value = play.otp(ecdi, other_id)
    checker = play.checker(ecdi)
    stranger = lambda c: documents.approval(other_id, play.user(ecdi), value)    # noqa: E731 — checker ≠ sender
    ecdi.check(gr.answered(play.payment(ecdi, stranger, type="702", by=checker)[1], ecdi.profile, "272", "S0005",
                           why="checker is not the SOAP UserId"), "PAY-02")
    approved = play.approve(ecdi, other_id, value).reply_text
    if not judge(ecdi, "PAY-06", approved, other.reply_text, "32", "00000", "the right OTP from the checker"):
        return
    got = gr.read_reply(approved, ecdi.profile)
    ecdi.check(Check(not isinstance(got, str) and got.result.payment_order_id == other_id,
                     f"the 32 names paymentOrderId {None if isinstance(got, str) else got.result.payment_order_id}"),
               "PAY-06")
    ecdi.check(gr.answered(play.approve(ecdi, other_id, value).reply_text, ecdi.profile, "272", "P0004",
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
    maker = play.account_named(ecdi, play.user(ecdi))
    if refuses:
        reply = play.approve(ecdi, order_id, "000000", by=maker).reply_text     # P0003 precedes the OTP (PAY-06)
        ecdi.check(gr.answered(reply, ecdi.profile, "273", "P0003", why="the maker as checker"), "PAY-07")
    else:
        value = play.otp(ecdi, order_id)
        judge(ecdi, "PAY-07", play.approve(ecdi, order_id, value, by=maker).reply_text, order.reply_text, "32",
              "00000", "maker as checker, published as allowed")
    checker = play.checker(ecdi)
    _, _, number = play.declared(ecdi, "the declaration of the misattributed order")
    _, reply = play.payment(ecdi, lambda c: documents.payment_order(c.accounts[0].tax_code, checker.user, number))
    ecdi.check(gr.answered(reply, ecdi.profile, "272", "S0005", why="maker is not the SOAP UserId"), "PAY-02")


@case(
    "cgw-payment.description", party="CGW", requirements=["PAY-01"],
    purpose="The canonical description (ECDI+MST:taxcode, one +TK: per tax line in order, +GC: note) is "
            "accepted; a lower-case prefix, tax lines out of order, another tax code or an amount differing from "
            "its TaxLine is 272 S0005 at the description. A gateway that accepts any text FAILs.",
)
def test_description(ecdi):
    _, _, number = play.declared(ecdi, "the declaration the orders pay")
    lines = [(number, tax, amount) for tax, amount in documents.TAX_LINES]

    def order(render):
        return lambda c: documents.payment_order(c.accounts[0].tax_code, c.accounts[0].user, number,
                                                 rendered=render(c.accounts[0].tax_code))
    _, reply = play.payment(ecdi, order(lambda tax_code: documents.description(tax_code, lines)))
    ecdi.check(gr.accepted(reply, ecdi.profile, why="the canonical description"), "PAY-01")
    for what, render in (
            ("a lower-case prefix", lambda tax_code: "ecdi" + documents.description(tax_code, lines)[4:]),
            ("the tax lines out of order", lambda tax_code: documents.description(tax_code, lines[::-1])),
            ("another tax code", lambda tax_code: documents.description("0100000000", lines)),
            ("an amount differing from its TaxLine", lambda tax_code: documents.description(
                tax_code, [lines[0][:2] + (str(int(lines[0][2]) + 1),), *lines[1:]]))):
        ecdi.check(gr.answered(play.payment(ecdi, order(render))[1], ecdi.profile, "272", "S0005", field=DESCRIPTION,
                               why=what), "PAY-01")


@runs_first     # it waits T_otp of the profile in real time (300 s in 1.1 at time scale 1)
@case(
    "cgw-payment.otp-validity", party="CGW", requirements=["PAY-04", "PAY-06"],
    purpose="An OTP still approves just before T_otp of the profile after its issue (120 s in 1.0, 300 s in 1.1, "
            "scaled) and is 273 P0001 just after it, timed in real time from the orders' sending. A 1.1 gateway "
            "still expiring OTPs after 1.0's 120 s, or never expiring them, FAILs.",
)
def test_otp_validity(ecdi):
    ecdi.facility("otp_mailbox")
    t_otp = ecdi.timer("T_otp")
    margin = max(ecdi.tolerance(t_otp), 0.1 * t_otp)
    _, _, number = play.declared(ecdi, "the declaration the orders pay")
    early, early_id = play.ordered(ecdi, number)        # issued after early.received_at (the harness's clock)
    late, late_id = play.ordered(ecdi, number)          # issued before late.responded_at
    otps = {i: play.otp(ecdi, i) for i in (early_id, late_id)}
    time.sleep(max(0.0, early.received_at + t_otp - margin - time.time()))
    approval = play.approve(ecdi, early_id, otps[early_id])
    took = approval.responded_at - early.received_at    # the approval reached the gateway at most this after issue
    got = gr.read_reply(approval.reply_text, ecdi.profile)
    if took >= t_otp and not isinstance(got, str) and got.result.result_code == "P0001":
        too_slow(ecdi, f"the approval was answered {took:.2f} s after the order was sent, past T_otp {t_otp:g} s")
        return
    ecdi.check(gr.answered(approval.reply_text, ecdi.profile, "32", "00000",
                           why=f"answered {took:.2f} s after the order was sent; T_otp {t_otp:g} s in "
                               f"{ecdi.profile.id}"), "PAY-04")
    time.sleep(max(0.0, late.responded_at + t_otp + margin - time.time()))
    for what in (f"at least {t_otp + margin:g} s after issue; T_otp {t_otp:g} s in {ecdi.profile.id}",
                 "an expired OTP stays expired"):
        ecdi.check(gr.answered(play.approve(ecdi, late_id, otps[late_id]).reply_text, ecdi.profile, "273", "P0001",
                               why=what), "PAY-04" if what.startswith("at least") else "PAY-06")


def too_slow(ecdi, why: str) -> None:
    """The harness, not the gateway, missed the moment: INCONCLUSIVE, and the case runs again alone."""
    ecdi.inconclusive(f"{why}: the harness was too slow to judge the OTP's validity", "PAY-04")
    ecdi.disturbed = True
