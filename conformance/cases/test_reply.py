"""Reply-handling family (RPL): what the gateway answers reaches the user exactly."""

from conformance import checks, scenarios
from conformance.case import case
from conformance.verdict import EvidenceKind


def drawn_error(ecdi, codes, path: str) -> dict:
    """An Error for the gateway to send: a code drawn by the run's seed from ``codes`` (taken from the
    profile); see ``error_for``."""
    return error_for(ecdi, ecdi.data.choice(codes), path)


def error_for(ecdi, code: str, path: str) -> dict:
    """The Error the gateway sends for ``code``: its field (``path`` where the code list says the field is
    a path) and the code list's Vietnamese description with a nonce, so a product cannot show a canned
    text."""
    listed = ecdi.profile.result_codes[code]
    return {"code": code, "field": path if listed.field == "path" else "",
            "description": f"{listed.description_vi} (mã tra cứu {ecdi.data.nonce()})"}


def sent_once(ecdi, sent: list, function: str, code: str) -> checks.Check:
    """RPL-10/RPL-12 on the attempts of one declaration, against the DTS's t_send (a timed-out attempt may
    be retransmitted)."""
    t_send = ecdi.pixit_seconds("t_send_s")
    return checks.final_reply_once(sent, function, code, t_send, ecdi.tolerance(t_send))


def final_codes(profile, reply_function: str) -> list[str]:
    """The codes a recorded (non-transient) ``reply_function`` may carry first: no warnings."""
    return [c.code for c in profile.result_codes.values()
            if reply_function in c.functions and not c.transient and not c.code.startswith("W")]


@case(
    "reply.rejection-shown-verbatim",
    requirements=["RPL-12", "RPL-14", "SEC-09"],
    capability="import",
    purpose="A 271 rejection's Error (code, field and Vietnamese description) reaches the DTS's user verbatim, "
            "as a customs rejection, and the declaration is marked rejected, not recorded.",
)
def test_rejection_shown_verbatim(ecdi):
    error = drawn_error(ecdi, ecdi.profile.rejection_codes(), "/Envelope/Header/From/identity")
    code = error["code"]
    # every attempt refused alike: a retransmission after a reply slowed by the harness's load (REL-03) meets the
    # same 271; what RPL-12 forbids is sending again once the 271 reached the DTS
    ecdi.given(scenarios.answered_alike("929", "8", "271", [error], name=f"reject-{code}"))
    outcome = ecdi.lodge("declaration-import", type="929")
    lodged = ecdi.requests(type="929", function="8")
    ecdi.needs_readable(lodged, "the declaration to reject")
    ecdi.check(sent_once(ecdi, lodged, "271", code), "RPL-12")
    ecdi.check(checks.outcome_state(outcome, {"rejected"}), "RPL-12", evidence=EvidenceKind.DRIVER)
    ecdi.check(checks.errors_shown_verbatim(outcome, ecdi.journal(), [error]), "RPL-14",
               evidence=EvidenceKind.FILE)
    ecdi.check(checks.shown_as_customs_error(outcome, {code}), "SEC-09", evidence=EvidenceKind.DRIVER)


# The malformed replies of RPL-07's test hint, one per attempt of the declaration, then a valid one.
MALFORMED_REPLIES = [
    ("a truncated reply (not well-formed)", {"action": "malformed", "variant": "truncated"}),
    ("a reply with a DOCTYPE", {"action": "malformed", "variant": "doctype"}),
    ("a signed reply without Result/sequence", {"action": "break_schema"}),
]


@case(
    "reply.malformed-reply-refused",
    requirements=["RPL-07", "REL-05"],
    capability="import",
    purpose="Truncated, DOCTYPE-bearing and schema-invalid replies are refused without crashing or losing the "
            "submission: the DTS retransmits the declaration, discards a malformed answer to a query and keeps "
            "polling, and ends in the state the valid replies give.",
)
def test_malformed_reply_refused(ecdi):
    ecdi.given(scenarios.faults_on_attempts(
        "929", "8", [action for _, action in MALFORMED_REPLIES], name="malformed-replies",
        rules=[scenarios.rule({"action": "malformed", "variant": "not_xml"}, type_="929", function="13", times=1)]))
    outcome = ecdi.lodge("declaration-import", type="929")
    attempts = ecdi.requests(type="929", function="8")
    ecdi.needs_readable(attempts, "the declaration")     # the scenario's faults need its type and attempt
    for i, (what, _) in enumerate(MALFORMED_REPLIES):
        ecdi.check(checks.Check(len(attempts) > i + 1, f"after {what} to attempt {i + 1}, the DTS "
                                + ("retransmitted" if len(attempts) > i + 1 else "made no further attempt")),
                   "RPL-07", stop=True)
    ecdi.check(checks.byte_identical(attempts), "REL-05")
    ecdi.needs_recorded(attempts, "the declaration")
    receipt = checks.reply_result(attempts[-1])
    ecdi.check(checks.same_value("reception number", outcome.reception_number,
                                 receipt.reception_number if receipt else None), "RPL-07", evidence=EvidenceKind.DRIVER)
    queries = ecdi.requests(type="929", function="13")
    ecdi.check(checks.Check(len(queries) >= 2 and queries[0].rule is not None,
                            f"after a query met a reply that is not XML, the DTS sent {len(queries) - 1} more "
                            "queries"), "RPL-07")
    ecdi.check(checks.outcome_state(outcome, {"cleared"}), "RPL-07", evidence=EvidenceKind.DRIVER)
    # the malformed replies the DTS had: one to an attempt it had timed out on (REL-01) never reached it
    t_send = ecdi.pixit_seconds("t_send_s")
    received = [r for r in attempts + queries if ((r.gateway_verdict or {}).get("fault") or {}).get("action")
                in ("malformed", "break_schema") and not checks.timed_out(r, t_send, ecdi.tolerance(t_send))]
    discarded = [e for e in ecdi.journal() if e.get("event") == "reply-discarded"]
    ecdi.check(checks.Check(len(discarded) >= len(received),
                            f"{len(discarded)} discarded replies journalled ({len(received)} malformed replies reached "
                            "the DTS within its t_send)"), "RPL-07", evidence=EvidenceKind.FILE)


@case(
    "reply.out-of-order-history",
    requirements=["RPL-09"],
    capability="import",
    purpose="When entry 3 (channel) arrives before entry 2 (declaration number), the DTS orders the history by "
            "sequence: its afterSequence stays at the highest contiguous entry (1, 1, then 3) and it shows both "
            "the channel and the declaration number.",
)
def test_out_of_order_history(ecdi):
    ecdi.given(scenarios.out_of_order_history())
    outcome = ecdi.lodge("declaration-import", type="929")
    ecdi.needs_recorded(ecdi.requests(type="929", function="8"), "the declaration", outcome=outcome)
    queries = ecdi.requests(type="929", function="13")
    watermarks = checks.after_sequences(ecdi.requests(type="929", function="13", first_attempts=True))
    ecdi.check(checks.Check(watermarks[:3] == [1, 1, 3], f"the queries carried afterSequence {watermarks[:6]} "
                                                         "(1, 1, then 3 expected)"), "RPL-09")
    sent = {}
    for ex in queries:
        result = checks.reply_result(ex)
        if result is not None and ex.reply_function in ("30", "10"):
            sent[ex.reply_function] = result
    ecdi.check(checks.same_value("declaration number", outcome.declaration_number,
                                 sent["30"].declaration_number if "30" in sent else None), "RPL-09",
               evidence=EvidenceKind.DRIVER)
    ecdi.check(checks.same_value("channel", outcome.channel, sent["10"].channel if "10" in sent else None),
               "RPL-09", evidence=EvidenceKind.DRIVER)
    ecdi.check(checks.outcome_state(outcome, {"cleared"}), "RPL-09", evidence=EvidenceKind.DRIVER)


@case(
    "reply.unknown-elements-ignored",
    requirements=["RPL-11"],
    capability="import",
    purpose="A validly signed reply carrying an element and attribute in a foreign namespace and an unknown "
            "e:futureField is acted on as if they were absent: the receipt is taken, polling reaches the end.",
)
def test_unknown_elements_ignored(ecdi):
    ecdi.given(scenarios.every_reply("929", {"action": "unknown_elements"}, "unknown-elements"))
    outcome = ecdi.lodge("declaration-import", type="929")
    attempts = ecdi.requests(type="929", function="8")
    ecdi.needs_recorded(attempts, "the declaration", outcome=outcome)
    # the receipt with unknown elements is taken, not refused as malformed and retransmitted (an attempt the DTS
    # timed out on before, under the harness's load, may be: REL-03)
    ecdi.check(sent_once(ecdi, attempts, "29", "unknown elements"), "RPL-11", stop=True)
    receipt = checks.reply_result(ecdi.answered_attempt(attempts[0], "RPL-11"))
    ecdi.check(checks.same_value("reception number", outcome.reception_number,
                                 receipt.reception_number if receipt else None), "RPL-11", evidence=EvidenceKind.DRIVER)
    troubles = [n for n in outcome.notifications if n.kind in ("security-error", "local-error", "transport-error")]
    ecdi.check(checks.Check(not troubles, f"{len(troubles)} error notification(s) shown"
                            + (f": {troubles[0].text!r}" if troubles else "")), "RPL-11", evidence=EvidenceKind.DRIVER)
    ecdi.check(checks.outcome_state(outcome, {"cleared"}), "RPL-11", evidence=EvidenceKind.DRIVER)


@case(
    "reply.refusal-in-history",
    requirements=["RPL-10", "RPL-14"],
    capability="import",
    purpose="A 273 (approval refused) arriving in the history after the declaration number and channel reaches "
            "the user verbatim as a customs error, the declaration ends refused, and polling stops there.",
)
def test_refusal_in_history(ecdi):
    error = drawn_error(ecdi, final_codes(ecdi.profile, "273"), "/Envelope/Body/Content/Declaration")
    ecdi.given(scenarios.scenario(f"refused-{error['code']}", history=[
        {"function": "30"}, {"function": "10", "channel": "2"}, {"function": "273", "errors": [error]}]))
    outcome = ecdi.lodge("declaration-import", type="929")
    ecdi.needs_recorded(ecdi.requests(type="929", function="8"), "the declaration", outcome=outcome)
    queries = ecdi.requests(type="929", function="13")
    refusals = [i for i, q in enumerate(queries) if q.reply_function == "273"]
    ecdi.check(checks.Check(bool(refusals), f"the 273 was delivered to query {refusals[0] + 1 if refusals else '-'} "
                                            f"of {len(queries)}"), "RPL-10", stop=True)
    after = len(queries) - 1 - refusals[0]
    ecdi.check(checks.Check(after == 0, f"{after} queries after the final 273"), "RPL-10")
    ecdi.check(checks.outcome_state(outcome, {"business-error"}), "RPL-10", evidence=EvidenceKind.DRIVER)
    ecdi.check(checks.errors_shown_verbatim(outcome, ecdi.journal(), [error]), "RPL-14", evidence=EvidenceKind.FILE)


@case(
    "reply.business-error-shown",
    requirements=["RPL-10", "RPL-14"],
    capability="import",
    purpose="A 272 business error answering the declaration (entry 1, final) reaches the user verbatim — code, "
            "field and Vietnamese description — the declaration ends as a business error and is not polled.",
)
def test_business_error_shown(ecdi):
    error = drawn_error(ecdi, final_codes(ecdi.profile, "272"), "/Envelope/Body/Content/Declaration/GoodsItem[1]/hsCode")
    # entry 1 recorded by the first attempt and replayed to a retransmission after a reply slowed by the
    # harness's load (REL-03, REL-10); what is judged is that the 272, once received, is final
    ecdi.given(scenarios.answered_alike("929", "8", "272", [error], name=f"business-error-{error['code']}"))
    outcome = ecdi.lodge("declaration-import", type="929")
    lodged = ecdi.requests(type="929", function="8")
    ecdi.needs_recorded(lodged, "the declaration to answer 272", outcome=outcome)
    ecdi.check(sent_once(ecdi, lodged, "272", error["code"]), "RPL-10")
    queries = ecdi.requests(type="929", function="13")
    ecdi.check(checks.Check(not queries, f"{len(queries)} queries after a final 272 as entry 1"), "RPL-10")
    ecdi.check(checks.outcome_state(outcome, {"business-error"}), "RPL-10", evidence=EvidenceKind.DRIVER)
    ecdi.check(checks.errors_shown_verbatim(outcome, ecdi.journal(), [error]), "RPL-14", evidence=EvidenceKind.FILE)


# Notification kinds that present something as a failure (SEC-09): a W code must never be shown so (RPL-15).
ERROR_KINDS = {"customs-error", "local-error", "transport-error", "security-error"}


def drawn_warning(ecdi, reply_functions: tuple[str, ...]) -> dict:
    """A W code the profile allows in every one of ``reply_functions``, drawn by the run's seed, with the code
    list's Vietnamese description and a nonce (a product cannot show a canned text)."""
    codes = [c.code for c in ecdi.profile.result_codes.values()
             if c.code.startswith("W") and set(reply_functions) <= set(c.functions)]
    code = ecdi.data.choice(codes)
    return {"code": code, "description": f"{ecdi.profile.result_codes[code].description_vi} "
                                         f"(mã tra cứu {ecdi.data.nonce()})"}


@case(
    "reply.duplicate-processed-once",
    requirements=["RPL-08"],
    capability="import",
    purpose="The same 30 (same reply messageId, carrying a W code) delivered to two queries in a row is processed "
            "once: the second delivery changes nothing — afterSequence stays, nothing is shown a second time.",
)
def test_duplicate_processed_once(ecdi):
    warning = drawn_warning(ecdi, ("30",))
    ecdi.given(scenarios.duplicated_reply("929", 1, [{"function": "30", "warnings": [warning]},
                                                     {"function": "10", "channel": "1"}, {"function": "32"},
                                                     {"function": "35"}], name="duplicate-30"))
    outcome = ecdi.lodge("declaration-import", type="929")
    ecdi.needs_recorded(ecdi.requests(type="929", function="8"), "the declaration", outcome=outcome)
    queries = ecdi.requests(type="929", function="13")
    thirties = [q for q in queries if q.reply_function == "30"]
    ids = {checks.reply_message_id(q) for q in thirties}
    ecdi.check(checks.Check(len(thirties) == 2 and len(ids) == 1,
                            f"the gateway delivered the 30 to {len(thirties)} queries ({len(ids)} reply messageId)"),
               "RPL-08", stop=True)
    second = queries.index(thirties[1])
    marks = checks.after_sequences(queries)
    ecdi.check(checks.Check(second + 1 < len(queries) and marks[second + 1] == marks[second],
                            f"afterSequence {marks[second]} in the query that got the duplicate, then "
                            f"{marks[second + 1] if second + 1 < len(marks) else '-'} (unchanged expected)"), "RPL-08")
    number = getattr(checks.reply_result(thirties[0]), "declaration_number", None)
    about = [n for n in outcome.notifications if n.code == warning["code"] or (number and number in n.text)]
    seen, twice = set(), []
    for n in about:
        key = (n.kind, n.code, n.text)
        if key in seen:
            twice.append(n)
        seen.add(key)
    ecdi.check(checks.Check(bool(about) and not twice,
                            f"{len(about)} notification(s) about the 30 ({number}, {warning['code']}), "
                            + (f"shown twice: {twice[0].text!r}" if twice else "none shown twice")),
               "RPL-08", evidence=EvidenceKind.DRIVER)
    ecdi.check(checks.same_value("declaration number", outcome.declaration_number, number), "RPL-08",
               evidence=EvidenceKind.DRIVER)
    ecdi.check(checks.outcome_state(outcome, {"cleared"}), "RPL-08", evidence=EvidenceKind.DRIVER)


@case(
    "reply.warning-not-failure",
    requirements=["RPL-15", "RPL-14"],
    capability="import",
    purpose="A W code on the receipt (29) and on the declaration number (30) is shown to the user, its Vietnamese "
            "description without loss, and neither reply becomes a failure: no retransmission, nothing shown as an "
            "error, polling goes on, the declaration is cleared.",
)
def test_warning_not_failure(ecdi):
    warning = drawn_warning(ecdi, ("29", "30"))
    code = warning["code"]
    ecdi.given(scenarios.warned("929", warning, name=f"warned-{code}"))
    outcome = ecdi.lodge("declaration-import", type="929")
    lodged = ecdi.requests(type="929", function="8")
    ecdi.needs_recorded(lodged, "the declaration", outcome=outcome)
    queries = ecdi.requests(type="929", function="13")
    carried = [r for r in lodged + queries if code in r.reply_codes]
    ecdi.check(checks.Check(len(carried) >= 2, f"{len(carried)} reply(ies) carried {code} (the 29 and the 30)"),
               "RPL-15", stop=True)
    # the 29 with a W code is a receipt, not a failure: never re-sent once it reached the DTS (an attempt the
    # DTS timed out on before, under the harness's load, may be, REL-03)
    ecdi.check(sent_once(ecdi, lodged, "29", code), "RPL-15")
    ecdi.check(checks.outcome_state(outcome, {"cleared"}), "RPL-15", evidence=EvidenceKind.DRIVER)
    warned = [n for n in outcome.notifications if n.code == code or code in n.text]
    as_failure = sorted({n.kind for n in warned} & ERROR_KINDS)     # shown, in whatever kind but an error's
    # one notice per history entry carrying the code: an entry delivered twice (a query re-sent after a slow
    # answer) is processed once (RPL-08), and shown once
    entries = {(r.reply_function, result.sequence if (result := checks.reply_result(r)) else -r.seq) for r in carried}
    ecdi.check(checks.Check(len(warned) >= len(entries) and not as_failure,
                            f"{len(warned)} notification(s) of {code} for {len(entries)} history entries carrying it "
                            f"({len(carried)} replies), shown as {sorted({n.kind for n in warned}) or 'nothing'}"),
               "RPL-15", evidence=EvidenceKind.DRIVER)
    reported = [w for w in outcome.warnings if w.code == code and w.description == warning["description"]]
    verbatim = bool(warned) and all(warning["description"] in n.text for n in warned)
    ecdi.check(checks.Check(bool(reported) and verbatim, f"{len(reported)} {code} warning(s) reported with the "
                            "Vietnamese description verbatim" + ("" if verbatim else "; a notification lost it")),
               "RPL-14", evidence=EvidenceKind.DRIVER)


@case(
    "reply.error-code-matrix",
    requirements=["RPL-12", "RPL-10", "RPL-14"],
    capability="import",
    purpose="The reply-handling matrix: for every error code the profile lets a 271 carry, and every final code "
            "of a 272 answering the declaration, one declaration is answered with it; each reaches the user "
            "verbatim as a customs rejection (271: not recorded) or business error (272), never retransmitted.",
)
def test_error_code_matrix(ecdi):
    path = "/Envelope/Body/Content/Declaration"
    matrix = [("271", code) for code in ecdi.profile.rejection_codes()] + \
             [("272", code) for code in final_codes(ecdi.profile, "272")]
    errors = [error_for(ecdi, code, path) for _, code in matrix]
    for (function, code), error in zip(matrix, errors):
        # one declaration per code, every attempt of it answered alike: a retransmission after a reply slowed
        # by the harness's own load (REL-03) meets the same code, never the next one's
        ecdi.given(scenarios.answered_alike("929", "8", function, [error], name=f"error-code-matrix-{function}-{code}"))
        before = len(ecdi.requests(type="929", function="8"))
        outcome = ecdi.lodge("declaration-import", type="929")
        sent = ecdi.requests(type="929", function="8")[before:]
        ecdi.needs_recorded(sent, f"the declaration to answer {function} {code}", outcome=outcome)
        ecdi.check(sent_once(ecdi, sent, function, code), "RPL-12" if function == "271" else "RPL-10",
                   stop=True)
        expected = "rejected" if function == "271" else "business-error"
        ecdi.check(checks.outcome_state(outcome, {expected}), "RPL-12" if function == "271" else "RPL-10",
                   evidence=EvidenceKind.DRIVER)
        ecdi.check(checks.errors_shown_verbatim(outcome, ecdi.journal(), [error]), "RPL-14",
                   evidence=EvidenceKind.FILE)
