"""A run on a gateway it did not start: ``ecdi run --shared-gateway URL`` (issue 14).

Customs runs one gateway for every vendor at once; this is the harness's side of that. The running
``ecdi gateway`` (same test PKI folder: ``--pki-dir``) is reached through its control API with its
control token; every lane of the run opens a session of its own there (accounts with UserIds tagged by
the run, its own scenario, clock and mailbox), brings the run's registered certificates (SIG-11) and
its fingerprint key (so the rows of its sessions carry the run's markers: tapes and cases compare
them), and never touches the gateway's default session or another run's. The TLS probes and the CRL
server stay the run's own. At the end the run ends its sessions' cases and copies the slice of the
shared chain that holds its rows into its bundle (``mock_server/evidence_slice.py``).
"""

from __future__ import annotations

import json
import os
import secrets
import time
from pathlib import Path

from .gateway_control import ControlError, GatewayControl

TOKEN_ENV = "ECDI_CONTROL_TOKEN"
TAG_LENGTH = 9          # "r" + 8 hex digits: UserIds and session ids of this run
SETTLE_S = 10.0         # how long the end of a run waits for its sessions' rows in flight to be committed


class SharedGatewayError(Exception):
    """The shared gateway cannot be used for this run; the message names why."""


def control_token(token_file: str | None) -> str:
    """The control token: the file's first line, else ``$ECDI_CONTROL_TOKEN``."""
    if token_file:
        try:
            token = Path(token_file).read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise SharedGatewayError(f"--control-token-file {token_file}: cannot be read: {exc.strerror or exc}") from None
        if not token:
            raise SharedGatewayError(f"--control-token-file {token_file} is empty")
        return token
    token = os.environ.get(TOKEN_ENV, "").strip()
    if not token:
        raise SharedGatewayError(f"--shared-gateway needs the gateway's control token: --control-token-file FILE or "
                                 f"${TOKEN_ENV} (`ecdi gateway` prints it, or writes it with --control-token-file)")
    return token


class SharedGateway:
    """Stands where the run's own gateway would (``Harness.gateway``)."""

    def __init__(self, url: str, token: str, *, tls_ca_pem: Path, profile, time_scale: float):
        self.url = url.rstrip("/")
        self.control_url = self.url + "/_control"
        self.control_token = token
        self.tag = "r" + secrets.token_hex(4)
        self.sessions: list[str] = []
        self.slice: dict | None = None        # what export_evidence copied
        try:
            self.control = GatewayControl(self.control_url, token=token, ca_pem=tls_ca_pem)
        except ControlError as exc:
            raise SharedGatewayError(f"--shared-gateway {url}: {exc} (is `ecdi gateway` running there, with the "
                                     f"test PKI of --pki-dir and this control token?)") from None
        if profile.version not in self.control.accepted_versions:
            raise SharedGatewayError(f"--shared-gateway {url} accepts ECDI {', '.join(self.control.accepted_versions)}, "
                                     f"not {profile.version} ({profile.id}): start it with --profile {profile.id}")
        if self.control.time_scale != time_scale:
            raise SharedGatewayError(f"--shared-gateway {url} runs at time scale {self.control.time_scale:g}, this run "
                                     f"at {time_scale:g}: both sides scale the timers alike (§2.1)")
        self.endpoint_url = self.control.endpoint_url

    def user(self, user_id: str) -> str:
        """The run's UserId for ``user_id``: tagged, so that runs of the same product do not collide."""
        return f"{user_id[:30]}.{self.tag}"

    def open_session(self, name: str, accounts: list[dict], *, certificates: dict, key: bytes) -> GatewayControl:
        session_id = f"{self.tag}-{name}"
        control = self.control.create_session(session_id, accounts, certificates=certificates,
                                              fingerprint_key=key.hex())
        self.sessions.append(session_id)
        return control

    def export_evidence(self, controls: list[GatewayControl], db: Path) -> None:
        """End the run's cases on its sessions (held connections are released and their rows committed),
        then write the slice of the chain holding the run's rows into ``db``."""
        from mock_server.evidence_slice import write_slice  # adapter-only import

        if not self.sessions:
            return
        for control in controls:
            control.begin_case(f"{self.tag}-ended", {})
        deadline = time.monotonic() + SETTLE_S
        answer = self.control.evidence_slice(self.sessions)
        while answer["pending"] and time.monotonic() < deadline:
            time.sleep(0.1)
            answer = self.control.evidence_slice(self.sessions)
        db.parent.mkdir(parents=True, exist_ok=True)
        db.unlink(missing_ok=True)
        rows = write_slice(db, answer, set(self.sessions))
        own = sum(1 for r in answer["rows"] if json.loads(r["gateway_verdict"] or "{}").get("session") in self.sessions)
        self.slice = {"first_pos": answer["first_pos"], "prev_hash": answer["prev_hash"], "rows": rows,
                      "rows_of_other_sessions": rows - own, "pending_at_export": answer["pending"]}

    def describe(self) -> dict:
        """What results.json and the certificate say of the gateway."""
        return {"shared": True, "url": self.url, "sessions": list(self.sessions), "slice": self.slice}

    def stop(self) -> None:
        self.control.close()
