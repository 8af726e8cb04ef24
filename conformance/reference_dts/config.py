"""Configuration of the reference DTS (CAP-07) and its capability statement (CAP-05, Table 13-2).

Everything CAP-07 requires to be settable without rebuilding is a field of ``DtsConfig``: the
endpoint, the TLS trust anchor, ``cgw_sign_anchor``, ``ca_trust_list``, the PIXIT timings (in the
statement) and ``time_scale``. ``Timings`` turns the statement's PIXIT values and the profile's
timers into the effective seconds the DTS waits, scaled per §2.1 / CAP-08.

There is deliberately no setting that weakens ECDI (SEC-03): no plain-HTTP switch, no "accept any
certificate", no unsigned mode, no algorithm choice.
"""

from __future__ import annotations

import copy
import tomllib
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

STATEMENT_FILE = Path(__file__).with_name("ecdi-conformance.toml")


@cache
def _shipped_statement() -> dict:
    return tomllib.loads(STATEMENT_FILE.read_text(encoding="utf-8"))


def reference_statement() -> dict:
    """A fresh copy of the reference DTS's own capability statement (``ecdi-conformance.toml``)."""
    return copy.deepcopy(_shipped_statement())


@dataclass(frozen=True)
class LocalUser:
    """SEC-08: a local user of the DTS and his or her own CGW credentials."""

    name: str
    user_id: str
    password: str = field(repr=False)   # never shown (SEC-01)


@dataclass
class DtsConfig:
    """Everything the harness configures in the reference DTS (contract: docs/contracts.md)."""

    endpoint: str                 # cgw_endpoint; must start with https:// (TRN-10)
    tls_ca_pem: Path              # the TLS trust anchors: the ONLY ones used (TRN-10, CAP-07)
    sign_anchor_pem: Path         # cgw_sign_anchor, for reply signatures (SIG-15)
    ca_trust_list_pem: Path       # ca_trust_list, for the pre-signing checks (SIG-12)
    p12: Path                     # encrypted PKCS#12 holding the signing key (SEC-02)
    p12_password: str             # kept in memory only, never written (SEC-02)
    user_id: str                  # the CGW UserId (TRN-11)
    password: str                 # sent exactly as entered, never written (TRN-11, SEC-01)
    profile: object               # conformance.profile.Profile
    tax_code: str                 # From/identity (ENV-06)
    declarant_name: str           # From/name
    office: str                   # To/identity for 929/930 (ENV-06)
    office_name: str              # To/name
    statement: dict               # capability statement incl. pixit (CAP-05)
    time_scale: float = 1.0       # §2.1 s, applied when the statement claims time_scale_supported
    state_dir: Path = field(kw_only=True)  # durable store, journal, installation id
    local_user: str = "operator"  # SEC-08: the local user acting
    ui_locale: str = field(default="vi-VN", kw_only=True)  # TXT-06: the user interface's locale (BCP 47); it
                                  # never changes the lexical forms written on the wire
    environment: str = field(default="test", kw_only=True)  # CAP-07: "production" or "test", shown to the user
    accounts: tuple[LocalUser, ...] = field(default=(), kw_only=True)   # SEC-08: every local user's own
                                  # credentials; empty: one user, ``local_user`` with user_id/password
    crl_dir: Path | None = field(default=None, kw_only=True)  # a local CRL folder (SIG-12), read when a
                                  # distribution point cannot be fetched: files named like the last
                                  # segment of the URL; None: distribution points only.

    def __post_init__(self) -> None:
        self.tls_ca_pem, self.sign_anchor_pem, self.ca_trust_list_pem, self.p12, self.state_dir = (
            Path(self.tls_ca_pem), Path(self.sign_anchor_pem), Path(self.ca_trust_list_pem), Path(self.p12),
            Path(self.state_dir))
        self.crl_dir = Path(self.crl_dir) if self.crl_dir is not None else None

    def __repr__(self) -> str:  # never show the passwords (SEC-01)
        return (f"DtsConfig(endpoint={self.endpoint!r}, user_id={self.user_id!r}, tax_code={self.tax_code!r}, "
                f"office={self.office!r}, time_scale={self.time_scale}, state_dir={str(self.state_dir)!r})")

    @property
    def users(self) -> tuple[LocalUser, ...]:
        """SEC-08: the local users, the first acting by default."""
        return tuple(self.accounts) or (LocalUser(self.local_user, self.user_id, self.password),)

    def user(self, name: str) -> LocalUser:
        """The local user ``name`` with his or her own credentials; KeyError if there is none."""
        for u in self.users:
            if u.name == name:
                return u
        raise KeyError(name)

    @property
    def pixit(self) -> dict:
        return self.statement.get("pixit", {})

    @property
    def effective_scale(self) -> float:
        """CAP-08: s applies only to a DTS that states ``time_scale_supported``; others run with s = 1."""
        return float(self.time_scale) if self.pixit.get("time_scale_supported") else 1.0

    @property
    def version(self) -> str:
        """``Reference/version`` of every request: the profile configured for this environment (CAP-01)."""
        return self.profile.version

    def problems(self) -> list[str]:
        """Configuration errors that make the DTS unable to run (shown, never sent around)."""
        out = []
        if self.version not in self.statement.get("profile", []):
            out.append(f"profile {self.version} is not claimed in the capability statement (CAP-01)")
        if not 0 < self.time_scale <= 1:
            out.append(f"time_scale {self.time_scale} is outside 0 < s <= 1 (§2.1)")
        out.extend(self.profile.check_statement_pixit(self.pixit))               # Table 13-2
        return out

    def timings(self) -> "Timings":
        return Timings.from_config(self)


@dataclass(frozen=True)
class Timings:
    """Effective timings in seconds, every one already multiplied by s where §2.1 says so (CAP-08).

    ``t_send``, ``backoff_*``, ``poll_interval`` and ``poll_max_total`` are the statement's PIXIT
    values the DTS applies; ``min_*`` and ``poll_min`` are the profile floors REL-06 and REL-13 never
    let it go below.
    """

    scale: float
    t_send: float              # REL-01: per-attempt deadline for the complete response
    n_retry: int               # REL-07: retransmissions per send operation (a count: not scaled)
    backoff_base: float        # REL-06
    backoff_max: float
    min_backoff_base: float    # REL-06 floor: T_backoff_base
    min_backoff_max: float     # REL-06 floor: T_backoff_max
    poll_min: float            # T_poll_min (REL-06, REL-13, REL-14)
    poll_interval: float       # REL-13
    poll_max_total: float      # REL-14
    profile_t_send: float      # T_send: REL-08 waits this long before querying an unknown outcome
    age_max: float             # T_age_max (not scaled, §2.1): REL-08 retransmits within it
    retry_after_max: float = 300.0  # REL-06: a Retry-After above this (not scaled) ends the operation

    @classmethod
    def from_config(cls, config: DtsConfig) -> "Timings":
        s = config.effective_scale
        p, prof = config.pixit, config.profile
        return cls(
            scale=s,
            t_send=p["t_send_s"] * s,
            n_retry=int(p["n_retry"]),
            backoff_base=p["backoff_base_s"] * s,
            backoff_max=p["backoff_max_s"] * s,
            min_backoff_base=prof.timer("T_backoff_base", s),
            min_backoff_max=prof.timer("T_backoff_max", s),
            poll_min=prof.timer("T_poll_min", s),
            poll_interval=p["poll_interval_s"] * s,
            poll_max_total=p["poll_max_total_s"] * s,
            profile_t_send=prof.timer("T_send", s),
            age_max=prof.timer("T_age_max", s),
        )
