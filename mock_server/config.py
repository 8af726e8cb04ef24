"""Configuration of one gateway instance (docs/contracts.md, "Gateway").

A separate module so that ``app`` and ``pipeline`` can both use it without importing each other.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from cryptography import x509

from conformance import __version__

from .behaviour import Behaviour

TEST_CERTIFICATION_ID = "ECDI-0000-00000"   # ENV-08: a test CGW must accept it


@dataclass
class Account:
    """A CGW user (TRN-11/12, ENV-09): may act for ``tax_codes`` and their branches."""

    user_id: str
    password: str
    tax_codes: list[str]
    enabled: bool = True


@dataclass
class GatewayConfig:
    profiles: list[str] = field(default_factory=lambda: ["ecdi-1.0"])   # accepted_versions = their versions
    pki_folder: Path | None = None            # a TestPKI folder (TestPKI.ensure)
    host: str = "127.0.0.1"
    port: int = 0
    evidence_db: Path | None = None           # SQLite evidence log (append-only, hash-chained)
    state_db: Path | None = None              # submissions and histories; default: beside evidence_db
    # A PostgreSQL URL (postgresql://...): evidence, submissions, histories and sessions in that database,
    # shared by every gateway process given the same URL (database.py; evidence_db and state_db unused).
    database: str | None = None
    # The address clients use when the gateway is behind a load balancer (https://host:port): the endpoint and
    # WSDL address it announces (control API /info, the WSDL's soap:address); None: its own listening address.
    public_url: str | None = None
    time_scale: float = 1.0                   # §2.1: multiplies the profile's scaled timers
    accounts: list[Account] = field(default_factory=list)
    # SIG-11: certificates registered per tax code. None: the PKI's default declarant for its tax code.
    registered_certs: dict[str, list[x509.Certificate]] | None = None
    certified_products: list[str] = field(default_factory=list)   # X0005 register (1.1), besides the test id
    # PAY-04: addresses registered for payment approval per tax code; default one per tax code.
    approval_emails: dict[str, list[str]] = field(default_factory=dict)
    control_token: str | None = None          # X-ECDI-Control; None: a random one per run
    enforce_poll_interval: bool = True        # answer E9002 below T_poll_min (REL-15 allows it)
    # REL-15 is about when a query starts; the gateway sees when it arrives, and network jitter can bring
    # two queries started T_poll_min apart closer. E9002 only when arrivals are closer than T_poll_min less
    # this fraction of it (a quarter: 1 s of 4 s, the CAP-06 tolerance at s = 1 and at s = 0.05).
    poll_interval_allowance: float = 0.25
    # Table 4-3 SendApplication of replies.
    product: str = "ECDI-CGW-MOCK"
    product_version: str = __version__
    operator_name: str = "Cổng thông tin hải quan (môi trường kiểm thử)"
    operator_tax_code: str = "0100000000"
    shutdown_timeout: float = 2.0             # seconds stop() waits for responses in flight
    # How long a reply waits for its evidence row to be committed (another process holding the file's write
    # lock); past it the gateway answers 503 + Retry-After instead (TRN-08, docs/decisions.md).
    evidence_busy_timeout: float = 2.0
    # The key of the fingerprints that stand for passwords and OTPs in the evidence (redaction.py): the
    # harness's, so its tapes use the same markers; None: a random one for this gateway run. Never written.
    fingerprint_key: bytes | None = field(default=None, repr=False)
    # Hostile requests and connections (issue 13, docs/security.md). Durations in seconds, not scaled.
    cpu_workers: int = 2                      # processes parsing, validating and verifying requests off the loop
    # That work per request; past it E9001 (REL-02, TRN-08). Not scaled: within T_cgw at s = 1, and a
    # harness test at s = 0.01 is not answered E9001 because the machine is loaded (decisions.md).
    cpu_budget: float = 5.0
    handshake_timeout: float = 10.0           # accept to the end of the TLS handshake (half-open connections)
    header_timeout: float = 10.0              # a request head from its first byte (or the handshake) to complete
    body_timeout: float = 30.0                # a request body from its head to its last byte (bodies that never end)
    keepalive_timeout: float = 75.0           # an idle kept-alive connection (over T_backoff_max, 60 s at s = 1)
    max_connections: int = 10_000             # open at once past their handshake; more are closed at once
    # Where the gateway may deviate from the spec (behaviour.py): the default is the correct gateway; a
    # gateway defect (defects.py, ``ecdi gateway --defect``) sets some knobs.
    behaviour: Behaviour = field(default_factory=Behaviour)

    def evidence_target(self) -> Path | str:
        return self.database or Path(self.evidence_db)

    def state_target(self) -> Path | str:
        return self.database or self.state_path()

    def state_path(self) -> Path:
        if self.state_db is not None:
            return Path(self.state_db)
        evidence = Path(self.evidence_db)
        return evidence.with_name(evidence.stem + "-state" + evidence.suffix)
