"""One gateway-certification session: the statement, the harness-side evidence, one DTS client per lane.

The CGW side of ``harness.py``: nothing is started but the evidence log — the gateway under test is already
running wherever its statement says (customs IT's staging CGW, or the project's mock gateway started as a
separate process with ``ecdi gateway --statement``). Cases see ``GatewayCaseContext`` only.
"""

from __future__ import annotations

import secrets
import socket
from dataclasses import dataclass, field
from datetime import datetime, timezone
from urllib.parse import urlsplit

from ..codec.fingerprint import Fingerprinter, new_key
from ..gateway_control import ControlError, GatewayControl
from ..gateway_statement import GatewayStatementError, load_gateway_statement
from ..harness import SetupError, session_facts
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
        self.client = DtsClient(harness.statement, harness.profile, harness.evidence,
                                clock_offset=lambda: harness.clock_offset)
        self.clock_moved = 0.0                # by this lane's case (``advance_clock``): moved back at its end

    def advance_clock(self, control, seconds: float) -> None:
        """The gateway's test clock ``seconds`` forward (through the case's recording ``control``); the
        harness's messages are stamped by it from now on."""
        control.advance_clock(seconds)
        self.clock_moved += seconds
        self._harness.clock_offset += seconds

    def restore_clock(self) -> None:
        """At the case's end: the test clock back where the case found it (not on the case's tape)."""
        if self.clock_moved:
            moved, self.clock_moved = self.clock_moved, 0.0
            self._harness.control("test_clock").advance_clock(-moved)
            self._harness.clock_offset -= moved

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
        capabilities = sorted(self.profile.capabilities)     # CAP-03: a CGW supports every capability
        self.sut = GatewayUnderTest(self.statement.vendor, self.statement.name, self.statement.build, capabilities,
                                    {**self.statement.describe(), "capabilities": capabilities})
        self.jobs = o.jobs or DEFAULT_JOBS
        self.seed = o.seed if o.seed is not None else secrets.randbelow(2**31)
        self.data = TestData(self.seed)

    def start(self) -> None:
        self.prepare()
        self._reachable()
        o = self.options
        self.work_dir = o.out_dir / "work"
        self.work_dir.mkdir(parents=True, exist_ok=True)
        (self.work_dir / "README.txt").write_text(PRIVATE_README, encoding="utf-8")
        self.fingerprint = Fingerprinter(new_key())
        evidence_dir = o.out_dir / "evidence"
        evidence_dir.mkdir(parents=True, exist_ok=True)
        self.evidence = HarnessEvidence(evidence_dir / "evidence.sqlite3", self.fingerprint,
                                        [a.password for a in self.statement.accounts])
        self._controls: dict[str, GatewayControl] = {}
        self.clock_offset = 0.0               # the gateway's test clock less real time (§2.1), if it has one
        clock = self.control("test_clock")
        if clock is not None:
            try:
                self.clock_offset = float(clock.clock()["offset"])
            except (ControlError, KeyError, TypeError, ValueError) as exc:
                raise SetupError(f"{self.statement.file}: facilities.test_clock: {exc}") from None

    def _reachable(self) -> None:
        """A gateway that cannot be reached at all is a wrong statement or a stopped gateway: the session does
        not start (exit 2), rather than every case failing TRN-01."""
        parts = urlsplit(self.statement.endpoint)
        try:
            socket.create_connection((parts.hostname, parts.port or 443), timeout=10).close()
        except OSError as exc:
            raise SetupError(f"the gateway at {self.statement.endpoint} ({self.statement.file}) cannot be reached: "
                             f"{exc.strerror or exc}") from None

    def control(self, facility: str) -> GatewayControl | None:
        """The control API client of the statement's ``facility`` (test clock, OTP mailbox), or None."""
        offered = self.statement.facility(facility)
        if offered is None:
            return None
        if facility not in self._controls:
            self._controls[facility] = GatewayControl(offered.url, token=offered.token, ca_pem=self.statement.tls_anchor)
        return self._controls[facility]

    def open_lanes(self, cases: int) -> list[GatewayLane]:
        self.lanes = [GatewayLane(self, i) for i in range(max(1, min(self.jobs, cases)))]
        return self.lanes

    def stop(self) -> None:
        for lane in getattr(self, "lanes", ()):
            lane.stop()
        evidence = getattr(self, "evidence", None)
        if evidence is not None:
            evidence.close()
        for control in getattr(self, "_controls", {}).values():
            control.close()

    @property
    def prepared(self) -> bool:
        return hasattr(self, "seed")

    def describe(self) -> dict:
        """The session facts results.json and the certificate state; ``party`` says a CGW was tested."""
        if not self.prepared:
            return {}
        s = self.statement
        return {
            **session_facts(self, "CGW"),
            "sut": {"driver": "gateway", "vendor": s.vendor, "vendor_tax_code": None, "product": s.name,
                    "version": s.build, "capabilities": self.sut.capabilities, "mutant": None, "build_hash": None},
            "gateway": s.describe(),
        }
