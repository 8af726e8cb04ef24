"""Payment replies judged from their octets (§10 PAY): the 29 to an order or a 702/16, the OTP's validity
as the reply states it, the OTP kept out of replies, a replaced OTP refused."""

from __future__ import annotations

import re

from ..case import Check
from ..codec.envelope import parse_datetime
from . import gateway_replies as gr

ORDER_ID = re.compile(r"PO[0-9]{14}")


def order_fields(reply, profile, otp_sender: str) -> Check:
    """PAY-03/05: a 29 with receptionNumber, paymentOrderId, otpSender (the published one) and otpExpiresAt."""
    got = gr.read_reply(reply, profile)
    if isinstance(got, str):
        return Check(False, got)
    r = got.result
    problems = [p for p, bad in (
        ("no receptionNumber", not r.reception_number),
        (f"paymentOrderId {r.payment_order_id!r} is not PO + 14 digits", not ORDER_ID.fullmatch(r.payment_order_id or "")),
        (f"otpSender {r.otp_sender!r}, published {otp_sender!r}", r.otp_sender != otp_sender),
        ("no otpExpiresAt", not r.otp_expires_at)) if bad]
    if got.function != "29" or problems:
        return Check(False, f"the {got.summary()} reply: " + ("; ".join(problems) or "not a 29"))
    return Check(True, f"29 with receptionNumber {r.reception_number}, {r.payment_order_id}, otpSender "
                       f"{r.otp_sender}, otpExpiresAt {r.otp_expires_at}")


def otp_validity(reply, profile, t_otp: float, slack: float) -> Check:
    """PAY-04: otpExpiresAt = issue time + T_otp of the profile (scaled, §2.1), read against the reply's own
    createMessageIssue (the gateway's clock when it signed, as written: to the second or finer), within the
    tolerance of the run."""
    got = gr.read_reply(reply, profile)
    if isinstance(got, str) or not got.result.otp_expires_at:
        return Check(False, got if isinstance(got, str) else "no otpExpiresAt")
    written = got.header["SendApplication/createMessageIssue"]
    seconds = (parse_datetime(got.result.otp_expires_at) - parse_datetime(written)).total_seconds()
    want = t_otp
    resolution = 0.001 if "." in written else 1.0       # a time without fractions hides up to a second
    if want - slack <= seconds <= want + resolution + slack:
        return Check(True, f"the OTP is valid {seconds:.1f} s from issue (T_otp {want:g} s in {profile.id})")
    return Check(False, f"the OTP is valid {seconds:.1f} s from issue; T_otp is {want:g} s in {profile.id} "
                        f"(± {slack:g} s)")


def otp_absent(reply, otp: str) -> Check:
    """PAY-04: the OTP never appears in an ECDI reply."""
    if reply is not None and otp.encode() in reply:
        return Check(False, "the OTP appears in the reply's octets")
    return Check(True, "the OTP is not in the reply")


def refused_old_otp(reply, profile) -> Check:
    """PAY-04/05: the replaced OTP no longer approves — 273 P0001 (invalidated) or P0002 (not the current
    OTP's value): PAY-06's order reads either way (decisions.md)."""
    got = gr.read_reply(reply, profile)
    if not isinstance(got, str) and got.function == "273" and got.result.result_code in ("P0001", "P0002"):
        return Check(True, f"the replaced OTP is refused: {got.summary()}")
    return Check(False, f"the replaced OTP: {got if isinstance(got, str) else got.summary()}, expected 273 P0001 "
                        "or P0002")
