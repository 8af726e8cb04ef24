"""CGW replies family (SIG-14, ENV-10, RPL-01, REL-02, SEC-07): every reply, whatever it answers, is signed, addressed and
built as ECDI says.

One varied set of replies (``cgw_play.varied_replies``: a receipt and its history, a 272, 271s of several
steps, a transient E0002 and 12, a 271 to a text that is not XML) is read by each case: the signature per
Table 8-1 under ``cgw_sign_anchor`` by the codec and by ``xmlsec1``, the header per Table 4-3, the Result per
Table 7-1.
"""

from conformance import cgw_play as play
from conformance.case import case
from conformance.checks import gateway_records as records
from conformance.checks import gateway_replies as gr


def replies(ecdi):
    return play.varied_replies(ecdi)


def labelled(what: str, check):
    return type(check)(check.ok, f"{what}: {check.message}", check.detail, check.undecided, check.expected,
                       check.observed)


@case(
    "cgw-replies.signatures", party="CGW", requirements=["SIG-14"],
    purpose="Every reply is signed per Table 8-1 with RSA-SHA256 by a certificate with digitalSignature issued "
            "under cgw_sign_anchor, as both the harness's codec and xmlsec1 (libxmlsec1) verify. A gateway that "
            "leaves a reply unsigned, signs with SHA-1 or ECDSA, or with a certificate outside the anchor FAILs.",
)
def test_signatures(ecdi):
    anchor = ecdi.statement.cgw_sign_anchor
    for what, _, reply, _ in replies(ecdi):
        ecdi.check(labelled(what, gr.reply_signature(reply, anchor)), "SIG-14")
        ecdi.check(labelled(what, gr.xmlsec1_verifies(reply, anchor)), "SIG-14")


@case(
    "cgw-replies.headers", party="CGW", requirements=["ENV-10"],
    purpose="Every reply header follows Table 4-3 against the request it answers (a history entry: the "
            "submission's request; a reply to a query: the queried submission as Subject/reference), with a "
            "fresh messageId, no certificationId, and the placeholders for a request that cannot be read. A "
            "gateway that swaps From and To, echoes the request's messageId or guesses for an unreadable "
            "request FAILs.",
)
def test_headers(ecdi):
    deployment = play.deployment(ecdi)
    for what, request, reply, submission in replies(ecdi):
        ecdi.check(labelled(what, gr.reply_header(request, reply, ecdi.profile, deployment, submission=submission,
                                                  readable=request is not None)), "ENV-10")


@case(
    "cgw-replies.results", party="CGW", requirements=["RPL-01"],
    purpose="Every reply holds one Result per Table 7-1 with the elements its function requires (a 29's "
            "receptionNumber, a 10's channel, ...), Errors only in 271/272/273 with resultCode equal to the first "
            "non-W code, and Vietnamese descriptions in NFC. A gateway that omits the reception number, or "
            "answers 00000 with an error, FAILs.",
)
def test_results(ecdi):
    for what, request, reply, submission in replies(ecdi):
        asked = play.header_of(submission or request) if (submission or request) else None
        kind = asked.get("Subject/type", "") if asked else ""
        function = asked.get("Subject/function", "") if asked else ""
        ecdi.check(labelled(what, gr.result_rules(reply, ecdi.profile, request_type=kind, request_function=function)),
                   "RPL-01")


@case(
    "cgw-replies.timely", party="CGW", requirements=["REL-02"],
    purpose="Every synchronous reply of a varied set arrives within T_cgw (scaled) of the request. A gateway "
            "that holds a request past T_cgw instead of answering E9001 FAILs: most replies late, or a few of one "
            "kind late again in a second sample (a gateway slow on queries only). A one-off delay, or one the "
            "harness's own lag could explain, is INCONCLUSIVE and the case runs again.",
)
def test_timely(ecdi):
    t_cgw = ecdi.timer("T_cgw")
    first = sampled(ecdi)
    check = gr.answered_within(first, t_cgw, ecdi.tolerance(t_cgw))
    if check.undecided and check.detail:     # a few slow replies: the machine's stall, or that kind's every time?
        check = gr.answered_within(first, t_cgw, ecdi.tolerance(t_cgw), again=sampled(ecdi))
    if not ecdi.check(check, "REL-02"):
        ecdi.disturbed = ecdi.disturbed or check.undecided      # a one-off: run again, alone


def sampled(ecdi) -> list:
    """The exchanges of one varied set of replies."""
    before = {ex.seq for ex in ecdi.exchanges()}
    replies(ecdi)
    return [ex for ex in ecdi.exchanges() if ex.seq not in before]


@case(
    "cgw-replies.processing-history", party="CGW", requirements=["SEC-07"],
    purpose="Every request the harness sent — receipted, refused at several steps, queries — is in the gateway's "
            "processing history (the statement's processing_history facility) with its reception time, UserId, "
            "From/identity, messageId, type, function, reply messageId, function and codes, signer and client "
            "address. A gateway that keeps no record of refused requests FAILs; without the facility the case "
            "is NOT-APPLICABLE.",
)
def test_processing_history(ecdi):
    ecdi.facility("processing_history")
    replies(ecdi)
    sent = [ex for ex in ecdi.exchanges() if ex.message_text]
    ecdi.check(records.processing_history(sent, ecdi.processing_history()), "SEC-07")
