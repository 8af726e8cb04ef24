"""The ``reference`` driver: the built-in reference DTS, in-process.

It plays the part a vendor's driver plays for a real product: configure the DTS for the harness's
environment (CAP-07), make it act, and report what it showed its user. It reads the reference DTS's
capability statement from the TOML file the product ships (CAP-05), like any other SUT.
"""

from __future__ import annotations

import json
import threading
import tomllib
from pathlib import Path
from typing import Callable

from lxml import etree

from ..codec.safexml import hardened_parser
from ..profile import load_profile
from ..reference_dts import DtsConfig
from ..reference_dts.config import LocalUser, reference_statement
from ..reference_dts.dts import ReferenceDTS
from ..reference_dts.mutants import MUTANTS
from ..reference_dts.mutants_payment import CONFIGURATIONS
from .base import (Action, DriverError, Environment, Outcome, ReportedError, ShownNotification, SutInfo,
                   await_kill_moment)



class ReferenceDriver:
    name = "reference"
    evidence_kind = "driver-action"

    def __init__(self, mutant: str | None = None):
        if mutant is not None and mutant not in MUTANTS and mutant not in CONFIGURATIONS:
            raise DriverError(f"unknown mutant {mutant!r}; `ecdi mutants` lists: {', '.join(sorted(MUTANTS))} "
                              f"and the configurations {', '.join(sorted(CONFIGURATIONS))}")
        self.mutant = mutant
        # CAP-05: the statement the product (or the mutant) ships, read like any other SUT's.
        self._dts_class = (MUTANTS.get(mutant) or CONFIGURATIONS[mutant]).cls if mutant is not None else ReferenceDTS
        self.statement = tomllib.loads(self._dts_class.shipped_statement())
        self._dts = None
        self._env: Environment | None = None

    def describe(self) -> SutInfo:
        return SutInfo(statement=self.statement, mutant=self.mutant)

    def start(self, env: Environment) -> None:
        self._env = env
        env.work_dir.mkdir(parents=True, exist_ok=True)
        config = DtsConfig(
            endpoint=env.endpoint,
            tls_ca_pem=env.tls_ca_pem,
            sign_anchor_pem=env.sign_anchor_pem,
            ca_trust_list_pem=env.ca_trust_list_pem,
            p12=env.p12,
            p12_password=env.p12_password,
            user_id=env.user_id,
            password=env.password,
            profile=load_profile(env.profile_id),
            tax_code=env.tax_code,
            declarant_name=env.declarant_name,
            office=env.office,
            office_name=env.office_name,
            statement=reference_statement(),      # the product's own settings; self.statement is what it ships
            time_scale=env.time_scale,
            state_dir=env.work_dir,
            environment=env.environment,
            ui_locale=env.ui_locale,
            accounts=tuple(LocalUser(a.local_user, a.user_id, a.password) for a in env.accounts),   # SEC-08
        )
        self._fuse = _Fuse()
        self._dts = self._dts_class(config)          # the reference DTS, a mutant or a configuration
        self._dts.attach_fuse(self._fuse.guard)

    def perform(self, action: Action) -> Outcome:
        if self._dts is None:
            raise DriverError("the driver was asked to act before start()")
        try:
            self._dts.login(action.user)                  # SEC-08: the local user acting
        except KeyError:
            raise DriverError(f"the reference DTS has no local user {action.user!r}") from None
        if action.kind == "lodge" and action.type in ("701", "702"):
            report = self._pay(action)
        elif action.kind == "lodge":
            content = etree.fromstring(action.document, hardened_parser())
            report = self._dts.lodge(content, type=action.type, function=action.function,
                                     business_ref=action.business_ref)
        elif action.kind == "query":
            report = self._dts.query(action.submission_id)
        elif action.kind == "configure":
            report = self._dts.configure()
        elif action.kind == "resume":
            reports = self._dts.resume()
            if not reports:
                return Outcome(action=action.kind, state="accepted")    # nothing was left unfinished
            report = reports[0]
            for other in reports[1:]:
                report.notifications += other.notifications
        else:
            raise DriverError(f"the reference driver cannot perform {action.kind!r}")
        return _outcome(action, report)

    def perform_and_kill(self, action: Action, when: Callable[[], bool], *, timeout: float) -> None:
        """REL-09: start ``action``, kill the DTS abruptly once ``when()`` holds, and start it again over
        the same state folder (the next ``resume`` action asks it to finish what it was doing).

        The DTS runs the action in a thread; the kill blows the fuse its store, journal and transport
        go through, so the killed instance does no I/O at all afterwards — no write to its state
        folder, no octet on the wire — as if its process had died there."""
        if self._dts is None:
            raise DriverError("the driver was asked to act before start()")
        fuse = self._fuse
        worker = threading.Thread(target=_die_quietly, args=(lambda: self.perform(action),), daemon=True,
                                  name="reference-dts-killed")
        worker.start()
        try:
            await_kill_moment(worker.is_alive, when, timeout=timeout, what=action.kind)
        finally:
            fuse.blow()                      # killed: whatever its thread does next raises at once
        self.start(self._env)                # restarted over the same state folder (REL-09)

    def kill(self) -> None:
        """Kill the DTS abruptly, whatever it is doing, and start it again over the same state folder —
        what a vendor's automation endpoint does for the http driver's ``kill`` action (REL-09)."""
        if self._dts is None:
            raise DriverError("the driver was asked to kill the DTS before start()")
        self._fuse.blow()
        self.start(self._env)

    def _pay(self, action: Action):
        """pay-create (701/8), pay-approve (702/8), request-otp (702/16): §10."""
        if (action.type, action.function) == ("701", "8"):
            return self._dts.pay_create(etree.fromstring(action.document, hardened_parser()))
        if (action.type, action.function) == ("702", "8"):
            return self._dts.approve(action.submission_id, action.otp or "")
        if (action.type, action.function) == ("702", "16"):
            return self._dts.request_otp(action.submission_id)
        raise DriverError(f"no user action lodges type {action.type} function {action.function}")

    def product_files(self) -> list[Path]:
        """SEC-01/SEC-02: everything the reference DTS writes is under its state folder."""
        return [self._env.work_dir] if self._env is not None else []

    def journal(self, submission: str | None = None) -> list[dict]:
        """SEC-06: the whole export, or the export for one submission (``submission``: its messageId)."""
        if self._dts is None:
            return []
        return [json.loads(line) for line in self._dts.journal_export(submission).splitlines() if line.strip()]

    def stop(self) -> None:
        if self._dts is not None:
            self._fuse.blow()
        self._dts = None


def _outcome(action: Action, report) -> Outcome:
    return Outcome(
        action=action.kind,
        state=report.state,
        message_id=report.message_id,
        status_function=report.status_function,
        reception_number=report.reception_number,
        declaration_number=report.declaration_number,
        channel=report.channel,
        errors=[ReportedError(e.code, e.field, e.description) for e in report.errors],
        warnings=[ReportedError(e.code, e.field, e.description) for e in report.warnings],
        notifications=[ShownNotification(n.kind, n.code, n.text) for n in report.notifications],
        payment_order_id=getattr(report, "payment_order_id", None),
        otp_expires_at=getattr(report, "otp_expires_at", None),
    )


class Killed(BaseException):
    """Raised in a killed DTS's thread at its next I/O: a BaseException, so that no ``except Exception``
    of the DTS (its last line of defence writes to the journal) catches it."""


class _Fuse:
    """What a killed process is: once ``blow`` is called every guarded call raises ``Killed`` — before
    it starts, and after it returns (a reply read after the kill is lost with the process)."""

    def __init__(self):
        self._blown = threading.Event()

    def blow(self) -> None:
        self._blown.set()

    def guard(self, call: Callable) -> Callable:
        def guarded(*args, **kwargs):
            if self._blown.is_set():
                raise Killed()
            result = call(*args, **kwargs)
            if self._blown.is_set():
                raise Killed()
            return result
        return guarded


def _die_quietly(run: Callable[[], object]) -> None:
    try:
        run()
    except Killed:
        pass
