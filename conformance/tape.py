"""The tape: everything a case read from the outside world, in order, so its verdict can be re-derived.

A case sees the world only through ``CaseContext``'s gateway, driver and test data. Recording what
those three returned — which exchanges (by arrival number ``seq``; their octets are in the evidence
log), every driver ``Outcome``, every journal export, every test-data draw, every scenario set —
makes the case a pure function of the tape. ``ecdi replay`` feeds the tape back through the same
case functions and compares the verdicts (see ``conformance.report.replay``).

Events are JSON-compatible dicts ``{"op": ..., ...}``; bytes are base64.
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
    def __init__(self, events: list[dict] | None = None):
        self.events: list[dict] = list(events or [])
        self.closed = False
        self._next = 0

    def add(self, event: dict) -> None:
        if not self.closed:
            self.events.append(event)

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

    def advance_clock(self, seconds: float) -> None:
        self._inner.advance_clock(seconds)
        self._tape.add({"op": "advance_clock", "seconds": seconds})

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

    def journal(self) -> list[dict]:
        events = self._inner.journal()
        self._tape.add({"op": "journal", "result": events})
        return events

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

    def document(self, name: str) -> bytes:
        result = self._inner.document(name)
        self._tape.add({"op": "data.document", "name": name, "result": b64(result)})
        return result
