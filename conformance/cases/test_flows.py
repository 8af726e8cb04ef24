"""Flows family: amending (function 5) and cancelling (function 1) a recorded declaration (Table 4-2,
Table 6-2, Table 7-2, DOC-04, RPL-10, RPL-14).

A declaration can be amended or cancelled only while its history is incomplete (DOC-04), and a DTS
follows each declaration until its history is complete. So the cases record a declaration, let the
gateway issue its number (30) and hold the next query unanswered, and kill the DTS there
(``lodge_and_crash``): restarted over the same state, it holds a recorded declaration with its number
and an open history — the user then amends or cancels it by that number, as read from the DTS.
"""

from conformance import checks, scenarios
from conformance.codec.namespaces import DEC, q
from conformance.case import case
from conformance.verdict import EvidenceKind


def open_declaration(ecdi, type_: str, sample: str, *, amend_cancel_history=None, name: str) -> str:
    """Record a declaration and stop the DTS with its history open; returns its declaration number."""
    ecdi.given(scenarios.declaration_left_open(type_, amend_cancel_history=amend_cancel_history, name=name))
    ecdi.lodge_and_crash(sample, type=type_, when=lambda reqs: any(
        r.type == type_ and r.function == "13" and r.responded_at is None for r in reqs))
    ecdi.needs_recorded(ecdi.requests(type=type_, function="8"), "the declaration to change")
    numbered = [q for q in ecdi.requests(type=type_, function="13") if q.reply_function == "30"]
    ecdi.check(checks.Check(bool(numbered), f"the gateway issued the declaration's number to "
                                            f"{len(numbered)} query(ies) before the DTS was stopped"),
               "RPL-10", stop=True)
    result = checks.reply_result(numbered[0])
    return result.declaration_number if result is not None else ""


def declaration_number_sent(exchange) -> str | None:
    child = checks.message_content(exchange)
    return child.findtext(q(DEC, "declarationNumber")) if child is not None else None


def change_request_sent(ecdi, function: str, number: str, what: str):
    """The one 929/``function`` request the user's change caused: a Table 4-2 row designating declaration
    ``number``, with a fresh business reference (ENV-04, ENV-05). Returns it."""
    sent = ecdi.requests(type="929", function=function)
    ecdi.check(checks.Check(len(sent) == 1, f"{len(sent)} {what} request(s) (929/{function}) reached the gateway"),
               "ENV-04", stop=True)
    ecdi.check(checks.table_4_2_rows(sent, ecdi.profile), "ENV-04")
    ecdi.check(designates(sent[0], number), "ENV-04")
    ecdi.check(checks.subject_references(ecdi.requests(), ecdi.profile), "ENV-05")
    ecdi.check(checks.business_references_fresh(ecdi.requests(), ecdi.profile), "ENV-05")
    return sent[0]


def designates(exchange, number: str) -> checks.Check:
    sent = declaration_number_sent(exchange)
    return checks.Check(sent == number, f"request #{exchange.seq} designates declarationNumber {sent!r}; the "
                                        f"declaration's number is {number}")


@case(
    "flows.amend-recorded-declaration",
    requirements=["ENV-04", "ENV-05", "RPL-10"],
    capability="amend",
    purpose="The user amends a recorded declaration by its number: the DTS sends a 929/5 dec:Amendment with "
            "that declarationNumber and a new business reference, follows its history (29, then 32) and stops "
            "polling at the 32; the customs results are shown.",
)
def test_amend_recorded_declaration(ecdi):
    number = open_declaration(ecdi, "929", "declaration-import", name="amend-open-declaration",
                              amend_cancel_history=[{"function": "32"}])
    outcome = ecdi.amend(number, type="929", sample="declaration-import")
    amendment = change_request_sent(ecdi, "5", number, "amendment")
    ecdi.needs_recorded([amendment], "the amendment")
    queries = [q for q in ecdi.requests(type="929", function="13") if q.reference == amendment.message_id]
    finals = [i for i, q in enumerate(queries) if q.reply_function == "32"]
    ecdi.check(checks.Check(amendment.reply_function == "29" and bool(finals) and finals[0] == len(queries) - 1,
                            f"the amendment was answered {amendment.reply_function}, then {len(queries)} queries, "
                            f"the 32 to query {finals[0] + 1 if finals else '-'} (no query after it expected)"),
               "RPL-10")
    ecdi.check(checks.outcome_state(outcome, {"accepted"}), "RPL-10", evidence=EvidenceKind.DRIVER)
    ecdi.check(checks.Check(outcome.status_function == "32", f"the DTS shows status {outcome.status_function} "
                                                             "for the amendment (32 sent)"),
               "RPL-10", evidence=EvidenceKind.DRIVER)


@case(
    "flows.cancel-recorded-declaration",
    requirements=["ENV-04", "ENV-05", "RPL-10"],
    capability="cancel",
    purpose="The user cancels a recorded declaration by its number: the DTS sends a 929/1 dec:Cancellation with "
            "that declarationNumber and a new business reference; the cancellation's 32 completes both its own "
            "history and the cancelled declaration's, so resuming after a restart polls neither.",
)
def test_cancel_recorded_declaration(ecdi):
    number = open_declaration(ecdi, "929", "declaration-import", name="cancel-open-declaration",
                              amend_cancel_history=[{"function": "32"}])
    declaration = ecdi.requests(type="929", function="8")[0]
    outcome = ecdi.cancel(number, type="929")
    cancellation = change_request_sent(ecdi, "1", number, "cancellation")
    ecdi.needs_recorded([cancellation], "the cancellation")
    queries = [q for q in ecdi.requests(type="929", function="13") if q.reference == cancellation.message_id]
    ecdi.check(checks.Check(bool(queries) and queries[-1].reply_function == "32",
                            f"{len(queries)} queries for the cancellation, the last answered "
                            f"{queries[-1].reply_function if queries else '-'}"), "RPL-10", stop=True)
    accepted_at = queries[-1].received_at
    ecdi.check(checks.outcome_state(outcome, {"accepted"}), "RPL-10", evidence=EvidenceKind.DRIVER)
    ecdi.resume()              # what the restarted DTS still has to do: nothing for the cancelled declaration
    polled = [q for q in ecdi.requests(type="929", function="13")
              if q.reference == declaration.message_id and q.received_at > accepted_at]
    ecdi.check(checks.Check(not polled, f"{len(polled)} query(ies) for the cancelled declaration after the "
                                        "cancellation's 32 (its history is complete, RPL-04)"), "RPL-10")


def refused_as_unknown(ecdi, function: str, outcome) -> None:
    """DOC-04 answered 272 S0005 (entry 1, final): every Error verbatim, as a customs error; no query."""
    sent = ecdi.requests(type="929", function=function)
    ecdi.needs_recorded(sent, f"the 929/{function} to refuse", until="field_values", outcome=outcome)
    ecdi.check(checks.Check(len(sent) == 1 and sent[0].reply_function == "272",
                            f"{len(sent)} request(s) 929/{function}; the gateway answered "
                            f"{sent[0].reply_function if sent else '-'} {sent[0].reply_codes if sent else ''}"),
               "RPL-14", stop=True)
    result = checks.reply_result(sent[0])
    errors = [{"code": e.code, "field": e.field, "description": e.description}
              for e in (result.errors if result else [])]
    ecdi.check(checks.errors_shown_verbatim(outcome, ecdi.journal(), errors), "RPL-14", evidence=EvidenceKind.FILE)
    ecdi.check(checks.shown_as_customs_error(outcome, {e["code"] for e in errors}), "RPL-14",
               evidence=EvidenceKind.DRIVER)
    ecdi.check(checks.outcome_state(outcome, {"business-error"}), "RPL-14", evidence=EvidenceKind.DRIVER)
    queries = ecdi.requests(type="929", function="13")
    ecdi.check(checks.Check(not queries, f"{len(queries)} queries after the final 272 as entry 1"), "RPL-10")


def unknown_number(ecdi) -> str:
    """A DeclNo no declaration of this run has (the gateway numbers its declarations from 1…)."""
    return "9" + ecdi.data.nonce(11)


@case(
    "flows.unknown-declaration-refused",
    requirements=["RPL-14", "RPL-10"],
    capability="amend",
    purpose="An amendment of a declaration number the declarant does not have is answered 272 S0005 (DOC-04); "
            "the DTS shows every Error verbatim as a customs business error, ends the amendment there and does "
            "not poll it.",
)
def test_unknown_declaration_refused(ecdi):
    ecdi.given(scenarios.accept("amend-unknown-declaration"))
    outcome = ecdi.amend(unknown_number(ecdi), type="929", sample="declaration-import")
    refused_as_unknown(ecdi, "5", outcome)


@case(
    "flows.cancel-unknown-declaration-refused",
    requirements=["RPL-14", "RPL-10"],
    capability="cancel",
    purpose="A cancellation of a declaration number the declarant does not have is answered 272 S0005 (DOC-04); "
            "the DTS shows every Error verbatim as a customs business error, ends the cancellation there and "
            "does not poll it.",
)
def test_cancel_unknown_declaration_refused(ecdi):
    ecdi.given(scenarios.accept("cancel-unknown-declaration"))
    outcome = ecdi.cancel(unknown_number(ecdi), type="929")
    refused_as_unknown(ecdi, "1", outcome)
