"""CGW checks family (RPL-05, §11 TXT, §4 ENV, §6 DOC): the order of Table 7-3 and the code each step gives.

The harness plays the DTS: each case sends valid requests with defects made in them (``evaluation_order``),
one at each step and two at once, and judges the answer from the reply's octets. A gateway that checks in
another order, gives another code, or lets a defect through FAILs on the step's requirement.
"""

import base64
from urllib.parse import urlencode, urlsplit

from conformance import cgw_play as play
from conformance import evaluation_order as order
from conformance.case import case
from conformance.checks import gateway_replies as gr


def judge(ecdi, defects, requirements, given=None) -> None:
    """Send ``defects`` in one request; the earliest step's reply and code, on each of ``requirements``."""
    given = given or play.given_for(ecdi, defects)
    _, reply = play.defective(ecdi, defects, given)
    want = order.winner(defects)
    why = " + ".join(f"{d.what} (step {d.step})" for d in defects)
    check = gr.answered(reply, ecdi.profile, want.function, want.code, field=want.field, why=why)
    for rid in requirements:
        ecdi.check(check, rid)


def each(ecdi, defects) -> None:
    """Each defect alone, judged on the requirements behind it that the case declares."""
    for defect in defects:
        if order.applies([defect], ecdi.profile.version):
            judge(ecdi, [defect], [r for r in ("RPL-05", *defect.requirements) if r in ecdi.spec.requirements])


@case(
    "cgw-checks.each-step-its-code", party="CGW",
    requirements=["RPL-05", "TRN-12", "TRN-13", "TXT-01", "REL-10", "CAP-03", "ENV-01", "ENV-08", "SIG-05",
                  "SIG-08", "ENV-03", "ENV-09", "DOC-01", "TXT-04", "REL-11", "DOC-03"],
    purpose="One defect at each step of Table 7-3 the harness can reach from a valid request (2-16) gets that "
            "step's reply and code and, where §5.3 fixes it, its Error/field. A gateway that skips a check, "
            "or answers it with another code, FAILs on the step's requirement.",
)
def test_each_step_its_code(ecdi):
    each(ecdi, order.STEPS)


@case(
    "cgw-checks.earlier-step-wins", party="CGW", requirements=["RPL-05"],
    purpose="Two defects of adjacent steps in one request: only the earlier step's code comes back. A gateway "
            "that evaluates out of Table 7-3's order (e.g. the signature before the envelope) answers the "
            "later step's code and FAILs.",
)
def test_earlier_step_wins(ecdi):
    for names in order.PAIRS:
        defects = [order.BY_NAME[n] for n in names]
        if order.applies(defects, ecdi.profile.version):
            judge(ecdi, defects, ["RPL-05"])


@case(
    "cgw-checks.text-rules", party="CGW", requirements=["TXT-01", "TXT-02", "TXT-03", "TXT-04", "TXT-05"],
    purpose="Message texts not in UTF-8, not well-formed or with a DOCTYPE get 271 X0001; non-NFC text, a "
            "control character or edge white space 271 X0002 at its path; 200 code points of Vietnamese pass "
            "where 201 do not (lengths in code points, not octets). A gateway that lets one through, or counts "
            "octets, FAILs.",
)
def test_text_rules(ecdi):
    each(ecdi, [d for d in order.RULES if d.requirements[0].startswith("TXT")])
    each(ecdi, [order.BY_NAME["description-200"], order.BY_NAME["long-description"]])


@case(
    "cgw-checks.envelope-rules", party="CGW", requirements=["ENV-01", "ENV-04", "ENV-06", "ENV-08", "DOC-01"],
    purpose="An attribute in the header, a type/function not of Table 4-2, a 1.1 request without certificationId "
            "get 271 X0002; an office that does not exist or a country code that is none get 272 S0005 at "
            "their path; the test certificationId ECDI-0000-00000 is accepted. A gateway that accepts any of "
            "the defects, or refuses the test id, FAILs.",
)
def test_envelope_rules(ecdi):
    each(ecdi, [d for d in order.RULES if not d.requirements[0].startswith("TXT")])
    each(ecdi, [order.BY_NAME["test-certification-id"]])


@case(
    "cgw-checks.not-ecdi", party="CGW", requirements=["ENV-01", "ENV-10", "SIG-14"],
    purpose="A well-formed message text that is no ECDI envelope gets a signed 271 X0002 whose header carries "
            "Table 4-3's placeholders. A gateway that faults, or fills the header with guesses, FAILs.",
)
def test_not_ecdi(ecdi):
    text = b'<?xml version="1.0" encoding="UTF-8"?>\n<Invoice xmlns="urn:example:not-ecdi"><n>1</n></Invoice>'
    reply = play.send(ecdi, text)
    ecdi.check(gr.answered(reply, ecdi.profile, "271", "X0002", why="no ECDI envelope (step 7)"), "ENV-01")
    ecdi.check(gr.reply_header(None, reply, ecdi.profile, play.deployment(ecdi), readable=False), "ENV-10")
    ecdi.check(gr.reply_signature(reply, ecdi.statement.cgw_sign_anchor), "SIG-14")


@case(
    "cgw-checks.credentials-in-body-only", party="CGW", requirements=["TRN-11", "TRN-12"],
    purpose="The gateway takes credentials from the SOAP body only: the right ones in the body are receipted "
            "whatever an Authorization header, a cookie or the URL carry; a wrong password in the body is 271 "
            "U0001 even with the right credentials in the header and cookie, with the same description as an "
            "unknown user. A gateway that authenticates from a header, cookie or URL FAILs.",
)
def test_credentials_in_body_only(ecdi):
    wrong = ("khong.ton.tai", play.WRONG_PASSWORD)
    path = urlsplit(ecdi.statement.endpoint).path + "?" + urlencode({"UserId": wrong[0], "Password": wrong[1]})
    right = play.framed(ecdi, ecdi.message(), elsewhere=lambda account: elsewhere(*wrong), path=path)
    ecdi.check(gr.accepted(right, ecdi.profile, why="the right credentials in the body, wrong ones elsewhere"),
               "TRN-11")
    refused = play.framed(ecdi, ecdi.message(), body_password=play.WRONG_PASSWORD,
                          elsewhere=lambda account: elsewhere(account.user, account.password))
    ecdi.check(gr.answered(refused, ecdi.profile, "271", "U0001", field="",
                           why="a wrong password in the body, the right credentials elsewhere"), "TRN-11")
    unknown = ecdi.send(ecdi.message(), user=wrong[0]).reply_text
    ecdi.check(gr.same_description(refused, unknown, ecdi.profile, "a wrong password", "an unknown UserId"),
               "TRN-12")


def elsewhere(user: str, password: str) -> dict:
    """Credentials where ECDI forbids them (TRN-11): an Authorization header and a cookie."""
    basic = base64.b64encode(f"{user}:{password}".encode()).decode("ascii")
    return {"Authorization": f"Basic {basic}", "Cookie": f"UserId={user}; Password={password}"}
