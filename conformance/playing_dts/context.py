"""What a CGW case sees: the common case context plus the harness playing the DTS.

A CGW case has messages built (``ecdi.message``, ``ecdi.query``), sent (``ecdi.send``, ``ecdi.send_framed``,
``ecdi.post``, ``ecdi.get``, TLS offers) and reads what came back; the verdict calls are the common ones
(``context.CaseContextBase``). The case never holds a password or a key: the client frames and signs, so
the tape (the bundle) holds none. Everything read from the world is on the tape — the messages built, the
exchanges by their evidence ``seq``, the TLS outcomes, the statement's public facts and signing anchor — so
``ecdi replay`` re-derives the verdict offline, as for a DTS case. What the gateway statement does not offer
(a test clock, an OTP mailbox) a case asks with ``ecdi.facility``: absent, the case ends NOT-APPLICABLE with
the reason, never PASS.
"""

from __future__ import annotations

import atexit
import base64
import dataclasses
import shutil
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from types import SimpleNamespace

from ..case import CaseFailure
from ..context import CaseContextBase
from ..gateway_control import Exchange
from ..tape import RecordingData, RecordingGateway, b64, unb64
from ..verdict import Finding, Verdict


class GatewayCaseContext(CaseContextBase):
    """The CGW side of the seam (``party.CgwParty``). ``lane.statement`` None: a replay (``lane.recording`` is
    the recorded tape, ``lane.exchange(seq)`` a recorded exchange)."""

    def __init__(self, spec, record, lane, attempt: int = 1):
        live = getattr(lane, "statement", None)
        super().__init__(spec, record, lane, attempt, [a.password for a in live.accounts] if live else [])
        self._lane = lane
        self._live = live is not None
        self.client = lane.client if self._live else None
        self.gateway = RecordingGateway(lane.evidence, self.tape)   # the plugin and the report read it too
        self.data = RecordingData(lane.data, self.tape)
        self._recording = None if self._live else lane.recording    # a replay reads the bundle's tape
        if self._live:
            self.statement = live
            self.tape.add({"op": "statement", "facts": live.describe(),
                           "sign_anchor": live.cgw_sign_anchor.read_text(encoding="ascii")})
        else:
            self.statement = _recorded_statement(self._recording.take("statement"))

    # --- messages (built and signed by the client) ---------------------------------------------
    def message(self, sample: str = "declaration-import", *, type: str = "929", function: str = "8", **header) -> bytes:
        """A valid signed request of ``type``/``function`` with the sample document as Content."""
        document = self.data.document(sample)
        return self._recorded("message", lambda: self.client.message(document, type=type, function=function, **header))

    def query(self, submission_id: str, after: int = 0, *, type: str = "929") -> bytes:
        """A signed query (function 13) for ``submission_id`` after sequence ``after``."""
        return self._recorded("message", lambda: self.client.query(submission_id, after, type=type))

    def build(self, make) -> bytes:
        """Octets ``make(client)`` builds with the client's keys (a request with defects inflicted, signed by
        ``client.signer()``), noted on the tape: use it rather than ``ecdi.client`` so the case replays."""
        return self._recorded("message", lambda: make(self.client))

    # --- the wire --------------------------------------------------------------------------------
    def send(self, text: bytes, *, cdata: bool = False, **options):
        """Send ``text`` in a well-framed ``Send`` (TRN-03/04) with the first account's credentials unless
        ``account``/``user``/``password`` say otherwise; ``cdata``: MessageXML as one CDATA section."""
        def call():
            body = self.client.cdata_body(text, options.get("account")) if cdata else None
            return self.client.send(self.run_id, text, body=body, **options)
        return self._exchange(call)

    def send_framed(self, text: bytes, *, change_body=None, headers=None, path: str | None = None):
        """Send ``text`` in the SOAP body the client frames, changed by ``change_body`` (octets → octets) and
        with ``headers`` instead of ECDI's — a dict, or ``headers(account)`` where they must carry the
        account's credentials (TRN-11) — at ``path`` (default the endpoint's): the framing cases (TRN-07)."""
        def call():
            account = self.client.accounts[0]
            body = self.client.send_body(text, account)
            return self.client.post(self.run_id, change_body(body) if change_body else body,
                                    headers=headers(account) if callable(headers) else headers, path=path,
                                    message_text=text, user_id=account.user, secrets=(account.password,))
        return self._exchange(call)

    def send_at_once(self, texts: list[bytes]) -> list:
        """Send every text at the same moment (one thread each); the exchanges in the order of ``texts``."""
        if not self._live:
            return [self._exchange(None) for _ in texts]
        with ThreadPoolExecutor(len(texts)) as pool:
            found = list(pool.map(lambda t: self.client.send(self.run_id, t), texts))
        for exchange in found:
            self.tape.add({"op": "exchange", "result": exchange.seq})
        return found

    def post(self, body: bytes, **options):
        """POST raw octets to the endpoint (``headers``, ``path`` as given); returns the recorded exchange."""
        return self._exchange(lambda: self.client.post(self.run_id, body, **options))

    def get(self, path: str):
        return self._exchange(lambda: self.client.get(self.run_id, path))

    def tls_offer(self, what: str, version: int, suites: list[int]) -> dict:
        """Offer the gateway only ``version`` and ``suites`` (``tls_hello``): did it agree to a session?"""
        return self._recorded("tls", lambda: self.client.tls_offer(self.run_id, what, version, suites),
                              encode=dict, decode=dict, what=what)

    def tls_session(self, suite: str) -> dict:
        """A TLS 1.2 handshake offering only the OpenSSL suite ``suite``."""
        return self._recorded("tls", lambda: self.client.tls_session(self.run_id, suite),
                              encode=dict, decode=dict, what=suite)

    # --- the statement's test facilities (§2.1 test clock, PAY-04 OTP mailbox) --------------------
    def advance_clock(self, seconds: float) -> None:
        """Move the gateway's test clock ``seconds`` forward (NOT-APPLICABLE without one); the harness stamps
        its messages by it, and moves it back when the case ends."""
        control = self._control("test_clock")
        if self._live:
            self._lane.advance_clock(control, seconds)
        else:
            control.advance_clock(seconds)

    def otp_mails(self, payment_order_id: str) -> list[dict]:
        """The OTP e-mails the gateway sent for the order, oldest first (NOT-APPLICABLE without a mailbox)."""
        return self._control("otp_mailbox").mailbox(payment_order_id=payment_order_id)

    def processing_history(self) -> list:
        """The gateway's processing history (SEC-07) as its ``processing_history`` facility exports it: every
        row of the session, on the tape whole (they are not the harness's evidence); NOT-APPLICABLE without."""
        self.facility("processing_history")
        return self._recorded("processing_history",
                              lambda: self._lane.control("processing_history").campaign_exchanges(),
                              encode=lambda rows: [_row_json(r) for r in rows],
                              decode=lambda rows: [Exchange.from_json(r) for r in rows])

    def _control(self, facility: str):
        self.facility(facility)
        if not self._live:
            return self.gateway                 # the recorded clock and mailbox calls, from the tape
        return RecordingGateway(self._lane.control(facility), self.tape)

    # --- observation ---------------------------------------------------------------------------
    def exchanges(self) -> list:
        """Every exchange the harness made for this case, in order."""
        return self.gateway.exchanges(self.run_id)

    def alone(self) -> None:
        """Wait until every case before this one has ended: a ``runs_last`` case that moves the gateway's
        clock (its test clock, §2.1) must not disturb the cases running beside it."""
        campaign = getattr(self._harness, "campaign", None)
        if campaign is not None:
            campaign.wait_for_earlier(self.spec.id)

    def facility(self, name: str):
        """The statement's facility ``name`` ("test_clock", "otp_mailbox"); when not offered the case ends
        NOT-APPLICABLE, saying so (a case needing it cannot judge the gateway, and must not pass it)."""
        offered = self.statement.facility(name)
        if offered is None:
            message = f"the gateway statement offers no {name.replace('_', ' ')} ([facilities.{name}])"
            self.record.record(Finding(Verdict.NOT_APPLICABLE, message))
            raise CaseFailure(message)
        return offered

    # --- the tape ------------------------------------------------------------------------------
    def _exchange(self, call):
        return self._recorded("exchange", call, encode=lambda ex: ex.seq, decode=lambda seq: self._lane.exchange(seq))

    def _recorded(self, op: str, call, *, encode=None, decode=unb64, **args):
        """``call()`` in a live run, noted on the tape (octets with their passwords and OTPs as fingerprints);
        in a replay, the recorded result."""
        encode = encode or (lambda octets: b64(self.tape.octets(octets)))
        if self._live:
            result = call()
            self.tape.add({"op": op, **args, "result": encode(result)})
            return result
        return decode(self._recording.take(op, **args)["result"])


def _row_json(exchange) -> dict:
    """An exchange as JSON (``Exchange.from_json`` reads it back)."""
    data = dataclasses.asdict(exchange)
    return {**data.pop("extra", {}), **{k: (base64.b64encode(v).decode("ascii") if isinstance(v, bytes) else v)
                                        for k, v in data.items()}}


def _recorded_statement(event: dict):
    """The statement as a replay knows it: its public facts and the signing anchor the run used."""
    facts = event["facts"]
    folder = tempfile.mkdtemp(prefix="ecdi-replay-")
    atexit.register(shutil.rmtree, folder, True)              # the replay leaves nothing behind
    anchor = Path(folder) / "cgw-sign-anchor.pem"
    anchor.write_text(event["sign_anchor"], encoding="ascii")
    offered = set(facts.get("facilities", ()))
    return SimpleNamespace(
        name=facts["name"], vendor=facts["vendor"], build=facts["build"], endpoint=facts["endpoint"],
        profiles=tuple(facts["profiles"]), parameters=facts["parameters"], cgw_sign_anchor=anchor,
        accounts=tuple(SimpleNamespace(user=u) for u in facts.get("accounts", ())),
        facility=lambda name: SimpleNamespace(url=None, token=None) if name in offered else None,
        describe=lambda: facts)
