"""What a running case sees: the profile, the gateway-control seam, the driver seam, test data.

Cases never touch sockets, the gateway's internals or the reference DTS: everything goes through
this object, which is also where findings are recorded against the case's verdict.
"""

from __future__ import annotations

from .case import CaseFailure, CaseSpec, Check
from .drivers.base import Action, Outcome
from .tape import RecordingData, RecordingDriver, RecordingGateway, Tape
from .verdict import CaseRecord, EvidenceKind, Finding, Status, Verdict


class HarnessError(Exception):
    """A fault of the harness or of a case's own definition (never of the DTS): verdict ERROR."""


class CaseContext:
    def __init__(self, spec: CaseSpec, record: CaseRecord, harness):
        self.spec = spec
        self.record = record
        self._harness = harness
        self.profile = harness.profile
        self.sut = harness.sut
        # What the case reads from the world is recorded on its tape (evidence bundle, ``ecdi replay``);
        # the recording wrappers pass every call through unchanged.
        self.tape = Tape()
        self.gateway = RecordingGateway(harness.gateway_control, self.tape)
        self.driver = RecordingDriver(harness.driver, self.tape)
        self.data = RecordingData(harness.data, self.tape)
        self.scenario: dict | None = None

    # --- set-up -----------------------------------------------------------------------------
    def given(self, scenario: dict) -> None:
        """Put the gateway in ``scenario`` for the rest of this case."""
        self.scenario = scenario
        self.gateway.begin_case(self.spec.id, scenario)

    # --- stimulus ---------------------------------------------------------------------------
    def lodge(self, sample: str, *, type: str, function: str = "8") -> Outcome:
        """Ask the DTS to lodge a fixture document, as its user would."""
        return self._perform(Action(kind="lodge", type=type, function=function, document=self.data.document(sample)))

    def install_certificate(self, name: str) -> None:
        """The user installs the test certificate ``name`` (see ``pki_matrix``) and restarts the DTS.

        The DTS starts afresh with it, as after a real certificate change; the name is kept on the case
        record so the report shows which certificate each verdict was obtained with.
        """
        env = self._harness.case_environment(self.spec.id, certificate=name)
        self.driver.stop()
        self.driver.start(env)
        self.record.certificates.append(name)

    def _perform(self, action: Action) -> Outcome:
        self.record.status = Status.WAITING
        try:
            return self.driver.perform(action)
        finally:
            self.record.status = Status.RUNNING

    def journal(self) -> list[dict]:
        return self.driver.journal()

    # --- observation ------------------------------------------------------------------------
    def requests(self, *, type: str | None = None, function: str | None = None) -> list:
        """The ECDI ``Send`` exchanges the gateway recorded for this case, in arrival order."""
        out = []
        for ex in self.gateway.exchanges(self.spec.id):
            if ex.path.split("?")[0] != self.profile.deployment["cgw_path"] or ex.method != "POST":
                continue
            if type is not None and ex.type != type:
                continue
            if function is not None and ex.function != function:
                continue
            out.append(ex)
        return out

    # --- timings (profile timers and PIXIT values, scaled per §2.1) -------------------------
    @property
    def time_scale(self) -> float:
        return self._harness.time_scale

    def timer(self, name: str) -> float:
        return self.profile.timer(name, self.time_scale)

    def pixit_seconds(self, key: str) -> float:
        return float(self.sut.pixit[key]) * self.time_scale

    def tolerance(self, seconds: float) -> float:
        """CAP-06: ±1 s or 10 %, whichever is larger; 1 s becomes max(s × 1 s, 50 ms) when scaled."""
        absolute = 1.0 if self.time_scale >= 1 else max(self.time_scale * 1.0, 0.05)
        return max(absolute, 0.1 * seconds)

    # --- verdicts ---------------------------------------------------------------------------
    def check(self, result: Check, requirement: str, *, evidence: EvidenceKind = EvidenceKind.WIRE,
              severity: Verdict = Verdict.FAIL, stop: bool = False) -> bool:
        """Record an atomic check's result against ``requirement`` with the severity the case picks."""
        if requirement not in self.spec.requirements:
            raise HarnessError(f"case {self.spec.id} cites {requirement}, which it does not declare")
        if evidence is EvidenceKind.DRIVER:  # what a manual driver reports is an operator's attestation
            evidence = EvidenceKind(getattr(self._harness.driver, "evidence_kind", EvidenceKind.DRIVER.value))
        verdict = Verdict.PASS if result.ok else severity
        # CAP-02: where the loaded profile makes the requirement a SHOULD (PAY-11 in 1.0), a failed check
        # is reported as "SHOULD not met" and leaves the case's verdict alone.
        listed = self.profile.requirements.get(requirement)
        advisory = not result.ok and listed is not None and listed.level == "SHOULD"
        self.record.record(Finding(verdict, result.message, requirement, evidence, result.detail, advisory))
        if stop and not result.ok and not advisory:
            raise CaseFailure(result.message)
        return result.ok

    def inconclusive(self, message: str, requirement: str | None = None) -> None:
        self.record.record(Finding(Verdict.INCONCLUSIVE, message, requirement))
