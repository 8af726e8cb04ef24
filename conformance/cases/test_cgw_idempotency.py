"""CGW idempotency family (REL-10, REL-11, REL-12, RPL-02): a retransmission is answered, never recorded again.

The harness plays a DTS retransmitting after a lost reply: the same octets get the stored entry 1 unchanged
(same reception number, same messageId, same signature); changed octets under that messageId get E0003; a
request refused 271 is evaluated afresh; a receipted business reference is not receipted twice.
"""

from conformance import cgw_play as play
from conformance import evaluation_order as order
from conformance.case import case
from conformance.checks import gateway_histories as gh
from conformance.checks import gateway_replies as gr


@case(
    "cgw-idempotency.retransmission", party="CGW", requirements=["REL-10", "REL-12", "RPL-02"],
    purpose="The byte-identical message text sent again gets the stored entry 1, byte-identical (no new "
            "reception number, no new messageId), and nothing new is recorded: a query from sequence 0 returns "
            "that same entry 1. A gateway that records the retransmission as a new submission, or re-signs "
            "entry 1, FAILs.",
)
def test_retransmission(ecdi):
    text, first = play.recorded(ecdi, "the declaration to retransmit")
    again = play.send(ecdi, text)
    ecdi.check(gh.byte_identical("entry 1 to the retransmission", first, again), "REL-10")
    submission = play.header_of(text)["Reference/messageId"]
    queried = play.send(ecdi, ecdi.query(submission, 0))
    ecdi.check(gh.byte_identical("entry 1 to a query from sequence 0 (recorded, queryable)", first, queried),
               "REL-12")
    deliveries = [gh.Delivery(None, first), gh.Delivery(None, again), gh.Delivery(0, queried)]
    ecdi.check(gh.sequences(deliveries, ecdi.profile), "RPL-02")


@case(
    "cgw-idempotency.changed-text", party="CGW", requirements=["REL-10", "RPL-02"],
    purpose="Another message text under a recorded messageId gets 271 E0003, and the recorded entry 1 stays as "
            "it was (the E0003 is transient, sequence 0). A gateway that answers the stored entry 1 or records "
            "the new text FAILs.",
)
def test_changed_text(ecdi):
    text, first = play.recorded(ecdi, "the declaration whose messageId is re-used")
    changed = play.inflicted(ecdi, text, [order.BY_NAME["changed-text"]])
    reply = play.send(ecdi, changed)
    ecdi.check(gr.answered(reply, ecdi.profile, "271", "E0003", why="same messageId, other text"), "REL-10")
    submission = play.header_of(text)["Reference/messageId"]
    queried = play.send(ecdi, ecdi.query(submission, 0))
    ecdi.check(gh.byte_identical("entry 1 after the E0003", first, queried), "REL-10")
    ecdi.check(gh.sequences([gh.Delivery(None, first), gh.Delivery(None, reply), gh.Delivery(0, queried)],
                            ecdi.profile), "RPL-02")


@case(
    "cgw-idempotency.refused-evaluated-afresh", party="CGW", requirements=["REL-10", "TRN-12"],
    purpose="A request answered 271 (a wrong password, U0001) is not recorded: the same message text sent again "
            "with the right password is evaluated afresh and receipted. A gateway that stores the 271 and "
            "replays it FAILs.",
)
def test_refused_evaluated_afresh(ecdi):
    text = ecdi.message()
    refused = play.send(ecdi, text, "wrong-password")
    ecdi.check(gr.answered(refused, ecdi.profile, "271", "U0001", field="", why="wrong password"), "TRN-12")
    ecdi.check(gr.accepted(play.send(ecdi, text), ecdi.profile, why="the same text, right password"), "REL-10")


@case(
    "cgw-idempotency.duplicate-reference", party="CGW", requirements=["REL-11"],
    purpose="A new message with the business reference of a receipted declaration gets 272 E0074; a reference "
            "whose entry 1 was 272 does not block it, so the corrected declaration is receipted. A gateway that "
            "receipts the duplicate, or blocks the corrected one, FAILs.",
)
def test_duplicate_reference(ecdi):
    defects = [order.BY_NAME["duplicate-reference"]]
    _, reply = play.defective(ecdi, defects, play.given_for(ecdi, defects))
    ecdi.check(gr.answered(reply, ecdi.profile, "272", "E0074", field="/Envelope/Header/Subject/reference",
                           why="the reference of a receipted declaration"), "REL-11")
    wrong_text, wrong = play.defective(ecdi, [order.BY_NAME["wrong-total"]])
    ecdi.check(gr.answered(wrong, ecdi.profile, "272", "S0005", why="a wrong total (entry 1: 272)"), "REL-11")
    corrected = ecdi.message(reference=play.header_of(wrong_text)["Subject/reference"])
    ecdi.check(gr.accepted(play.send(ecdi, corrected), ecdi.profile,
                           why="the corrected declaration under the reference a 272 answered"), "REL-11")
