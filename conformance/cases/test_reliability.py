"""Reliability family (REL): timeouts, retransmission and backoff."""

from conformance import checks, scenarios
from conformance.case import case, runs_first
from conformance.drivers.base import Action
from conformance.verdict import EvidenceKind


@case(
    "reliability.resend-after-timeout",
    requirements=["REL-01", "REL-03", "REL-05", "REL-06"],
    capability="import",
    purpose="When the reply to a declaration is delayed past the DTS's t_send, the DTS abandons the attempt, "
            "waits at least the minimum backoff and retransmits the byte-identical message (same messageId).",
)
def test_resend_after_timeout(ecdi):
    t_send = ecdi.pixit_seconds("t_send_s")
    ecdi.given(scenarios.delay_first_attempt("929", "8", seconds=t_send + 2 * ecdi.tolerance(t_send)))
    outcome = ecdi.lodge("declaration-import", type="929")
    attempts = ecdi.requests(type="929", function="8")
    ecdi.needs_readable(attempts, "the declaration")     # the scenario's faults need its type and attempt
    ecdi.check(checks.retransmitted(attempts), "REL-03", stop=True)
    ecdi.check(checks.byte_identical(attempts), "REL-05")
    ecdi.needs_recorded(attempts, "the declaration")
    ecdi.check(checks.outcome_state(outcome, {"cleared", "accepted"}), "REL-03", evidence=EvidenceKind.DRIVER)
    # REL-01 times the attempt from its connection's set-up to the client giving up; REL-06 the wait from
    # there to the retransmission's connection set-up: a cold client's handshake counts in neither.
    if attempts[0].connection_closed_at is None or attempts[0].connection_closed_at > attempts[1].received_at:
        ecdi.inconclusive(f"the connection of attempt #{attempts[0].seq} stayed open after the retransmission: "
                          "when the DTS abandoned it cannot be seen on the wire", "REL-01")
        return
    ecdi.check(checks.attempt_lasted(attempts[0], t_send, ecdi.tolerance(t_send),
                                     "attempt abandoned no earlier than t_send"), "REL-01")
    backoff = ecdi.timer("T_backoff_base")
    ecdi.check(checks.waited_after_response(attempts[0], attempts[1], backoff, ecdi.tolerance(backoff),
                                            "the minimum first backoff after the abandoned attempt"), "REL-06")


# The broken responses REL-03 names that the gateway can produce, each met by one attempt in turn.
BROKEN_RESPONSES = [
    ("a connection reset before the response", {"action": "reset", "stage": "after_read"}),
    ("a body shorter than its Content-Length", {"action": "truncate"}),
    ("an HTTP 503 (a 5xx)", {"action": "overload", "mode": "503", "retry_after": 0}),
]


@case(
    "reliability.resend-after-broken-response",
    requirements=["REL-03", "REL-05"],
    capability="import",
    purpose="When the response to a declaration is lost to a connection reset, a truncated body or an HTTP 5xx, "
            "the DTS retransmits the byte-identical message (same messageId) until it gets the reply.",
)
def test_resend_after_broken_response(ecdi):
    ecdi.given(scenarios.faults_on_attempts("929", "8", [action for _, action in BROKEN_RESPONSES],
                                            name="broken-responses"))
    outcome = ecdi.lodge("declaration-import", type="929")
    attempts = ecdi.requests(type="929", function="8")
    ecdi.needs_readable(attempts, "the declaration")     # the scenario's faults need its type and attempt
    for i, (fault, _) in enumerate(BROKEN_RESPONSES):
        ecdi.check(checks.Check(len(attempts) > i + 1, f"after attempt {i + 1} met {fault}, the DTS "
                                + ("retransmitted" if len(attempts) > i + 1 else "made no further attempt")),
                   "REL-03", stop=True)
    ecdi.check(checks.byte_identical(attempts), "REL-05")
    ecdi.needs_recorded(attempts, "the declaration")
    ecdi.check(checks.outcome_state(outcome, {"accepted", "cleared"}), "REL-03", evidence=EvidenceKind.DRIVER)


@case(
    "reliability.honours-retry-after",
    requirements=["REL-06", "REL-05"],
    capability="import",
    purpose="An HTTP 503 carrying Retry-After makes the DTS wait at least that long (Retry-After is not scaled) "
            "before it retransmits.",
)
def test_honours_retry_after(ecdi):
    retry_after = 1   # seconds, never scaled (§2.1): small, but well above the scaled PIXIT backoff
    ecdi.given(scenarios.overloaded("929", "8", retry_after=retry_after, attempts=1))
    ecdi.lodge("declaration-import", type="929")
    attempts = ecdi.requests(type="929", function="8")
    ecdi.needs_readable(attempts, "the declaration")     # the scenario's faults need its type and attempt
    ecdi.check(checks.retransmitted(attempts), "REL-06", stop=True)
    ecdi.check(checks.byte_identical(attempts), "REL-05")
    ecdi.check(checks.waited_after_response(attempts[0], attempts[1], retry_after, 0.0,
                                            f"Retry-After: {retry_after} honoured"), "REL-06")


@case(
    "reliability.exponential-backoff",
    requirements=["REL-06", "CAP-06", "REL-05"],
    capability="import",
    purpose="Before the k-th retransmission the DTS waits at least min(T_backoff_max, T_backoff_base·2^(k−1)) "
            "and, within the CAP-06 tolerance, the backoff its statement promises.",
)
def test_exponential_backoff(ecdi):
    failures = 4
    ecdi.given(scenarios.faults_on_attempts("929", "8", [{"action": "reset", "stage": "before_read"}] * failures,
                                            name="three-resets"))
    ecdi.lodge("declaration-import", type="929")
    attempts = ecdi.requests(type="929", function="8")
    ecdi.needs_readable(attempts, "the declaration")     # the scenario's faults need its type and attempt
    ecdi.check(checks.Check(len(attempts) > failures, f"{len(attempts)} attempts after {failures} resets"),
               "REL-06", stop=True)
    ecdi.check(checks.byte_identical(attempts), "REL-05")
    base, cap = ecdi.timer("T_backoff_base"), ecdi.timer("T_backoff_max")
    pixit_base, pixit_cap = ecdi.pixit_seconds("backoff_base_s"), ecdi.pixit_seconds("backoff_max_s")
    promised = 0.0
    for k in range(1, failures + 1):
        floor = min(cap, base * 2 ** (k - 1))
        ecdi.check(checks.waited_after_response(attempts[k - 1], attempts[k], floor, 0.0,
                                                f"backoff before retransmission {k}"), "REL-06")
        promised += max(floor, min(pixit_cap, pixit_base * 2 ** (k - 1)))
    # CAP-06: backoffs within 0 to +20 % (+1 s, scaled) of the computed waits, judged on the schedule as a whole.
    ecdi.check(checks.schedule_within(list(zip(attempts[:failures], attempts[1:failures + 1])), promised,
                                      ecdi.tolerance(promised), f"{failures} backoffs"), "CAP-06")


@case(
    "reliability.unknown-after-retries",
    requirements=["REL-07", "REL-05"],
    capability="import",
    purpose="When every attempt is lost, the DTS stops after its n_retry byte-identical retransmissions and tells "
            "the user the outcome is unknown — never that the declaration was rejected or not sent.",
)
def test_unknown_after_retries(ecdi):
    ecdi.given(scenarios.swallow_every_attempt("929", "8"))
    outcome = ecdi.lodge("declaration-import", type="929")
    attempts = ecdi.requests(type="929", function="8")
    ecdi.needs_readable(attempts, "the declaration")     # the scenario's faults need its type and attempt
    allowed = 1 + int(ecdi.sut.pixit["n_retry"])
    ecdi.check(checks.Check(len(attempts) <= allowed, f"{len(attempts)} attempts; the statement allows "
                                                      f"1 + n_retry = {allowed}"), "REL-07")
    ecdi.check(checks.byte_identical(attempts), "REL-05")
    ecdi.check(checks.outcome_state(outcome, {"unknown"}), "REL-07", evidence=EvidenceKind.DRIVER)
    ecdi.check(checks.told_user(outcome, checks.UNKNOWN_OUTCOME_WORDS, "that the outcome is unknown"), "REL-07",
               evidence=EvidenceKind.DRIVER)


@case(
    "reliability.polling-pace",
    requirements=["REL-13", "RPL-10", "RPL-13", "CAP-08"],
    capability="import",
    purpose="After the receipt the DTS polls no earlier than T_poll_min, then every poll_interval between query "
            "starts, one query at a time; 12 (not yet processed) is no failure; polling stops at the final reply; "
            "under a time scale s both the profile timer and the PIXIT interval are applied multiplied by s.",
)
def test_polling_pace(ecdi):
    pending = 2
    ecdi.given(scenarios.scenario("slow-processing", pending_queries=pending))
    outcome = ecdi.lodge("declaration-import", type="929")
    lodged = ecdi.requests(type="929", function="8")
    queries = ecdi.requests(type="929", function="13")
    ecdi.needs_recorded(lodged, "the declaration to poll for", outcome=outcome)
    ecdi.check(checks.Check(bool(lodged) and lodged[-1].reply_function == "29" and bool(queries),
                            f"{len(queries)} queries after the receipt"), "REL-13", stop=True)
    poll_min, interval = ecdi.timer("T_poll_min"), ecdi.pixit_seconds("poll_interval_s")
    ecdi.check(checks.waited(lodged[-1].responded_at, checks.attempt_start(queries[0]), poll_min,
                             ecdi.tolerance(poll_min), "first query after the 29",
                             f"from the 29 (request #{lodged[-1].seq}) to the start of query #{queries[0].seq}"),
               "REL-13")
    for a, b in zip(queries, queries[1:]):   # a retransmission (same messageId) needs T_poll_min (REL-06)
        gap, what = (poll_min, "T_poll_min before a query's retransmission") if b.message_id == a.message_id else (
            interval, "poll_interval between query starts")
        ecdi.check(checks.waited_at_least(a, b, gap, ecdi.tolerance(gap), what), "REL-13")
    ecdi.check(checks.no_overlap(queries), "REL-13")
    # CAP-08: s applied to the profile timer (T_poll_min) and to the PIXIT timing (poll_interval). Unscaled, a
    # timing is 1/s times the scaled one: a wait is judged scaled while it stays below the midpoint of the two
    # (signing and connecting inside the measured gaps cannot fail a scaling DTS); CAP-06 judges precision.
    s = ecdi.time_scale
    first_by = max(poll_min, interval)
    if s >= 1:
        ecdi.check(checks.Check(True, "time scale 1: the statement's timings apply as they are"), "CAP-08")
    else:
        ecdi.check(checks.at_most_after(lodged[-1].responded_at, checks.attempt_start(queries[0]), first_by,
                                        (first_by / s - first_by) / 2,
                                        f"first query after the 29 (T_poll_min and poll_interval scaled by s = {s:g} "
                                        f"give {first_by:.3f} s, unscaled {first_by / s:.3f} s)"), "CAP-08")
        for a, b in zip(queries, queries[1:]):
            if b.message_id != a.message_id:
                ecdi.check(checks.at_most_after(checks.attempt_start(a), checks.attempt_start(b), interval,
                                                (interval / s - interval) / 2,
                                                f"query starts #{a.seq}, #{b.seq} apart (poll_interval scaled by "
                                                f"s = {s:g} is {interval:.3f} s, unscaled {interval / s:.3f} s)"),
                           "CAP-08")
    pendings = [q for q in queries if q.reply_function == "12"]
    ecdi.check(checks.Check(len(pendings) == pending and queries[-1] not in pendings,
                            f"{len(pendings)} replies 12, and the DTS went on polling after them"), "RPL-13")
    ecdi.check(checks.outcome_state(outcome, {"cleared"}), "RPL-13", evidence=EvidenceKind.DRIVER)
    finals = [i for i, q in enumerate(queries) if q.reply_function in ecdi.profile.reply_flows[("929", "8")].final]
    if not finals:
        ecdi.check(checks.Check(False, "the DTS stopped polling before the final reply"), "RPL-10")
    else:
        after = len(queries) - 1 - finals[0]
        ecdi.check(checks.Check(after == 0, f"{after} queries after the final reply to query {finals[0] + 1}"),
                   "RPL-10")


@runs_first                    # it waits out poll_max_total, the catalogue's longest timer
@case(
    "reliability.polling-stops-at-max-total",
    requirements=["REL-14"],
    capability="import",
    purpose="When customs never processes the declaration, automatic polling stops poll_max_total after the 29 "
            "and the user is told the result must be fetched later.",
)
def test_polling_stops_at_max_total(ecdi):
    ecdi.given(scenarios.never_processed())
    outcome = ecdi.lodge("declaration-import", type="929")
    lodged = ecdi.requests(type="929", function="8")
    queries = ecdi.requests(type="929", function="13")
    ecdi.needs_recorded(lodged, "the declaration to poll for", outcome=outcome)
    ecdi.check(checks.Check(bool(lodged) and bool(queries), f"{len(queries)} queries after the receipt"),
               "REL-14", stop=True)
    total = ecdi.pixit_seconds("poll_max_total_s")
    ecdi.check(checks.at_most_after(lodged[-1].responded_at, checks.attempt_start(queries[-1]), total,
                                    ecdi.tolerance(total), "the last query started after the 29 "
                                                           f"(poll_max_total {total:.2f} s)"), "REL-14")
    ecdi.check(checks.told_user(outcome, checks.FETCH_LATER_WORDS, "that the result has not been received and "
                                "must be fetched later", own=True), "REL-14",
               evidence=EvidenceKind.DRIVER)


@case(
    "reliability.query-settles-unknown-outcome",
    requirements=["REL-08"],
    capability="import",
    purpose="While a declaration's outcome is unknown (its reply failed verification), the DTS sends nothing new "
            "for it; the user's query is a function 13 with afterSequence 0, no earlier than T_send after the last "
            "attempt started, and the DTS proceeds on the entry 1 it returns.",
)
def test_query_settles_unknown_outcome(ecdi):
    ecdi.given(scenarios.forged_reply("929", "8"))
    first = ecdi.lodge("declaration-import", type="929")
    lodged = ecdi.requests(type="929", function="8")
    ecdi.check(checks.something_sent(lodged, "the declaration"), "REL-08", stop=True)
    ecdi.needs_recorded(lodged, "the declaration")
    submission = first.message_id or lodged[0].message_id
    settled = ecdi.driver.perform(Action(kind="query", type="929", submission_id=submission))
    lodged = ecdi.requests(type="929", function="8")
    queries = ecdi.requests(type="929", function="13")
    others = [r for r in lodged if r.message_id != lodged[0].message_id]
    ecdi.check(checks.Check(not others, f"{len(others)} new message(s) for the declaration while its outcome "
                                        "was unknown"), "REL-08")
    ecdi.check(checks.Check(bool(queries) and checks.after_sequences(queries[:1]) == [0]
                            and queries[0].reference == lodged[0].message_id,
                            f"the user's query carried afterSequence {checks.after_sequences(queries[:1])} "
                            f"for {queries[0].reference if queries else '-'}"), "REL-08", stop=True)
    t_send = ecdi.timer("T_send")
    ecdi.check(checks.waited_at_least(lodged[-1], queries[0], t_send, ecdi.tolerance(t_send),
                                      "query after the last attempt's start"), "REL-08")
    receipt = checks.reply_result(queries[0])
    ecdi.check(checks.same_value("reception number", settled.reception_number,
                                 receipt.reception_number if receipt else None), "REL-08",
               evidence=EvidenceKind.DRIVER)


@case(
    "reliability.resume-after-crash",
    requirements=["REL-09"],
    capability="import",
    purpose="The DTS killed while the gateway holds its declaration's first attempt, then restarted over the same "
            "state, resumes that send operation with the stored text — a byte-identical retransmission with the "
            "same messageId, or a query for it — never with a new messageId.",
)
def test_resume_after_crash(ecdi):
    ecdi.given(scenarios.held_first_attempt("929", "8", name="crash-during-attempt"))
    ecdi.lodge_and_crash("declaration-import", type="929")
    held = ecdi.requests(type="929", function="8")
    ecdi.check(checks.Check(len(held) == 1, f"{len(held)} attempt(s) before the kill (one, held unanswered, "
                                            "expected)"), "REL-09", stop=True)
    first = held[0]
    outcome = ecdi.resume()
    later = [r for r in ecdi.requests(type="929") if r.seq > first.seq]
    ecdi.check(checks.Check(bool(later), f"after the restart the DTS sent {len(later)} request(s) for the "
                                         "declaration"), "REL-09", stop=True)
    nxt = later[0]
    if nxt.function == "13":
        ecdi.check(checks.Check(nxt.reference == first.message_id,
                                f"the first request after the restart is a query for {nxt.reference} (the "
                                f"unfinished message is {first.message_id})"), "REL-09")
    else:
        ecdi.check(checks.Check(nxt.function == "8" and nxt.message_id == first.message_id,
                                f"the first request after the restart is {nxt.type}/{nxt.function} with messageId "
                                f"{nxt.message_id} (the unfinished message is {first.message_id})"), "REL-09")
        ecdi.check(checks.byte_identical([first, nxt]), "REL-09")
    fresh = [r for r in later if r.function == "8" and r.message_id != first.message_id]
    ecdi.check(checks.Check(not fresh, f"{len(fresh)} new message(s) for the declaration after the restart"),
               "REL-09")
    ecdi.needs_recorded([first, *(r for r in later if r.function == "8")], "the declaration")
    ecdi.check(checks.outcome_state(outcome, {"accepted", "cleared"}), "REL-09", evidence=EvidenceKind.DRIVER)
