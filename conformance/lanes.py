"""Lanes: the isolated places where cases run at once (``ecdi run --jobs N``).

A lane is the harness as one job's cases see it: its own driver (so its own DTS instance), its own
gateway session (own accounts, scenario, case, clock, OTP mailbox: ``mock_server/sessions.py``) and
its own TLS probes; the profile, test PKI, seed, CRL server and the one gateway (one evidence hash
chain) are the session's. Lane 0 is the gateway's default session with the configured accounts, so
``--jobs 1`` is the single-run behaviour unchanged; lane k > 0 has the same local users with UserIds
``<UserId>.j<k>`` and passwords of their own. A case's DTS state folder is named by the case, never
by the lane, so what a case sees does not depend on the lane it ran on. On a shared gateway
(``--shared-gateway``, shared_gateway.py) lane 0 opens a session of its own too: the default session is
the gateway's.
"""

from __future__ import annotations

import secrets
import threading
from dataclasses import replace

from .drivers import load_driver
from .drivers.base import DriverError, LocalAccount

# Cases at once when --jobs is not given. The cases mostly wait on timers; the run ends with its longest
# case (runs_first) once the others fit beside it: docs/decisions.md has the figures.
DEFAULT_JOBS = 8


def lane_user(user_id: str, lane: int) -> str:
    """The UserId of ``user_id``'s account in ``lane`` (UserId: ``[A-Za-z0-9._@-]{1,50}``)."""
    return user_id if lane == 0 else f"{user_id[:45]}.j{lane}"


def driver_instances(driver) -> int | None:
    """How many instances of the product may run at once: None for no limit (the in-process reference
    DTS), else the driver's ``instances`` (a sut.toml's ``[driver] instances``, 1 when absent)."""
    if getattr(driver, "name", None) == "reference":
        return None
    sut_file = getattr(driver, "sut", None)
    return getattr(sut_file, "instances", 1) if getattr(driver, "name", None) != "manual" else 1


class Lane:
    """The harness seen from one lane: attributes not overridden here are the harness's."""

    def __init__(self, harness, index: int, driver, gateway_control, environment, lanes: list["Lane"]):
        self._harness = harness
        self.index = index
        self.driver = driver
        self.gateway_control = CampaignControl(gateway_control, self, lanes)
        self.case_id: str | None = None      # the case running on the lane (the plugin sets it)
        self.environment = environment
        self.password = environment.password
        self.tls_probes = None              # this lane's own: a probe's connection list is never shared

    def case_environment(self, case_id: str, certificate: str | None = None, *, branch: bool = False,
                         endpoint: str | None = None):
        return type(self._harness).case_environment(self, case_id, certificate, branch=branch, endpoint=endpoint)

    def tls_probe(self, variant: str):
        return type(self._harness).tls_probe(self, variant)

    def stop(self) -> None:
        """Lane 0's driver and session are the harness's, which stops them itself."""
        if self.tls_probes is not None:
            self.tls_probes.stop()
        close = getattr(self.driver, "close", None)
        if self.index and close is not None:   # the command driver's server mode: the product's process
            close()
        if self.index or self.gateway_control.own is not self._harness.gateway_control:
            self.gateway_control.close()

    def __getattr__(self, name):
        return getattr(self._harness, name)


class Campaign:
    """The campaign a case reads (ENV-02 and CAP-04 judge "the whole test campaign so far"): the exchanges of
    every case before it in the catalogue's order, and its own, whatever lane each ran on — what a one-job run
    has sent when the case reads it. The reader waits until those cases have ended, and the exchanges of
    cases after it (running meanwhile on other lanes) are left out, so it is the same campaign at any N."""

    def __init__(self, order: list[str], ended: list[threading.Event], stopped: threading.Event):
        self.order = order                  # case ids in catalogue order
        self._ended = dict(zip(order, ended))
        self._stopped = stopped             # the run stops: no case still to start will end

    def wait_for_earlier(self, case_id: str) -> int:
        """Return once every case before ``case_id`` in the catalogue's order has ended (or the run stops);
        the case's position."""
        at = self.order.index(case_id) if case_id in self.order else len(self.order)
        for earlier in self.order[:at]:
            while not self._ended[earlier].wait(0.2) and not self._stopped.is_set():
                pass
        return at

    def exchanges(self, case_id: str, lanes: list[Lane]) -> list:
        at = self.wait_for_earlier(case_id)
        later = set(self.order[at + 1:])
        found = [ex for lane in lanes for ex in lane.gateway_control.own.campaign_exchanges()]
        return sorted((ex for ex in found if (ex.case_id or "").split("@")[0] not in later), key=lambda ex: ex.seq)


class CampaignControl:
    """A lane's gateway-control client whose campaign is the run's (``Campaign``), not its session's."""

    def __init__(self, own, lane: Lane, lanes: list[Lane]):
        self.own = own                      # the client of the lane's own session
        self._lane = lane
        self._lanes = lanes

    def campaign_exchanges(self) -> list:
        campaign = getattr(self._lane, "campaign", None)
        if campaign is None:
            found = [ex for lane in self._lanes for ex in lane.gateway_control.own.campaign_exchanges()]
            return sorted(found, key=lambda ex: ex.seq)
        return campaign.exchanges(self._lane.case_id, self._lanes)

    def __getattr__(self, name):
        return getattr(self.own, name)


def open_lanes(harness, jobs: int, lanes: list[Lane]) -> None:
    """``jobs`` lanes on the started harness, into ``lanes``: lane 0 is the harness's own driver and default
    session; every further lane loads a driver of its own and opens a gateway session for its accounts."""
    base = harness.environment
    tax_codes = [harness.pki.declarant_tax_code]
    for index in range(jobs):
        if index == 0 and not harness.shared:
            lanes.append(Lane(harness, 0, harness.driver, harness.gateway_control, base, lanes))
            continue
        env = base          # on a shared gateway lane 0 too opens a session, for the run's own accounts
        if index:
            accounts = tuple(LocalAccount(a.local_user, lane_user(a.user_id, index), secrets.token_urlsafe(12))
                             for a in base.accounts)
            harness.passwords.update((a.user_id, a.password) for a in accounts)   # every CGW password of the run
            acting = next(a for a in accounts if a.user_id == lane_user(base.user_id, index))
            env = replace(base, user_id=acting.user_id, password=acting.password, accounts=accounts)
        control = harness.open_session(f"lane-{index}", [{"user_id": a.user_id, "password": a.password,
                                                          "tax_codes": tax_codes} for a in env.accounts])
        if index == 0:
            lanes.append(Lane(harness, 0, harness.driver, control, env, lanes))
            continue
        try:
            driver = load_driver(harness.options.sut, mutant=harness.options.mutant)
        except DriverError:
            control.close()
            raise
        lanes.append(Lane(harness, index, driver, control, env, lanes))
