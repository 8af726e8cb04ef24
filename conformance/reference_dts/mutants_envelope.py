"""Mutants of the envelope cases (see ``mutants.py`` for what a mutant is): one hook override each."""

from __future__ import annotations

import random
import uuid

from .dts import ReferenceDTS
from .mutants import MUTANTS, Mutant


class SeededMessageIds(ReferenceDTS):
    def new_message_id(self) -> str:
        if not hasattr(self, "_ids"):
            self._ids = random.Random(20250101)           # ENV-02: a PRNG seeded with a constant at start-up:
        return str(uuid.UUID(int=self._ids.getrandbits(128), version=4))   # each start repeats the same ids


class TimeBasedMessageIds(ReferenceDTS):
    def new_message_id(self) -> str:
        return str(uuid.uuid1())                           # ENV-02: a version-1 (time and node) UUID


class DeclarationsToCentralOffice(ReferenceDTS):
    def addressee(self, type_: str) -> tuple[str, str]:
        central = self.profile.deployment["central_office"]   # ENV-06: declarations go to the office of
        return central, self.profile.offices.get(central, central)   # lodgement, not to central_office


class ExportAsPaymentProcedure(ReferenceDTS):
    def procedure_type(self, type_: str, function: str) -> str:
        return "1" if type_ == "929" else "2"              # ENV-04: procedureType 1 for 930 too (Table 4-1)


class ReferenceCounterPerStart(ReferenceDTS):
    def new_business_reference(self, type_: str, function: str) -> str:
        self._refs = getattr(self, "_refs", 0) + 1         # ENV-05: a counter kept in memory only, so a
        return f"REF-{self._refs:05d}"                     # restart hands out REF-00001 again


class InstallationIdPerStart(ReferenceDTS):
    def installation_identifier(self) -> str:
        return str(uuid.uuid4())                           # ENV-07: generated at every start, never kept


class BuildVersionSent(ReferenceDTS):
    def send_application_fields(self) -> dict[str, str]:
        fields = super().send_application_fields()         # ENV-08: the build's version, not the statement's
        fields["SendApplication/version"] = f"{fields['SendApplication/version']}+build.7"
        return fields


class NewestClaimedVersion(ReferenceDTS):
    def reference_version(self) -> str:
        return max(self.statement["profile"])              # CAP-01: the newest claimed profile, whatever the
                                                           # environment is configured for


MUTANTS.update({m.name: m for m in [
    Mutant("message-ids-seeded", "draws messageIds from a PRNG seeded with a constant at start-up: after a restart "
           "the same messageIds come again for new messages", ["ENV-02"], "envelope.message-ids-fresh",
           SeededMessageIds),
    Mutant("message-ids-time-based", "uses version-1 (time-based) UUIDs as messageIds", ["ENV-02"],
           "envelope.message-ids-fresh", TimeBasedMessageIds),
    Mutant("declarations-to-central-office", "addresses declarations to central_office instead of the office of "
           "lodgement", ["ENV-06"], "envelope.header-identities", DeclarationsToCentralOffice),
    Mutant("export-procedure-type-2", "sends export declarations (930) with procedureType 2", ["ENV-04"],
           "envelope.type-function-rows", ExportAsPaymentProcedure),
    Mutant("business-reference-counter", "numbers business references with an in-memory counter that restarts at "
           "REF-00001 when the product is restarted", ["ENV-05"], "envelope.business-references",
           ReferenceCounterPerStart),
    Mutant("installation-id-per-start", "generates a new installation identifier at every start", ["ENV-07"],
           "envelope.installation-id", InstallationIdPerStart),
    Mutant("build-version-sent", "sends its build version (0.1.0+build.7) as SendApplication/version, not the "
           "statement's", ["ENV-08"], "envelope.send-application", BuildVersionSent),
    Mutant("newest-claimed-version", "sends the newest claimed profile as Reference/version, not the environment's",
           ["CAP-01"], "envelope.version-claimed", NewestClaimedVersion),
]})
