"""One gateway-certification session: the statement, the harness-side evidence, one DTS client per lane.

The CGW side of ``harness.py``: nothing is started but the evidence log — the gateway under test is already
running wherever its statement says (customs IT's staging CGW, or the project's mock gateway started as a
separate process with ``ecdi gateway --statement``). Cases see ``GatewayCaseContext`` only.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from datetime import datetime, timezone

from .. import __version__
from ..codec.fingerprint import Fingerprinter, new_key
from ..gateway_statement import GatewayStatementError, load_gateway_statement
from ..lanes import DEFAULT_JOBS
from ..profile import ProfileError, load_profile
from ..testdata import TestData
from .client import DtsClient
from .evidence import HarnessEvidence

PRIVATE_README = """PRIVATE - do not share this folder (a gateway run: the harness played the DTS).
What is shared is beside it: results.json, report.html, junit.xml, certificate.html and evidence/ (the
harness-side evidence of every exchange, passwords as keyed fingerprints).
"""


@dataclass(frozen=True)
class GatewayUnderTest:
    """The party under test as results.json's ``sut`` states it (same keys as a DTS's)."""

    vendor: str
    product: str
    version: str
    capabilities: list[str]              # CAP-03: a CGW supports every capability of the profile
    statement: dict = field(default_factory=dict)
    pixit: dict = field(default_factory=dict)
    mutant: str | None = None
    build_hash: str | None = None


class GatewayLane:
    """The harness as one job's CGW cases see it: its own DTS client on the run's evidence log."""

    def __init__(self, harness: "GatewayHarness", index: int):
        self._harness = harness
        self.index = index
        self.case_id: str | None = None
        self.client = DtsClient(harness.statement, harness.profile, harness.evidence)

    def stop(self) -> None:
        self.client.close()

    def __getattr__(self, name):
        return getattr(self._harness, name)


@dataclass
class GatewayHarness:
    options: object                      # harness.HarnessOptions with ``gateway`` set
    started_at: str = field(default_factory=lambda: datetime.now(timezone.utc).isoformat(timespec="seconds"))

    def prepare(self) -> None:
        """Load and check the statement and profile; starts nothing. Every failure is a SetupError."""
        from ..harness import SetupError

        o = self.options
        if o.jobs is not None and o.jobs < 1:
            raise SetupError(f"--jobs must be at least 1, got {o.jobs}")
        try:
            self.statement = load_gateway_statement(o.gateway)
            self.profile = load_profile(o.profile_id)
        except (GatewayStatementError, ProfileError) as exc:
            raise SetupError(str(exc)) from None
        if self.profile.id not in self.statement.profiles:
            raise SetupError(f"{self.statement.file}: gateway.profiles {list(self.statement.profiles)} does not "
                             f"hold {self.profile.id}; choose a profile it serves with --profile")
        scale = self.statement.parameters["time_scale"]
        if o.time_scale not in (1.0, scale):
            raise SetupError(f"--time-scale {o.time_scale} differs from the gateway's parameters.time_scale {scale} "
                             f"({self.statement.file}): the gateway applies its own (§2.1)")
        self.time_scale = scale
        self.sut = GatewayUnderTest(self.statement.vendor, self.statement.name, self.statement.build,
                                    sorted(self.profile.capabilities), self.statement.describe())
        self.jobs = o.jobs or DEFAULT_JOBS
        self.seed = o.seed if o.seed is not None else secrets.randbelow(2**31)
        self.data = TestData(self.seed)

    def start(self) -> None:
        self.prepare()
        o = self.options
        self.work_dir = o.out_dir / "work"
        self.work_dir.mkdir(parents=True, exist_ok=True)
        (self.work_dir / "README.txt").write_text(PRIVATE_README, encoding="utf-8")
        self.fingerprint = Fingerprinter(new_key())
        evidence_dir = o.out_dir / "evidence"
        evidence_dir.mkdir(parents=True, exist_ok=True)
        self.evidence = HarnessEvidence(evidence_dir / "evidence.sqlite3", self.fingerprint,
                                        [a.password for a in self.statement.accounts])

    def open_lanes(self, cases: int) -> list[GatewayLane]:
        self.lanes = [GatewayLane(self, i) for i in range(max(1, min(self.jobs, cases)))]
        return self.lanes

    def stop(self) -> None:
        for lane in getattr(self, "lanes", ()):
            lane.stop()
        evidence = getattr(self, "evidence", None)
        if evidence is not None:
            evidence.close()

    @property
    def prepared(self) -> bool:
        return hasattr(self, "seed")

    def describe(self) -> dict:
        """The session facts results.json and the certificate state; ``party`` says a CGW was tested."""
        if not self.prepared:
            return {}
        s = self.statement
        return {
            "harness": {"name": "ecdi-conformance", "version": __version__},
            "party": "CGW",
            "profile": {"id": self.profile.id, "version": self.profile.version, "hash": self.profile.content_hash()},
            "sut": {"driver": "gateway", "vendor": s.vendor, "vendor_tax_code": None, "product": s.name,
                    "version": s.build, "capabilities": self.sut.capabilities, "mutant": None, "build_hash": None},
            "gateway": s.describe(),
            "time_scale": self.time_scale,
            "seed": self.seed,
            "started_at": self.started_at,
        }
