"""The tape: everything a case read from the outside world, in order, so its verdict can be re-derived.

A case sees the world only through ``CaseContext``'s gateway, driver and test data. Recording what
those three returned — which exchanges (by arrival number ``seq``; their octets are in the evidence
log), every driver ``Outcome``, every journal export, every test-data draw, every scenario set —
makes the case a pure function of the tape. ``ecdi replay`` feeds the tape back through the same
case functions and compares the verdicts (see ``conformance.report.replay``).

Events are JSON-compatible dicts ``{"op": ..., ...}``; bytes are base64.

A tape is shared (the evidence bundle), so no secret is written on it: a live run's tape has the run's
``Fingerprinter`` and the secrets it was told of (the CGW passwords, the PKCS#12 password, each OTP the
mailbox showed) and stores every string with those values, and with the text of any ``Password`` or
``otp`` element, as their fingerprints (``conformance.codec.fingerprint``). The case is given the clear
values; a replay reads the markers, which the case compares through ``CaseContext.fingerprint``.
"""

from __future__ import annotations

import base64
from dataclasses import asdict
from typing import Any


class ReplayMismatch(Exception):
    """Replay asked for something the recorded case did not (different call, order or argument)."""


def b64(data: bytes | None) -> str | None:
    return None if data is None else base64.b64encode(data).decode("ascii")


def unb64(text: str | None) -> bytes | None:
    return None if text is None else base64.b64decode(text)


class Tape:
    def __init__(self, events: list[dict] | None = None, *, fingerprint=None, secrets=()):
        self.events: list[dict] = list(events or [])
        self.closed = False
        self._next = 0
        self._fingerprint = fingerprint      # None (a replay): events are stored as given
        self._secrets = {s for s in secrets if s}

    def keep_secret(self, value: str | None) -> None:
        """From now on ``value`` is written on the tape only as its fingerprint."""
        if value:
            self._secrets.add(value)

    def octets(self, data: bytes) -> bytes:
        """``data`` as the tape may hold it: the text of its Password and otp elements, and any secret kept,
        as fingerprints (a CGW case's built requests carry the OTPs it approves with)."""
        fp = self._fingerprint
        if fp is None or not data:
            return data
        cleaned, found = fp.elements(data)
        return fp.octets(cleaned, [*found, *self._secrets])

    def add(self, event: dict) -> None:
        if not self.closed:
            self.events.append(self._scrubbed(event))

    def _scrubbed(self, value):
        fp = self._fingerprint
        if fp is None:
            return value
        if isinstance(value, str):
            if "<" in value or "&lt;" in value:
                value = fp.elements(value.encode("utf-8"))[0].decode("utf-8")
            return fp.text(value, self._secrets)
        if isinstance(value, dict):
            return {k: self._scrubbed(v) for k, v in value.items()}
        if isinstance(value, (list, tuple)):
            return [self._scrubbed(v) for v in value]
        return value

    def take(self, op: str, **expected: Any) -> dict:
        """The next recorded event, which must be ``op`` with the ``expected`` arguments."""
        if self._next >= len(self.events):
            raise ReplayMismatch(f"the case called {op} after the recorded case had finished")
        event = self.events[self._next]
        if event["op"] != op:
            raise ReplayMismatch(f"the case called {op} where the recorded case called {event['op']}")
        for key, value in expected.items():
            if event.get(key) != value:
                raise ReplayMismatch(f"{op}: {key} is {value!r}, recorded {event.get(key)!r}")
        self._next += 1
        return event

    @property
    def unused(self) -> int:
        return len(self.events) - self._next


def action_record(action) -> dict:
    d = asdict(action)
    d["document"] = b64(action.document)
    return d


class _Recorder:
    """Passes every call to ``inner``; subclasses also note what came back on the tape."""

    def __init__(self, inner, tape: Tape):
        self._inner, self._tape = inner, tape

    def __getattr__(self, name):
        return getattr(self._inner, name)


class RecordingGateway(_Recorder):
    """The gateway-control client, recording what the case set and read."""

    def begin_case(self, case_id: str, scenario: dict) -> None:
        self._inner.begin_case(case_id, scenario)
        self._tape.add({"op": "begin_case", "case_id": case_id, "scenario": scenario})

    def exchanges(self, case_id: str | None = None) -> list:
        found = self._inner.exchanges(case_id)
        self._tape.add({"op": "exchanges", "case_id": case_id, "seqs": [e.seq for e in found],
                        "in_flight": [e.seq for e in found if e.responded_at is None]})
        return found

    def campaign_exchanges(self) -> list:
        found = self._inner.campaign_exchanges()
        self._tape.add({"op": "campaign_exchanges", "seqs": [e.seq for e in found],
                        "in_flight": [e.seq for e in found if e.responded_at is None]})
        return found

    def advance_clock(self, seconds: float) -> None:
        self._inner.advance_clock(seconds)
        self._tape.add({"op": "advance_clock", "seconds": seconds})

    def mailbox(self, *, tax_code: str | None = None, payment_order_id: str | None = None) -> list[dict]:
        result = self._inner.mailbox(tax_code=tax_code, payment_order_id=payment_order_id)
        for mail in result:
            self._tape.keep_secret(mail.get("otp"))
        self._tape.add({"op": "mailbox", "tax_code": tax_code, "payment_order_id": payment_order_id,
                        "result": result})
        return result

    def clock(self) -> dict:
        result = self._inner.clock()
        self._tape.add({"op": "clock", "result": result})
        return result


class RecordingDriver(_Recorder):
    """The driver, recording every action asked and every Outcome and journal it returned."""

    def perform(self, action):
        outcome = self._inner.perform(action)
        self._tape.add({"op": "perform", "action": action_record(action), "outcome": outcome.as_dict()})
        return outcome

    def offers(self, action_name: str) -> bool:
        """Whether the product's driver offers the user action at all (a driver without ``offers``
        offers every action)."""
        inner = getattr(self._inner, "offers", None)
        result = True if inner is None else bool(inner(action_name))
        self._tape.add({"op": "offers", "name": action_name, "result": result})
        return result

    def perform_and_kill(self, action, when, *, timeout: float) -> None:
        """REL-09: the driver kills the DTS once ``when()`` holds (its reads of the gateway are on the tape
        before this event, in order, so a replay asks ``when`` the same number of times)."""
        self._inner.perform_and_kill(action, when, timeout=timeout)
        self._tape.add({"op": "perform_and_kill", "action": action_record(action)})

    def journal(self) -> list[dict]:
        events = self._inner.journal()
        self._tape.add({"op": "journal", "result": events})
        return events

    def journal_of(self, submission: str) -> list[dict] | None:
        """SEC-06: the export for one submission, where the driver offers it (``journal(submission=...)``);
        None when it does not."""
        import inspect

        if hasattr(self._inner, "journal_of"):         # ecdi replay: the recorded answer
            events = self._inner.journal_of(submission)
        else:
            try:
                offered = "submission" in inspect.signature(self._inner.journal).parameters
            except (TypeError, ValueError):
                offered = False
            events = self._inner.journal(submission=submission) if offered else None
        self._tape.add({"op": "journal_of", "submission": submission, "result": events})
        return events

    def search_product_files(self, needles) -> dict:
        """SEC-01/SEC-02: search the product's files (``Driver.product_files``) for each named secret in each
        of its encodings; the result — what was searched and every hit — goes on the tape (a replay cannot
        read the product's files again)."""
        from .checks import search_files

        if hasattr(self._inner, "search_product_files"):   # ecdi replay: the recorded result
            result = self._inner.search_product_files(needles)
        else:
            result = search_files(self._inner.product_files(), needles())
        self._tape.add({"op": "search_product_files", "result": result})
        return result

    def start(self, env) -> None:
        self._inner.start(env)
        self._tape.add({"op": "start", "certificate": env.certificate})

    def stop(self) -> None:
        self._inner.stop()
        self._tape.add({"op": "stop"})


class RecordingData(_Recorder):
    """The per-run test data, recording each draw (the RNG is shared by the run's cases in order)."""

    def nonce(self, digits: int = 6) -> str:
        result = self._inner.nonce(digits)
        self._tape.add({"op": "data.nonce", "digits": digits, "result": result})
        return result

    def choice(self, items):
        result = self._inner.choice(items)
        self._tape.add({"op": "data.choice", "result": result})
        return result

    def document(self, name: str, **changes) -> bytes:
        result = self._inner.document(name, **changes)
        event = {"op": "data.document", "name": name, "result": b64(result)}
        if changes:                                   # only when given: older tapes have no "changes"
            event["changes"] = changes
        self._tape.add(event)
        return result


class RecordingSettings(_Recorder):
    """What the harness configured the DTS with for the case (CAP-07: the declarant's tax code, the
    office of lodgement, ...), recording each value a case reads so that a replay compares the wire
    with the same values."""

    def get(self, name: str):
        result = self._inner.get(name)
        self._tape.add({"op": "setting", "name": name, "result": result})
        return result
