"""The party under test: one seam, two sides (spec §1, *Harness*: the harness "plays the CGW when testing
a DTS and the DTS when testing a CGW").

Each side gives what a run needs from it: the session harness (its statement and ``describe()`` facts for
results.json and the certificate), the requirements that bind it (``Profile.requirements_binding``), the
case context class, a case's set-up and tear-down on its lane, and whether capability claims are compared
(CAP-04 is the DTS's). The plugin, the verdict model, the evidence chain, the reports and the certificate
are the same for both; a run collects only the cases of its party (``CaseSpec.party``).

    DTS (default)  the harness plays the CGW (its mock gateway in this process) and drives the DTS
                   through a driver: ``harness.Harness``, ``context.CaseContext``
    CGW            the harness plays the DTS with its own client and addresses the gateway named by a
                   gateway statement (``ecdi run --gateway gateway.toml``): ``playing_dts``
"""

from __future__ import annotations


class DtsParty:
    name = "DTS"
    compares_claims = True

    def harness(self, options):
        from .harness import Harness

        return Harness(options)

    def requirements(self, profile) -> list:
        return profile.requirements_binding(self.name)

    def context(self, spec, record, lane, attempt: int = 1):
        from .context import CaseContext

        return CaseContext(spec, record, lane, attempt=attempt)

    def start_case(self, ctx, lane) -> None:
        """The gateway in the default scenario, then a fresh DTS state for the case."""
        from .scenarios import accept

        ctx.given(accept())
        lane.driver.start(lane.case_environment(ctx.run_id))

    def end_case(self, lane) -> None:
        lane.driver.stop()


class CgwParty:
    name = "CGW"
    compares_claims = False              # a CGW supports every capability (CAP-03): nothing to compare

    def harness(self, options):
        from .playing_dts.harness import GatewayHarness

        return GatewayHarness(options)

    def requirements(self, profile) -> list:
        return profile.requirements_binding(self.name)

    def context(self, spec, record, lane, attempt: int = 1):
        from .playing_dts.context import GatewayCaseContext

        return GatewayCaseContext(spec, record, lane, attempt=attempt)

    def start_case(self, ctx, lane) -> None:
        """Nothing to reset: each case sends its own messages (fresh messageIds and references)."""

    def end_case(self, lane) -> None:
        """A test clock the case moved goes back where the case found it."""
        lane.restore_clock()


PARTIES = {"DTS": DtsParty(), "CGW": CgwParty()}


def party_of(options) -> DtsParty | CgwParty:
    """The party a run tests: the CGW when a gateway statement is given, else the DTS."""
    return PARTIES["CGW" if getattr(options, "gateway", None) else "DTS"]
