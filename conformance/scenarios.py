"""Scenario builders: the data a case hands the gateway. The gateway validates and interprets it.

Builders only assemble JSON-compatible dicts (see docs/scenarios.md and mock_server/scenario.py);
they hold no behaviour, so a scenario in a report or an evidence bundle reads exactly as it ran.
"""

from __future__ import annotations


def accept(name: str = "accept") -> dict:
    """A normal acceptance: receipt 29, then the default history the gateway's scenario model defines."""
    return {"name": name, "rules": []}


def reply_first_attempt(type_: str, function: str, reply_function: str, errors: list[dict], name: str) -> dict:
    """The first request of the given type/function is answered with ``reply_function`` and ``errors``."""
    return {
        "name": name,
        "rules": [
            {
                "when": {"type": type_, "function": function, "attempt": 1},
                "then": {"action": "reply", "function": reply_function, "errors": errors},
            }
        ],
    }


def delay_first_attempt(type_: str, function: str, seconds: float, name: str = "delay-first-attempt") -> dict:
    """The first attempt of the given type/function is answered only after ``seconds``."""
    return {
        "name": name,
        "rules": [
            {
                "when": {"type": type_, "function": function, "attempt": 1},
                "then": {"action": "delay", "seconds": round(seconds, 3)},
            }
        ],
    }
