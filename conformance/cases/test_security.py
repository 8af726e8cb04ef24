"""Security family (SEC): forged or misrouted replies, hardened reply parsing, the journal export."""

from conformance import checks, scenarios
from conformance.case import case
from conformance.verdict import EvidenceKind, Verdict

# SEC-04: the header fields of "the request" (ENV-10) a reply must repeat; the gateway alters one per
# declaration and signs the altered reply with its genuine key (docs/scenarios.md, ``misroute``).
MISROUTED_FIELDS = ("reference", "to_identity", "type", "version")


@case(
    "security.misrouted-replies",
    requirements=["SEC-04", "SEC-09"],
    capability="import",
    purpose="A validly signed receipt whose Subject/reference is not the messageId sent, or whose To/identity, "
            "Subject/type or Reference/version differs from the request's, is discarded without state change, "
            "journalled and reported as a security error; a 271 holding Table 4-3 placeholders is not checked "
            "and is taken as the rejection of the request.",
)
def test_misrouted_replies(ecdi):
    for n, field in enumerate(MISROUTED_FIELDS, 1):
        ecdi.given(scenarios.every_reply("929", {"action": "misroute", "field": field}, f"misrouted-{field}"))
        outcome = ecdi.lodge("declaration-import", type="929")
        sent = ecdi.requests(type="929", function="8", first_attempts=True)
        ecdi.check(checks.Check(len(sent) == n, f"the gateway received {len(sent)} declaration(s) so far, {n} expected",
                                expected=f"the gateway has received {n} declaration(s): one per lodgement, to answer "
                                         f"the last with a reply misrouted in {field}",
                                observed=f"it has received {len(sent)}"), "SEC-04",
                   severity=Verdict.INCONCLUSIVE, stop=True)
        exchange = ecdi.answered_attempt(sent[-1], "SEC-04")
        ecdi.check(checks.altered_in_transit(exchange, "misroute"), "SEC-04", severity=Verdict.INCONCLUSIVE,
                   stop=True)
        ecdi.check(checks.reply_not_acted_on(outcome, exchange), "SEC-04", evidence=EvidenceKind.DRIVER)
        ecdi.check(checks.shown_as(outcome, "security-error"), "SEC-09", evidence=EvidenceKind.DRIVER)
        ecdi.check(checks.reply_journalled(ecdi.journal(), exchange.message_id), "SEC-04",
                   evidence=EvidenceKind.FILE)
    # The 271 with placeholders: correlated by being the synchronous answer, so a customs rejection.
    ecdi.given(scenarios.every_reply("929", {"action": "misroute", "field": "placeholders"}, "misrouted-placeholders"))
    outcome = ecdi.lodge("declaration-import", type="929")
    sent = ecdi.requests(type="929", function="8", first_attempts=True)
    answered = ecdi.answered_attempt(sent[-1], "SEC-04").reply_function if sent else None
    ecdi.check(checks.Check(len(sent) == len(MISROUTED_FIELDS) + 1 and answered == "271",
                            f"{len(sent)} declaration(s); the last answered {answered}"),
               "SEC-04", severity=Verdict.INCONCLUSIVE, stop=True)
    ecdi.check(checks.Check(outcome.state == "rejected" and any(e.code == "X0001" for e in outcome.errors),
                            f"a 271 X0001 with placeholders: the DTS reported {outcome.state!r} with errors "
                            f"{[e.code for e in outcome.errors]} (expected: rejected, X0001)"),
               "SEC-04", evidence=EvidenceKind.DRIVER)


# SEC-05: replies the parser must refuse as malformed (RPL-07) — a DOCTYPE with an external DTD and
# entity on the gateway's own XXE path, a validly signed reply larger than S_max, and one nested deeper
# than 64 elements (inside an unknown element, RPL-11, so nothing but the limit refuses it).
HOSTILE_REPLIES = ("doctype", "too_deep", "too_large")   # the 5 MiB one last: every read of the evidence after
XXE_PATH = "/ecdi-xxe"                                    # it carries it


@case(
    "security.hardened-reply-parsing",
    requirements=["SEC-05", "RPL-07", "REL-05"],
    capability="import",
    purpose="A reply with a DOCTYPE and an external entity pointing at the harness, one larger than S_max and "
            "one nested deeper than 64 elements are each refused as malformed (retransmission follows) and "
            "nothing they name is fetched; the declaration then ends in the state the genuine reply gives.",
)
def test_hardened_reply_parsing(ecdi):
    ecdi.given(scenarios.scenario("hostile-replies", *(
        scenarios.rule({"action": "malformed", "variant": variant}, type_="929", function="8", attempt=1, times=1)
        for variant in HOSTILE_REPLIES), history=[{"function": "35"}]))
    outcomes, starts = [], []
    for _ in HOSTILE_REPLIES:      # the 5 MiB reply comes last: only the final read below carries it
        starts.append(max((r.seq for r in ecdi.requests(type="929", function="8")), default=0))
        outcomes.append(ecdi.lodge("declaration-import", type="929"))
    declarations = ecdi.requests(type="929", function="8")
    bounds = [*starts[1:], max((r.seq for r in declarations), default=0)]
    lodged = [[r for r in declarations if start < r.seq <= end] for start, end in zip(starts, bounds)]
    ecdi.check(checks.Check(all(lodged), f"{sum(map(bool, lodged))} of {len(HOSTILE_REPLIES)} declarations "
                                         "received"), "SEC-05", severity=Verdict.INCONCLUSIVE, stop=True)
    for variant, outcome, attempts in zip(HOSTILE_REPLIES, outcomes, lodged):
        ecdi.check(checks.altered_in_transit(attempts[0], "malformed"), "SEC-05", severity=Verdict.INCONCLUSIVE,
                   stop=True)
        ecdi.check(checks.Check(len(attempts) >= 2, f"{variant}: the reply to request #{attempts[0].seq} was "
                                + ("refused and the declaration retransmitted" if len(attempts) >= 2 else
                                   f"not refused (no retransmission; state {outcome.state!r})")), "SEC-05")
        if len(attempts) >= 2:
            ecdi.check(checks.byte_identical(attempts), "REL-05")
            ecdi.needs_recorded(attempts, f"the declaration answered with {variant}")
            ecdi.check(checks.reply_acted_on(outcome, attempts[-1], f"{variant}: after the refused reply"), "RPL-07",
                       evidence=EvidenceKind.DRIVER)
    ecdi.check(checks.not_accessed(ecdi.gateway.exchanges(ecdi.spec.id), XXE_PATH, "the DOCTYPE reply"), "SEC-05")


@case(
    "security.journal-export",
    requirements=["SEC-06"],
    capability="import",
    purpose="The journal export is JSON Lines with the Table 12-1 members in time order, and holds the lodged "
            "request, each attempt and its outcome, each reply and every notification shown to the user; the "
            "export for one submission holds exactly that submission's events.",
)
def test_journal_export(ecdi):
    ecdi.given(scenarios.scenario("short-history", history=[{"function": "35"}]))
    outcome = ecdi.lodge("declaration-import", type="929")
    ecdi.lodge("declaration-import", type="929")     # a second submission, for the per-submission export
    sent = ecdi.requests(type="929", function="8", first_attempts=True)
    ecdi.check(checks.Check(len(sent) == 2, f"{len(sent)} declaration(s) received"), "SEC-06",
               severity=Verdict.INCONCLUSIVE, stop=True)
    events = ecdi.journal()
    ecdi.check(checks.journal_format(events), "SEC-06", evidence=EvidenceKind.FILE)
    ecdi.check(checks.journal_covers(events, sent[0].message_id, outcome), "SEC-06", evidence=EvidenceKind.FILE)
    per = ecdi.journal_of(sent[0].message_id)     # None: the driver has no way to ask for one submission
    if per is not None:
        ecdi.check(checks.journal_per_submission(per, events, sent[0].message_id), "SEC-06",
                   evidence=EvidenceKind.FILE)


@case(
    "security.no-clear-text-secrets",
    requirements=["SEC-01", "SEC-02"],
    capability="import",
    purpose="After a lodge, no file of the product holds the CGW password or the PKCS#12 password (in UTF-8, "
            "UTF-16LE or base64) or the declarant's private key exported (DER or PEM).",
)
def test_no_clear_text_secrets(ecdi):
    ecdi.lodge("declaration-import", type="929")
    sent = ecdi.requests(type="929", function="8")
    ecdi.check(checks.something_sent(sent, "the declaration"), "SEC-01",
               severity=Verdict.INCONCLUSIVE, stop=True)
    search = ecdi.search_product_files()
    ecdi.check(checks.Check(search["files"] > 0, f"{search['files']} product file(s) found under "
                                                  f"{', '.join(search['roots'])}"), "SEC-01",
               evidence=EvidenceKind.FILE, severity=Verdict.INCONCLUSIVE, stop=True)
    ecdi.check(checks.no_secret_in_files(search, ["CGW password"], "passwords must not be stored in clear text"),
               "SEC-01", evidence=EvidenceKind.FILE)
    ecdi.check(checks.no_secret_in_files(search, ["PKCS#12 password", "private key"],
                                         "no PIN or PKCS#12 password in clear text, no exported key"),
               "SEC-02", evidence=EvidenceKind.FILE)
