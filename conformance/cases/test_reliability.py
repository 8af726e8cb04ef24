"""Reliability family (REL): timeouts, retransmission and backoff."""

from conformance import checks, scenarios
from conformance.case import case
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
    ecdi.check(checks.retransmitted(attempts), "REL-03", stop=True)
    ecdi.check(checks.byte_identical(attempts), "REL-05")
    ecdi.check(checks.waited_at_least(attempts[0], attempts[1], t_send, ecdi.tolerance(t_send),
                                      "attempt abandoned no earlier than t_send"), "REL-01")
    backoff = ecdi.timer("T_backoff_base")
    ecdi.check(checks.waited_at_least(attempts[0], attempts[1], t_send + backoff, ecdi.tolerance(backoff),
                                      "t_send plus the minimum first backoff"), "REL-06")
    ecdi.check(checks.outcome_state(outcome, {"cleared", "accepted"}), "REL-05", evidence=EvidenceKind.DRIVER)
