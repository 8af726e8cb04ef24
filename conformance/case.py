"""The case DSL: a case reads like its test purpose.

    @case("reliability.resend-after-timeout", requirements=["REL-01", "REL-03", "REL-05"],
          capability="import", purpose="...")
    def test_resend_after_timeout(ecdi):
        ecdi.given(scenarios.delay_first_attempt("929", "8", seconds=ecdi.past_t_send()))   # set up
        outcome = ecdi.lodge("declaration-import", type="929")                              # ask
        attempts = ecdi.attempts_of(outcome)                                                # observe
        ecdi.check(checks.retransmitted(attempts), "REL-03")                               # verdict

``check`` takes an atomic check's result and lets the *case* choose the requirement and the
severity (as the OpenID suite's conditions do): the same check can be a FAIL in one case and only
INCONCLUSIVE in another. Requirement IDs are validated against the loaded profile, so a case can
only cite requirements the profile holds.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import pytest

CASE_MARK = "ecdi_case"
PARTIES = ("DTS", "CGW")


@dataclass(frozen=True)
class CaseSpec:
    id: str
    requirements: tuple[str, ...]
    purpose: str
    capability: str | None = None      # Table 13-1 capability the case needs; None = every DTS
    family: str = ""
    party: str = "DTS"                 # the party under test the case judges: "DTS" or "CGW" (party.py)

    @property
    def family_name(self) -> str:
        return self.family or self.id.split(".", 1)[0]


def case(case_id: str, *, requirements: list[str], purpose: str, capability: str | None = None,
         party: str = "DTS") -> Callable:
    """Declare a conformance case. The family is the part of the id before the first dot; a case judging
    a gateway says ``party="CGW"`` and its id starts ``cgw-`` (``cgw-transport.wsdl``)."""
    if party not in PARTIES:
        raise ValueError(f"case {case_id}: party must be one of {PARTIES}, not {party!r}")
    if (party == "CGW") != case_id.startswith("cgw-"):
        raise ValueError(f"case {case_id}: a CGW case id starts 'cgw-', a DTS case id does not")
    spec = CaseSpec(case_id, tuple(requirements), purpose, capability, party=party)

    def wrap(fn):
        fn.ecdi_case = spec
        return pytest.mark.ecdi_case(spec)(fn)

    return wrap


def runs_first(fn: Callable) -> Callable:
    """Start the case before the others when cases run at once: it waits out the longest timers, so the run
    cannot end before it does (``parallel.py``)."""
    fn.ecdi_runs_first = True
    return fn


def runs_last(fn: Callable) -> Callable:
    """Run the case after every other case of the run: it judges what the whole campaign sent (ENV-02)."""
    fn.ecdi_runs_last = True
    return fn


@dataclass(frozen=True)
class Check:
    """The result of one atomic check: whether it held, a sentence saying what was seen, and data."""

    ok: bool
    message: str
    detail: dict = field(default_factory=dict)
    # Not held, but not provably broken either: what the user was shown may say it in other words. The
    # finding shows the text for review and is INCONCLUSIVE, whatever severity the case picked.
    undecided: bool = False
    # sentences for the report, where ``message`` does not already say both (``Finding.expected``)
    expected: str | None = None
    observed: str | None = None


class CaseFailure(Exception):
    """Raised by ``check(..., stop=True)`` to end a case whose later steps depend on a failed one."""
