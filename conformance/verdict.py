"""Verdicts, kept apart from a case's execution status (the TTCN-3 model).

A case's verdict only gets worse; the reason kept is the first one given at the final (worst)
level, so a report shows *why* a case first failed, not the last symptom. A case that finishes
without recording any verdict is an ERROR: a check that never ran cannot pass.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field


class Verdict(enum.Enum):
    PASS = "PASS"
    NOT_APPLICABLE = "NOT-APPLICABLE"
    INCONCLUSIVE = "INCONCLUSIVE"
    FAIL = "FAIL"
    ERROR = "ERROR"

    @property
    def rank(self) -> int:
        # NOT-APPLICABLE ranks below PASS: it is decided before a case runs, and any check that
        # does run in the case must still be able to pull the verdict down.
        return _RANK[self]

    def worse(self, other: "Verdict") -> "Verdict":
        return other if other.rank > self.rank else self


_RANK = {
    Verdict.NOT_APPLICABLE: 0,
    Verdict.PASS: 1,
    Verdict.INCONCLUSIVE: 2,
    Verdict.FAIL: 3,
    Verdict.ERROR: 4,
}


class Status(enum.Enum):
    PENDING = "pending"
    RUNNING = "running"
    WAITING = "waiting"      # waiting for the DTS's traffic or an operator's answer
    FINISHED = "finished"


class EvidenceKind(enum.Enum):
    """What a finding rests on; reported per verdict so customs can weigh it."""

    WIRE = "wire"                        # exchanges recorded by the gateway
    DRIVER = "driver-action"             # what the DTS reported through its driver (its user interface)
    FILE = "file-inspection"             # the product's files (journal export, configuration)
    OPERATOR = "operator-attestation"    # an operator's recorded answer


@dataclass(frozen=True)
class Finding:
    verdict: Verdict
    message: str
    requirement: str | None = None
    evidence: EvidenceKind = EvidenceKind.WIRE
    detail: dict = field(default_factory=dict)
    # CAP-02: a SHOULD of the profile that was not met is reported but does not affect conformance, so
    # an advisory finding never worsens its case's verdict.
    advisory: bool = False
    # What the clause wanted and what was seen, each a sentence for a vendor's developer (the report shows
    # them side by side); None where ``message`` says both.
    expected: str | None = None
    observed: str | None = None

    def as_dict(self) -> dict:
        out = {
            "verdict": self.verdict.value,
            "requirement": self.requirement,
            "evidence": self.evidence.value,
            "message": self.message,
            "detail": self.detail,
        }
        if self.advisory:
            out["advisory"] = True
        out.update({k: v for k, v in (("expected", self.expected), ("observed", self.observed)) if v})
        return out


@dataclass
class CaseRecord:
    case_id: str
    family: str
    purpose: str
    requirements: list[str]
    status: Status = Status.PENDING
    verdict: Verdict | None = None
    reason: str = ""
    findings: list[Finding] = field(default_factory=list)
    certificates: list[str] = field(default_factory=list)   # test certificates installed beyond the default
    attempts: list[dict] = field(default_factory=list)   # earlier runs set aside as disturbed by harness lag
    setup_failure: str | None = None   # the cause when the case could not set itself up (CaseContext.setup_failed)

    def record(self, finding: Finding) -> None:
        self.findings.append(finding)
        if finding.advisory:
            return
        if self.verdict is None or finding.verdict.rank > self.verdict.rank:
            self.verdict = finding.verdict
            self.reason = finding.message
        # same level: the first reason stays

    def finish(self) -> Verdict:
        if self.verdict is None:
            self.record(Finding(Verdict.ERROR, "the case finished without recording any verdict"))
        self.status = Status.FINISHED
        return self.verdict

    @property
    def evidence_kinds(self) -> list[str]:
        return sorted({f.evidence.value for f in self.findings if f.verdict is not Verdict.NOT_APPLICABLE})

    def as_dict(self) -> dict:
        return {
            "id": self.case_id,
            "family": self.family,
            "purpose": self.purpose,
            "requirements": list(self.requirements),
            "status": self.status.value,
            "verdict": self.verdict.value if self.verdict else None,
            "reason": self.reason,
            "evidence": self.evidence_kinds,
            "certificates": ["declarant", *self.certificates],
            "findings": [f.as_dict() for f in self.findings],
            "should_not_met": [f.requirement for f in self.findings if f.advisory],
            **({"disturbed_attempts": self.attempts} if self.attempts else {}),
            "setup_failure": self.setup_failure,
        }


def overall(verdicts: list[Verdict]) -> str:
    """CONFORMANT only when every applicable case passed and at least one case ran (CAP-02)."""
    applicable = [v for v in verdicts if v is not Verdict.NOT_APPLICABLE]
    if applicable and all(v is Verdict.PASS for v in applicable):
        return "CONFORMANT"
    return "NOT CONFORMANT"
