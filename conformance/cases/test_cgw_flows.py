"""CGW flows family (DOC-04, RPL-04): amendments and cancellations of a declaration, as Table 7-2 runs them.

The harness declares, polls until the 30 gives the declaration its number, then amends or cancels it. An
accepted cancellation is final for the declaration's own history too; a declaration whose history is
complete can no longer be changed (E0075); a number of another declarant or type is S0005.
"""

import time

from conformance import cgw_documents as documents
from conformance import cgw_play as play
from conformance.case import case
from conformance.checks import gateway_histories as gh
from conformance.checks import gateway_replies as gr


DECLARATION_NUMBER = "/Envelope/Body/Content/Amendment/declarationNumber"


def change(ecdi, content, type: str = "929", function: str = "5") -> tuple[bytes, bytes]:
    text = ecdi.build(lambda client: client.message(content, type=type, function=function))
    return text, play.send(ecdi, text)


@case(
    "cgw-flows.amend", party="CGW", requirements=["DOC-04", "RPL-04", "RPL-01"],
    purpose="An amendment of a declaration whose history is incomplete is receipted (29 with the declaration "
            "number) and its own history ends in a final 32, 272 or 273 with nothing after it. A gateway that "
            "refuses the amendment (E0075 too early), or leaves out the declaration number, FAILs.",
)
def test_amend(ecdi):
    text, _, number = play.declared(ecdi, "the declaration to amend")
    amendment, reply = change(ecdi, documents.amendment(number, documents.declaration_of(text)))
    ecdi.check(gr.accepted(reply, ecdi.profile, why="an amendment while the history is incomplete"), "DOC-04",
               stop=True)
    ecdi.check(gr.result_rules(reply, ecdi.profile, request_type="929", request_function="5"), "RPL-01")
    deliveries = play.walk(ecdi, amendment, reply)
    ecdi.check(gh.flow(deliveries, ecdi.profile, "929", "5"), "RPL-04")
    if not gh.complete(deliveries, ecdi.profile, "929", "5"):
        ecdi.inconclusive("the amendment's history was not complete after T_poll_max_total", "RPL-04")


@case(
    "cgw-flows.cancel", party="CGW", requirements=["DOC-04", "RPL-04"],
    purpose="A cancellation of a declaration with an incomplete history is receipted and accepted (32); that 32 "
            "is final for the declaration too: a query above the declaration's last entry gets 12, and an "
            "amendment afterwards 272 E0075. A gateway that goes on with the cancelled declaration's history, "
            "or lets it be amended, FAILs.",
)
def test_cancel(ecdi):
    text, declaration, number = play.declared(ecdi, "the declaration to cancel")
    cancellation, reply = change(ecdi, documents.cancellation(number), function="1")
    ecdi.check(gr.accepted(reply, ecdi.profile, why="a cancellation while the history is incomplete"), "DOC-04",
               stop=True)
    deliveries = play.walk(ecdi, cancellation, reply)
    ecdi.check(gh.flow(deliveries, ecdi.profile, "929", "1"), "RPL-04")
    last = gr.read_reply(gh.entries(deliveries, ecdi.profile).get(gh.watermark(deliveries, ecdi.profile)),
                         ecdi.profile)
    if isinstance(last, str) or last.function != "32":
        ecdi.inconclusive("the cancellation was not accepted (32) within T_poll_max_total: the declaration's "
                          "history cannot be judged", "RPL-04")
        return
    time.sleep(ecdi.timer("T_poll_min"))
    after = gh.watermark(declaration, ecdi.profile)
    late = play.send(ecdi, ecdi.query(play.header_of(text)["Reference/messageId"], after))
    ecdi.check(gr.answered(late, ecdi.profile, "12", why="the cancelled declaration's history is complete"),
               "RPL-04")
    _, refused = change(ecdi, documents.amendment(number, documents.declaration_of(text)))
    ecdi.check(gr.answered(refused, ecdi.profile, "272", "E0075", why="amending a cancelled declaration"), "DOC-04")


@case(
    "cgw-flows.not-permitted", party="CGW", requirements=["DOC-04"],
    purpose="An amendment of a cleared declaration (history complete) gets 272 E0075; an amendment naming a "
            "declaration number that is not one of this declarant's gets 272 S0005 at that number. A gateway "
            "that amends a cleared declaration, or takes any number, FAILs.",
)
def test_not_permitted(ecdi):
    text, reply = play.recorded(ecdi, "the declaration to clear")
    deliveries = play.walk(ecdi, text, reply)
    number = play.number_of(deliveries, ecdi.profile)
    if number is None or not gh.complete(deliveries, ecdi.profile, "929", "8"):
        ecdi.setup_failed("no complete history within T_poll_max_total", "a cleared declaration")
    _, cleared = change(ecdi, documents.amendment(number, documents.declaration_of(text)))
    ecdi.check(gr.answered(cleared, ecdi.profile, "272", "E0075", why="amending a declaration with a final reply"),
               "DOC-04")
    unknown = "9" * 12 if number != "9" * 12 else "8" * 12
    _, elsewhere = change(ecdi, documents.amendment(unknown, documents.declaration_of(text)))
    ecdi.check(gr.answered(elsewhere, ecdi.profile, "272", "S0005", field=DECLARATION_NUMBER,
                           why=f"declaration number {unknown}, none of this declarant's"), "DOC-04")
