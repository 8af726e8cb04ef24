"""CGW polling family (RPL-02, RPL-03, RPL-04, REL-15): a declaration's history as a DTS polling it finds it.

The harness polls like a correct DTS — first ``T_poll_min`` after the 29, then ``T_poll_min`` apart, with the
watermark of RPL-09 as ``afterSequence`` — until the history is complete or ``T_poll_max_total`` has passed.
Nothing may be repeated above the watermark, lost (a gap), changed on redelivery, or appended after a final.
"""

import time

from conformance import cgw_documents
from conformance import cgw_play as play
from conformance.case import case
from conformance.checks import gateway_histories as gh
from conformance.checks import gateway_replies as gr
from conformance.codec.envelope import new_message_id


def delivery(ecdi, after: int, asked: bytes) -> gh.Delivery:
    exchange = play.send_exchange(ecdi, asked)
    return gh.Delivery(after, exchange.reply_text, exchange.received_at, asked)


@case(
    "cgw-polling.history-walk", party="CGW", requirements=["RPL-02", "RPL-03", "RPL-04", "REL-15"],
    purpose="Polled with the watermark, a declaration's history comes as entries 1…n, each the lowest visible "
            "above afterSequence (or a 12), redelivered byte-identical from sequence 0, with transient replies "
            "at sequence 0, no E9002 at T_poll_min, in Table 7-2's order and nothing after its final reply. A "
            "gateway that repeats, skips or renumbers entries, re-signs a redelivery, or appends after 35 FAILs.",
)
def test_history_walk(ecdi):
    text, reply = play.recorded(ecdi, "the declaration to poll")
    deliveries = play.walk(ecdi, text, reply)
    if not gh.complete(deliveries, ecdi.profile, "929", "8"):
        ecdi.inconclusive(f"the history was not complete after T_poll_max_total ({ecdi.timer('T_poll_max_total')} s "
                          "scaled): nothing final to judge", "RPL-04")
    else:
        time.sleep(ecdi.timer("T_poll_min"))
        after = gh.watermark(deliveries, ecdi.profile)
        submission = play.header_of(text)["Reference/messageId"]
        asked = ecdi.query(submission, after)
        deliveries.append(delivery(ecdi, after, asked))
        ecdi.check(gr.answered(deliveries[-1].text, ecdi.profile, "12", why="a query above the final entry"),
                   "RPL-04")
    time.sleep(ecdi.timer("T_poll_min"))
    submission = play.header_of(text)["Reference/messageId"]
    for after in range(gh.watermark(deliveries, ecdi.profile)):      # every entry redelivered
        asked = ecdi.query(submission, after)
        deliveries.append(delivery(ecdi, after, asked))
        time.sleep(ecdi.timer("T_poll_min"))
    ecdi.check(gh.sequences(deliveries, ecdi.profile), "RPL-02")
    ecdi.check(gh.query_answers(deliveries, ecdi.profile), "RPL-03")
    ecdi.check(gh.flow(deliveries, ecdi.profile, "929", "8"), "RPL-04")
    ecdi.check(gh.no_busy_queries(deliveries, ecdi.profile, ecdi.timer("T_poll_min")), "REL-15")


@case(
    "cgw-polling.unknown-submission", party="CGW", requirements=["RPL-03", "RPL-02", "ENV-06"],
    purpose="A query for a messageId never recorded, or for a recorded 929 asked as a 930, gets 272 E0002 at "
            "sequence 0; a query naming another customs office still finds the submission (its To/identity is "
            "not checked). A gateway that answers 12 for the unknown, finds another type's submission, or "
            "refuses the other office FAILs.",
)
def test_unknown_submission(ecdi):
    text, first = play.recorded(ecdi, "the declaration to query")
    submission = play.header_of(text)["Reference/messageId"]
    unknown = play.send(ecdi, ecdi.query(new_message_id(), 0))
    ecdi.check(gr.answered(unknown, ecdi.profile, "272", "E0002", why="a messageId never recorded"), "RPL-03")
    other_type = play.send(ecdi, ecdi.query(submission, 0, type="930"))
    ecdi.check(gr.answered(other_type, ecdi.profile, "272", "E0002", why="a 929 submission queried as 930"),
               "RPL-03")
    ecdi.check(gh.sequences([gh.Delivery(None, first), gh.Delivery(0, unknown), gh.Delivery(0, other_type)],
                            ecdi.profile), "RPL-02")
    offices = [o for o in ecdi.statement.parameters["offices"] if o != play.header_of(text)["To/identity"]]
    if not offices:
        ecdi.inconclusive("the statement lists one customs office: no other office to query through", "ENV-06")
        return
    time.sleep(ecdi.timer("T_poll_min"))
    elsewhere = ecdi.build(lambda c: c.message(cgw_documents.query(0), type="929", function="13",
                                               reference=submission, office=offices[-1]))
    ecdi.check(gh.byte_identical(f"entry 1 to a query addressed to office {offices[-1]}", first,
                                 play.send(ecdi, elsewhere)), "ENV-06")
