"""The ``reference`` driver: the built-in reference DTS, in-process.

It plays the part a vendor's driver plays for a real product: configure the DTS for the harness's
environment (CAP-07), make it act, and report what it showed its user. It reads the reference DTS's
capability statement from the TOML file the product ships (CAP-05), like any other SUT.
"""

from __future__ import annotations

import json
import tomllib
from pathlib import Path

from lxml import etree

from ..codec.safexml import hardened_parser
from ..profile import load_profile
from ..reference_dts import DtsConfig, build_dts
from ..reference_dts.mutants import MUTANTS
from .base import Action, DriverError, Environment, Outcome, ReportedError, ShownNotification, SutInfo

STATEMENT = Path(__file__).resolve().parents[1] / "reference_dts" / "ecdi-conformance.toml"


class ReferenceDriver:
    name = "reference"
    evidence_kind = "driver-action"

    def __init__(self, mutant: str | None = None):
        if mutant is not None and mutant not in MUTANTS:
            raise DriverError(f"unknown mutant {mutant!r}; `ecdi mutants` lists: {', '.join(sorted(MUTANTS))}")
        self.mutant = mutant
        self.statement = tomllib.loads(STATEMENT.read_text(encoding="utf-8"))
        self._dts = None

    def describe(self) -> SutInfo:
        return SutInfo(statement=self.statement, mutant=self.mutant)

    def start(self, env: Environment) -> None:
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
            statement=self.statement,
            time_scale=env.time_scale,
            state_dir=env.work_dir,
        )
        self._dts = build_dts(config, self.mutant)

    def perform(self, action: Action) -> Outcome:
        if self._dts is None:
            raise DriverError("the driver was asked to act before start()")
        if action.kind == "lodge":
            content = etree.fromstring(action.document, hardened_parser())
            report = self._dts.lodge(content, type=action.type, function=action.function,
                                     business_ref=action.business_ref)
        elif action.kind == "query":
            report = self._dts.query(action.submission_id)
        else:
            raise DriverError(f"the reference driver cannot perform {action.kind!r}")
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
        )

    def journal(self) -> list[dict]:
        if self._dts is None:
            return []
        return [json.loads(line) for line in self._dts.journal_export().splitlines() if line.strip()]

    def stop(self) -> None:
        self._dts = None
