"""Capability family (CAP): what the product claims, what it does, and how it is configured."""

from conformance import checks, scenarios
from conformance.case import case, runs_last
from conformance.change_documents import amendment, cancellation
from conformance.claims import compare_claims
from conformance.drivers.base import Action
from conformance.statement import statement_problems
from conformance.verdict import EvidenceKind

# What a user asks to exercise each capability of Table 13-1 that has requests (Table 4-2), as
# (action kind, type, function, sample or None for a change document). ``ecdsa`` has no request of its own.
ASKED_FOR = {
    "import": [("lodge", "929", "8", "declaration-import")],
    "export": [("lodge", "930", "8", "declaration-export")],
    "amend": [("lodge", "929", "5", None), ("lodge", "930", "5", None)],
    "cancel": [("lodge", "929", "1", None), ("lodge", "930", "1", None)],
    "payment": [("lodge", "701", "8", "payment-order")],
}
# A declaration number no declaration of the test declarant has (DeclNo, §4.2): an unclaimed amendment or
# cancellation must be refused before the gateway could say so.
SOME_DECLARATION_NUMBER = "999999999999"
# Words by which a user learns the settings are those of a test environment (CAP-07).
TEST_ENVIRONMENT_WORDS = ("test", "sandbox", "staging", "thử nghiệm", "kiểm thử", "chạy thử")
PRODUCTION_WORDS = ("production", "sản xuất", "chính thức")


def _document(ecdi, type_: str, function: str, sample: str | None) -> bytes:
    if function == "5":
        return amendment(ecdi.data.document("declaration-import" if type_ == "929" else "declaration-export"),
                         SOME_DECLARATION_NUMBER, "Sửa trị giá hóa đơn")
    if function == "1":
        return cancellation(SOME_DECLARATION_NUMBER, "02", "Khai trùng tờ khai")
    return ecdi.data.document(sample)


@runs_last                     # it judges every request of the campaign (CAP-04's "every type and function received")
@case(
    "capability.unclaimed-never-sent",
    requirements=["CAP-04"],
    capability=None,
    purpose="No request of the campaign so far is of a type/function whose capability the statement does not "
            "claim, and a user asking for an unclaimed capability gets nothing sent.",
)
def test_unclaimed_never_sent(ecdi):
    ecdi.given(scenarios.accept("unclaimed-never-sent"))
    claimed = set(ecdi.sut.capabilities)
    unclaimed = [c for c in ASKED_FOR if c not in claimed]
    asked = []
    for capability in unclaimed:
        for kind, type_, function, sample in ASKED_FOR[capability]:
            name = {"5": "amend", "1": "cancel", "8": "pay-create" if type_ == "701" else "lodge"}[function]
            if not ecdi.offers(name):
                continue
            before = len(ecdi.requests())
            outcome = ecdi.driver.perform(Action(kind=kind, type=type_, function=function,
                                                 document=_document(ecdi, type_, function, sample)))
            sent = [r for r in ecdi.requests()[before:] if (r.type, r.function) == (type_, function)]
            asked.append(f"{type_}/{function}")
            # CAP-04 forbids sending, nothing more: how the product declines (or that it says so) is not judged
            ecdi.check(checks.Check(not sent, f"asked for {type_}/{function} ({capability}, not claimed): "
                                              f"{len(sent)} such request(s) reached the gateway (the DTS reported "
                                              f"{outcome.state!r})"), "CAP-04")
    if not asked:
        ecdi.check(checks.Check(True, "nothing to ask: " + (
            f"the product offers no user action for {', '.join(unclaimed)}" if unclaimed else
            "every capability with a request of Table 4-2 is claimed")), "CAP-04")
    report = compare_claims(ecdi.campaign_requests(), claimed, ecdi.profile)
    seen = sorted({p for pairs in report.exhibited.values() for p in pairs})
    ecdi.check(checks.Check(not report.exhibited_not_claimed,
                            f"the campaign so far exhibited {', '.join(seen) or 'no request'}; "
                            + (f"not claimed: {', '.join(report.exhibited_not_claimed)}"
                               if report.exhibited_not_claimed else "every one of a claimed capability"),
                            report.as_dict()), "CAP-04")


@case(
    "capability.statement-keys",
    requirements=["CAP-05"],
    capability=None,
    purpose="The vendor's capability statement ecdi-conformance.toml has exactly the keys of Table 13-2, each "
            "within its constraints: no unknown key, none missing.",
)
def test_statement_keys(ecdi):
    problems = statement_problems(dict(ecdi.sut.statement))
    ecdi.check(checks.Check(not problems, "the capability statement breaks Table 13-2: " + "; ".join(problems)
                            if problems else f"the capability statement has exactly the keys of Table 13-2 "
                                             f"({len(ecdi.sut.statement)} top-level keys, "
                                             f"{len(ecdi.sut.pixit)} PIXIT values)",
                            {"problems": problems}), "CAP-05", evidence=EvidenceKind.FILE)


@case(
    "capability.configured-environment-shown",
    requirements=["CAP-07"],
    capability=None,
    purpose="Configured by the harness (endpoint, TLS trust anchors, cgw_sign_anchor, ca_trust_list, time "
            "scale), the DTS shows its user that the TEST environment is active and works with it: its "
            "declaration reaches the harness's gateway and the signed reply is believed.",
)
def test_configured_environment_shown(ecdi):
    ecdi.given(scenarios.accept("configured-environment"))
    shown = ecdi.configure()
    texts = [n.text for n in shown.notifications]
    ecdi.check(checks.told_user(shown, TEST_ENVIRONMENT_WORDS, "that the test environment is active"), "CAP-07",
               evidence=EvidenceKind.DRIVER)
    only_production = [t for t in texts if any(w in t.lower() for w in PRODUCTION_WORDS)
                       and not any(w in t.lower() for w in TEST_ENVIRONMENT_WORDS)]
    ecdi.check(checks.Check(not only_production, f"{len(only_production)} notification(s) present the harness's "
                                                 "settings as production" + (f": {only_production[0]!r}"
                                                                             if only_production else "")),
               "CAP-07", evidence=EvidenceKind.DRIVER)
    claimed = set(ecdi.sut.capabilities)
    kind = next(((t, s) for c, t, s in (("import", "929", "declaration-import"), ("export", "930", "declaration-export"))
                 if c in claimed), None)
    if kind is None:
        return
    type_, sample = kind
    outcome = ecdi.lodge(sample, type=type_)
    lodged = ecdi.requests(type=type_, function="8")
    ecdi.check(checks.something_sent(lodged, "at the configured endpoint", outcome), "CAP-07", stop=True)
    ecdi.needs_recorded(lodged, "the declaration")
    ecdi.check(checks.outcome_state(outcome, {"accepted", "cleared"}), "CAP-07", evidence=EvidenceKind.DRIVER)
