"""The driver seam: what a case may ask of a DTS and what it gets back.

Modelled on test-bed messaging adapters (ISAITB GITB's IMessagingHandler): a narrow, data-only
interface, so the same case runs against the in-process reference DTS, a vendor's command-line tool,
an HTTP automation endpoint or a human operator.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol


class DriverError(Exception):
    """The driver could not make the DTS act (not the DTS's own failure, which is an Outcome)."""


class DriverInconclusive(DriverError):
    """Nothing can be concluded: e.g. the operator of a manual product gave no answer in time.

    A case must then be INCONCLUSIVE, never PASS: nothing was observed to judge (docs/drivers.md).
    """


@dataclass(frozen=True)
class LocalAccount:
    """One local user of the DTS and his or her own CGW credentials (SEC-08)."""

    local_user: str
    user_id: str
    password: str = field(repr=False)   # never shown (SEC-01)


@dataclass(frozen=True)
class Environment:
    """Everything the harness configures in a DTS before it acts (CAP-07)."""

    profile_id: str
    endpoint: str
    tls_ca_pem: Path
    sign_anchor_pem: Path
    ca_trust_list_pem: Path
    p12: Path
    p12_password: str
    user_id: str
    password: str
    tax_code: str
    declarant_name: str
    office: str
    office_name: str
    time_scale: float
    work_dir: Path
    certificate: str = "declarant"  # which test certificate p12 holds (pki_matrix name), for evidence
    environment: str = "test"       # CAP-07: the environment the settings are for ("test" or "production"); the
                                    # DTS must show the user which one is active. The harness is always "test".
    ui_locale: str = "vi-VN"        # TXT-06: the user-interface locale the DTS runs with (BCP 47 tag)
    # SEC-08: the DTS's local users, each with his or her own CGW account; the first is the one
    # ``user_id``/``password`` name and the one acting when an Action names no user.
    accounts: tuple[LocalAccount, ...] = ()
    # SIG-12: the declarant CA's CRL, served at the distribution point every test certificate names
    # (``crl_url``) and as a DER file (``crl_path``); ``crl_access`` is how the SUT file says the product
    # reaches it (sut.CRL_ACCESS); ``crl_problem`` why the harness could not serve it ("" when it does).
    crl_url: str = ""
    crl_path: Path | None = None
    crl_access: str = "none"
    crl_problem: str = ""

    @property
    def local_accounts(self) -> str:
        """SEC-08: ``local=UserId`` pairs, comma-separated, in order (what ``CaseContext.local_accounts`` reads)."""
        return ",".join(f"{a.local_user}={a.user_id}" for a in self.accounts) or f"{self.user_id}={self.user_id}"

    def account(self, local_user: str | None) -> LocalAccount:
        """The account of ``local_user`` (None: the first); KeyError names an unknown user."""
        if not self.accounts:
            return LocalAccount(local_user or self.user_id, self.user_id, self.password)
        if local_user is None:
            return self.accounts[0]
        for acc in self.accounts:
            if acc.local_user == local_user:
                return acc
        raise KeyError(f"no local user {local_user!r}; the environment has "
                       f"{', '.join(a.local_user for a in self.accounts)}")


@dataclass(frozen=True)
class SutInfo:
    """Who the system under test is: its capability statement (CAP-05) and, optionally, build hash."""

    statement: dict
    mutant: str | None = None
    build_hash: str | None = None

    @property
    def vendor(self) -> str:
        return self.statement["vendor"]

    @property
    def product(self) -> str:
        return self.statement["product"]

    @property
    def version(self) -> str:
        return self.statement["version"]

    @property
    def capabilities(self) -> list[str]:
        return list(self.statement.get("capabilities", []))

    @property
    def pixit(self) -> dict:
        return dict(self.statement.get("pixit", {}))


@dataclass(frozen=True)
class Action:
    """One user action. ``document`` is the Content child (e.g. a dec:Declaration) as XML octets."""

    kind: str                       # "lodge" | "query" | "configure" (drivers name the user action
                                    # of a lodge by type and function: protocol.user_action)
    type: str | None = None         # message type, e.g. "929"
    function: str = "8"
    document: bytes | None = None
    business_ref: str | None = None
    submission_id: str | None = None   # query: the messageId; pay-approve, request-otp: the paymentOrderId
    otp: str | None = None          # the OTP the user enters when approving a payment (PAY)
    user: str | None = None         # SEC-08: the local user acting (Environment.accounts); None = the first


@dataclass(frozen=True)
class ReportedError:
    code: str
    field: str
    description: str


@dataclass(frozen=True)
class ShownNotification:
    """A notification the DTS showed its user (SEC-06 ``notification`` event)."""

    kind: str
    code: str | None
    text: str


@dataclass
class Outcome:
    """What the DTS reported to its user after an action."""

    action: str
    state: str                      # accepted | cleared | rejected | business-error | refused | unknown |
                                    # security-error | transport-error | local-error | in-progress
    message_id: str | None = None
    status_function: str | None = None
    reception_number: str | None = None
    declaration_number: str | None = None
    channel: str | None = None
    errors: list[ReportedError] = field(default_factory=list)
    warnings: list[ReportedError] = field(default_factory=list)
    notifications: list[ShownNotification] = field(default_factory=list)
    raised: str | None = None       # the driver's own failure, if the DTS could not be made to act
    payment_order_id: str | None = None   # PAY-08: the paymentOrderId shown (pay-create, request-otp, ...)
    otp_expires_at: str | None = None     # PAY-08: the OTP expiry shown, ISO 8601 with the UTC offset shown

    def as_dict(self) -> dict:
        from dataclasses import asdict

        return asdict(self)


class Driver(Protocol):
    name: str
    # What an Outcome from this driver rests on: what the product showed, read by automation
    # ("driver-action"), or what a person says it showed ("operator-attestation").
    evidence_kind: str

    def describe(self) -> SutInfo:
        """The SUT's identity and capability statement, known before any case runs."""

    def start(self, env: Environment) -> None:
        """Install/configure the DTS for one case (fresh state unless the case says otherwise)."""

    def perform(self, action: Action) -> Outcome:
        """Make the DTS act and return what it showed; never raise for the DTS's own failures."""

    def journal(self) -> list[dict]:
        """The DTS's journal export (SEC-06) as parsed JSON Lines events."""

    def product_files(self) -> list[Path]:
        """SEC-01/SEC-02: the files and folders where the product keeps its files (settings, journal, logs,
        key store), for the harness to search for clear-text secrets (FILE evidence)."""

    def stop(self) -> None:
        """Release whatever ``start`` acquired."""


def await_kill_moment(running, when, *, timeout: float, what: str) -> None:
    """REL-09 drivers: return once ``when()`` holds while the product is still doing ``what``
    (``running()``); a DriverError if it finished first or the moment did not come within ``timeout``."""
    import time

    deadline = time.monotonic() + timeout
    while not when():
        if not running():
            raise DriverError(f"the DTS finished {what!r} before the moment to kill it came")
        if time.monotonic() > deadline:
            raise DriverError(f"the moment to kill the DTS did not come within {timeout:g} s")
        time.sleep(0.02)
