"""Sessions: several vendors' runs on one gateway at once, isolated from each other.

A session owns what a run changes — its current case and scenario, its clock (advanced for OTP or
certificate cases), its OTP outbox, its operator prompts (prompts.py) — and the accounts (UserIds) it was created with. A request
belongs to the session of its SOAP ``UserId``; anything else (unknown user, unreadable request)
to the default session, which keeps the single-run behaviour. The evaluation sees its session
through ``SessionView``: the gateway with ``case``, ``clock``, ``mailbox`` and ``replies`` replaced,
so no pipeline step knows sessions exist.

Shared on purpose: trust material, the store of submissions (messageIds are random, so one
session cannot reach another's submissions) and the evidence log (one hash chain — each row names
its session, and the control API lists a session's rows only). Business references (REL-11) are
compared within a session's users, so two vendors replaying the same seeded test data do not
collide on E0074.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from cryptography import x509

from conformance.codec.fingerprint import Fingerprinter

from .clock import Clock
from .mailbox import Mailbox
from .prompts import Prompts
from .replies import Replies
from .scenario import CaseState

DEFAULT = "default"
SESSION_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")


@dataclass
class Session:
    session_id: str
    user_ids: set[str]
    clock: Clock
    replies: Replies
    case: CaseState = field(default_factory=CaseState)
    mailbox: Mailbox = field(default_factory=Mailbox)
    prompts: Prompts = field(default_factory=Prompts)
    # the fingerprints of this session's passwords and OTPs: a run on a shared gateway gives its own key, so
    # that its tapes and its cases' markers match its rows (redaction.py); None: the gateway's
    fingerprint: object | None = None

    def begin_case(self, case: CaseState) -> None:
        """Swap in a new case; connections held by the old one are released and its open operator
        prompts withdrawn (an answer about the old case must not land in the new one)."""
        self.case.end()
        self.prompts.withdraw_open()
        self.case = case


class SessionView:
    """The gateway as one session's exchange sees it (attributes not overridden come from it)."""

    def __init__(self, gateway, session: Session):
        self._gateway = gateway
        self.session = session
        self.clock = session.clock
        self.mailbox = session.mailbox
        self.replies = session.replies

    @property
    def case(self) -> CaseState:
        return self.session.case

    def __getattr__(self, name):
        return getattr(self._gateway, name)


# What a run on a shared gateway brings to its session besides its accounts (``ecdi run --shared-gateway``)
SHARED_SESSION_KEYS = ("certificates", "fingerprint_key")
_TAX_CODE = re.compile(r"[0-9]{10}(-[0-9]{3})?")


def shared_session_extras(data: dict) -> tuple[dict[str, set], Fingerprinter | None]:
    """A create-session body's ``certificates`` (``{tax_code: [PEM...]}``: registered for the tax code, SIG-11)
    and ``fingerprint_key`` (hex: the run's key, so that the session's rows carry the run's markers) as
    ``({tax_code: {(issuer, serial)}}, Fingerprinter or None)``; ValueError names a bad one."""
    certificates, key = data.get("certificates") or {}, data.get("fingerprint_key")
    if not isinstance(certificates, dict):
        raise ValueError("certificates: must be an object {tax_code: [PEM certificate...]}")
    registered: dict[str, set] = {}
    for tax_code, pems in certificates.items():
        if not _TAX_CODE.fullmatch(tax_code) or not isinstance(pems, list):
            raise ValueError(f"certificates: {tax_code!r} must be a TaxCode with a list of PEM certificates")
        try:
            found = [x509.load_pem_x509_certificate(pem.encode("ascii")) for pem in pems]
        except (ValueError, TypeError, AttributeError, UnicodeEncodeError):
            raise ValueError(f"certificates[{tax_code!r}]: not a list of PEM certificates") from None
        registered[tax_code] = {(c.issuer, c.serial_number) for c in found}
    if key is None:
        return registered, None
    try:
        raw = bytes.fromhex(key) if isinstance(key, str) else b""
    except ValueError:
        raw = b""
    if len(raw) < 16:
        raise ValueError("fingerprint_key: must be at least 16 octets in hex")
    return registered, Fingerprinter(raw)
