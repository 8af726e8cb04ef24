"""Requirements coverage: which cases of a party cover each requirement of a profile binding that party.

Both parties are counted the same way (``party`` "DTS", the default, or "CGW"): a requirement binding
both (TRN-01) is covered for the CGW only by a CGW case, whatever the DTS cases check, and its level
is the keyword binding that party (``Requirement.level_for``).

A case covers the requirements it declares; the self-tests make sure every declared requirement is
actually checked in a run (a declaration alone covers nothing).

One requirement is not a behaviour a case can provoke: CAP-02 *defines* DTS conformance (every MUST
of the profile met, SHOULDs reported only, unclaimed capabilities excluded). The harness itself is its
test — the verdict model and the overall verdict — so it is listed as verified by the harness, with
the place that implements it and the tests that prove that place (tests/test_verdict.py).
"""

from __future__ import annotations

from dataclasses import dataclass

from .case import CaseSpec


@dataclass(frozen=True)
class CoverageRow:
    requirement: str
    level: str
    capability: str | None
    summary: str
    cases: tuple[str, ...]
    harness: str = ""          # where the harness itself verifies it (HARNESS_VERIFIED), if it does

    @property
    def covered(self) -> bool:
        return bool(self.cases or self.harness)


# Requirements verified by the harness's own rules rather than by a case (see the module docstring).
HARNESS_VERIFIED = {
    "CAP-02": "harness: overall verdict (verdict.overall; SHOULD findings advisory; unclaimed capability "
              "NOT-APPLICABLE)",
}
HARNESS_VERIFIED_BY_PARTY = {"DTS": HARNESS_VERIFIED, "CGW": {}}


@dataclass(frozen=True)
class Coverage:
    profile_id: str
    rows: tuple[CoverageRow, ...]
    party: str = "DTS"

    def level_figures(self, level: str) -> tuple[int, int]:
        rows = [r for r in self.rows if r.level == level]
        return sum(1 for r in rows if r.covered), len(rows)

    @property
    def must_percent(self) -> float:
        covered, total = self.level_figures("MUST")
        return 100.0 * covered / total if total else 100.0

    def uncovered(self, level: str = "MUST") -> list[str]:
        return [r.requirement for r in self.rows if r.level == level and not r.covered]


def coverage(profile, specs: list[CaseSpec], party: str = "DTS") -> Coverage:
    """The requirements binding ``party`` × that party's cases among ``specs``."""
    own = [s for s in specs if s.party == party]
    harness = HARNESS_VERIFIED_BY_PARTY[party]
    rows = []
    for req in profile.requirements_binding(party):
        cases = tuple(sorted(s.id for s in own if req.id in s.requirements))
        rows.append(CoverageRow(req.id, req.level_for(party), req.capability, req.summary, cases,
                                harness.get(req.id, "")))
    return Coverage(profile.id, tuple(rows), party)
