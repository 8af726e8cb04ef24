"""What a CGW case sees: the common case context plus the harness playing the DTS.

A CGW case asks its lane's client to send (``ecdi.send``, ``ecdi.post``, ``ecdi.get``) and reads what came
back (``ecdi.exchanges``); the verdict calls are the common ones (``context.CaseContextBase``). What the
gateway statement does not offer (a test clock, an OTP mailbox) a case asks with ``ecdi.facility``: absent,
the case ends NOT-APPLICABLE with the reason, never PASS.
"""

from __future__ import annotations

from ..case import CaseFailure
from ..context import CaseContextBase
from ..verdict import Finding, Verdict


class GatewayCaseContext(CaseContextBase):
    """The CGW side of the seam (``party.CgwParty``)."""

    def __init__(self, spec, record, lane, attempt: int = 1):
        super().__init__(spec, record, lane, attempt, [a.password for a in lane.statement.accounts])
        self.statement = lane.statement
        self.client = lane.client
        self.gateway = lane.evidence            # what the plugin and the report read: this case's exchanges
        self.data = lane.data

    # --- stimulus ------------------------------------------------------------------------------
    def message(self, sample: str = "declaration-import", *, type: str = "929", function: str = "8", **header) -> bytes:
        """A valid signed request of ``type``/``function`` with the sample document as Content."""
        return self.client.message(self.data.document(sample), type=type, function=function, **header)

    def send(self, text: bytes, **options):
        """Send ``text`` in a well-framed ``Send`` (TRN-03/04) with the first account's credentials unless
        ``account``/``user``/``password``/``body`` say otherwise; returns the recorded exchange."""
        return self._noted(self.client.send(self.run_id, text, **options))

    def post(self, body: bytes, **options):
        """POST raw octets to the endpoint (``headers``, ``path`` as given); returns the recorded exchange."""
        return self._noted(self.client.post(self.run_id, body, **options))

    def get(self, path: str):
        return self._noted(self.client.get(self.run_id, path))

    def _noted(self, exchange):
        self.tape.add({"op": "exchange", "seq": exchange.seq})
        return exchange

    # --- observation ---------------------------------------------------------------------------
    def exchanges(self) -> list:
        """Every exchange the harness made for this case, in order."""
        return self.gateway.exchanges(self.run_id)

    def facility(self, name: str):
        """The statement's facility ``name`` ("test_clock", "otp_mailbox"); when not offered the case ends
        NOT-APPLICABLE, saying so (a case needing it cannot judge the gateway, and must not pass it)."""
        offered = self.statement.facility(name)
        if offered is None:
            message = f"the gateway statement offers no {name.replace('_', ' ')} ([facilities.{name}])"
            self.record.record(Finding(Verdict.NOT_APPLICABLE, message))
            raise CaseFailure(message)
        return offered
