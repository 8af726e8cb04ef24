"""Scenarios: what a case asks the gateway to do differently, as data (docs/contracts.md).

A scenario is a JSON object::

    {"name": "reject-U0002",
     "rules": [{"name": "optional label",
                "when": {"type": "929", "function": "8", "attempt": 1},
                "then": {"action": "reply", "function": "271",
                         "errors": [{"code": "U0002", "field": "/Envelope/Header/From/identity",
                                     "description": "Người dùng không được phép ..."}]}}],
     "history": [{"function": "30"}, {"function": "10", "channel": "1"},
                 {"function": "32"}, {"function": "35"}],
     "pending_queries": 0}

It is validated here, completely, when a case begins: a typo must fail the case set-up with a
message naming the key, not silently make a rule never fire. Validation is the only behaviour of
this module; *interpreting* a rule happens in one place, ``pipeline.apply_rule``, so the evaluation
steps never test for faults themselves.

Semantics (also in the report of the issue that introduced them):

* ``rules`` are tried in order against each exchange; the first whose every ``when`` condition
  holds fires. A condition on a fact the gateway could not read (no messageId, unreadable type)
  does not hold. An empty ``when`` matches every exchange.
* ``reply`` replaces the outcome the gateway would have given (the natural outcome is kept in the
  evidence verdict). A forced 271 is never recorded; a forced 272/273 to a new non-query request is
  recorded as history entry 1, like a natural one (RPL-02). ``description`` defaults to the code
  list's Vietnamese text.
* ``delay`` evaluates normally and sends the response ``seconds`` (real seconds, not scaled) later.
* the fault actions of ``FAULT_ACTIONS`` (hold, reset, stall, truncate, drip, overload, malformed,
  break_schema, forge_signature, untrusted_signature, unknown_elements, duplicate, out_of_order,
  expire_otp, gateway_certificate, misroute, redirect, http_error) are interpreted in ``faults.py``;
  docs/scenarios.md describes each.
* ``wsdl``: ``absent`` makes ``GET ?wsdl`` answer 404 for the case (TRN-02).
* ``times`` limits how often a rule fires per case; ``probability`` draws from the case's RNG,
  seeded with the scenario's ``seed``.
* ``history`` is the customs processing simulated after a 29 to a 929/930 declaration (function 8):
  each query that finds nothing new reveals the next entry, after ``pending_queries`` queries that
  are answered 12 first. The history in force when a submission is recorded stays with it.
"""

from __future__ import annotations

import random
import re
import threading
from dataclasses import dataclass, field
from typing import Any, Mapping

MAX_DELAY_S = 600.0
MAX_ERRORS = 100                       # Table 7-1: Errors/Error 1..100
MAX_FIELD = 500                        # Table 7-1: Error/field 0..500 characters
MAX_DESCRIPTION = 500                  # Table 7-1: Error/description Text(500)
FORCEABLE_REPLIES = ("271", "272", "273")
CHANNELS = ("1", "2", "3")             # §5.4
# History entries the default flow of Table 7-2 can script (929/930 function 8), and which end it.
HISTORY_FUNCTIONS = ("30", "10", "33", "31", "32", "35", "272", "273")
FINAL_HISTORY = ("35", "272", "273")
# Later entries of an amendment or cancellation (Table 7-2: [31], then 32, 272 or 273).
CHANGE_HISTORY_FUNCTIONS = ("31", "32", "272", "273")
CHANGE_FINAL = ("32", "272", "273")
TAX_TYPES = ("XNK", "VAT", "TTDB", "BVMT")
DEFAULT_TAXES = (("XNK", "12500000"), ("VAT", "27500000"))

DEFAULT_HISTORY = ({"function": "30"}, {"function": "10", "channel": "1"}, {"function": "32"}, {"function": "35"})

_TOP_KEYS = ("name", "rules", "history", "amend_cancel_history", "pending_queries", "seed", "wsdl")
WSDL_MODES = ("served", "absent")      # TRN-02: "absent" answers GET ?wsdl with 404
_RULE_KEYS = ("name", "when", "then", "times", "probability")
# ``when`` keys and the exchange fact each one is compared with; all are strings except attempt.
WHEN_KEYS = {
    "type": str,           # Subject/type
    "function": str,       # Subject/function
    "reference": str,      # Subject/reference
    "message_id": str,     # Reference/messageId
    "user_id": str,        # SOAP UserId
    "attempt": int,        # n-th reception of this messageId, 1 = first
    "after_sequence": int,  # a query's afterSequence
}
_ACTION_KEYS = {
    "reply": {"action", "function", "errors"},
    "delay": {"action", "seconds"},
    "warn": {"action", "warnings"},    # evaluate normally; add these W codes to the reply (RPL-15)
}


def _number(low: float, high: float):
    def check(value) -> str | None:
        ok = isinstance(value, (int, float)) and not isinstance(value, bool) and low <= value <= high
        return None if ok else f"must be a number from {low:g} to {high:g}, got {value!r}"
    return check


def _integer(low: int, high: int):
    def check(value) -> str | None:
        ok = isinstance(value, int) and not isinstance(value, bool) and low <= value <= high
        return None if ok else f"must be an integer from {low} to {high}, got {value!r}"
    return check


def _one_of(*choices: str):
    def check(value) -> str | None:
        return None if value in choices else f"must be one of {', '.join(choices)}, got {value!r}"
    return check


def _one_of_int(*choices: int):
    def check(value) -> str | None:
        ok = isinstance(value, int) and not isinstance(value, bool) and value in choices
        return None if ok else f"must be one of {', '.join(map(str, choices))}, got {value!r}"
    return check


def _path_or_url(value) -> str | None:
    ok = isinstance(value, str) and 1 <= len(value) <= 500 and value.isascii() and value.isprintable() and (
        value.startswith("/") or value.startswith(("https://", "http://")))
    return None if ok else f"must be an absolute path or an http(s) URL of at most 500 characters, got {value!r}"


# Fault actions (interpreted in ``faults.py``): action -> {parameter: (check, default)}; a default of
# ``...`` marks a required parameter. Adding an action is one line here and one branch in faults.py.
FAULT_ACTIONS: dict[str, dict[str, tuple]] = {
    "hold": {},                                                   # never answer; released when the case ends
    "reset": {"stage": (_one_of("before_read", "after_read"), ...)},   # real TCP RST
    "stall": {},                                                  # status line and headers, then nothing
    "truncate": {"keep_bytes": (_integer(0, 10_000_000), None)},  # Content-Length larger than what is sent
    "drip": {"chunk_bytes": (_integer(1, 1_000_000), 64), "interval_s": (_number(0, 60), 0.05)},
    "overload": {"mode": (_one_of("503", "E9001"), ...), "retry_after": (_integer(0, 86_400), 5),
                 "seconds": (_number(0, MAX_DELAY_S), 0)},       # TRN-08 / REL-02: not recorded
    "malformed": {"variant": (_one_of("truncated", "doctype", "not_xml", "too_large", "too_deep"), "truncated")},
    "break_schema": {},                                           # well-formed, validly signed, schema-invalid
    "forge_signature": {},                                        # one character altered after signing
    "untrusted_signature": {},                                    # signed by an impostor key
    "unknown_elements": {},                                       # must-ignore extensions (RPL-11)
    "duplicate": {},                                              # the next query gets this reply again
    "out_of_order": {},                                           # a query reveals two entries, answers the higher
    "expire_otp": {},                                             # the order's current OTP expires now
    "withhold_mail": {},                                          # the OTP e-mail is never delivered (blocked)
    # REL-04: outcomes that end a send operation; the request is neither evaluated nor recorded
    "redirect": {"status": (_one_of_int(301, 302, 303, 307, 308), 302),
                 "location": (_path_or_url, "/ecdi/moved")},       # HTTP 3xx with Location (never followed)
    "http_error": {"status": (_integer(400, 599), 400),            # any 4xx/5xx status, e.g. 413
                   "fault": (_one_of("none", "client", "server"), "none")},   # a SOAP Fault body, with 500
    "gateway_certificate": {"certificate": (_one_of("renewed", "expired"), ...)},  # signed with another
                                                                  # gateway certificate (SIG-15)
    "misroute": {"field": (_one_of("reference", "to_identity", "type", "version", "placeholders"), ...)},  # one header
                                                                  # field altered, validly re-signed (SEC-04)
}
_ACTION_NAMES = sorted({*_ACTION_KEYS, *FAULT_ACTIONS})
_ERROR_KEYS = ("code", "field", "description")
_HISTORY_KEYS = ("function", "channel", "errors", "taxes", "due_in_days", "warnings")


class ScenarioError(ValueError):
    """The scenario is not valid; the message names the offending key or action."""


@dataclass(frozen=True)
class ForcedError:
    code: str
    field: str = ""
    description: str | None = None     # None: the code list's Vietnamese text


@dataclass(frozen=True)
class ReplyAction:
    function: str
    errors: tuple[ForcedError, ...]


@dataclass(frozen=True)
class DelayAction:
    seconds: float


@dataclass(frozen=True)
class WarnAction:
    """Evaluate normally and add ``warnings`` (W codes only) to the reply built for the request."""

    warnings: tuple[ForcedError, ...]


@dataclass(frozen=True)
class FaultAction:
    """A fault of ``FAULT_ACTIONS`` with its parameters (defaults filled in)."""

    name: str
    params: Mapping[str, Any]


@dataclass(frozen=True)
class Rule:
    label: str                          # the rule's name, or rules[i]; logged as evidence
    when: Mapping[str, Any]
    action: ReplyAction | DelayAction | WarnAction | FaultAction
    times: int | None = None            # fire at most this many times per case (None: always)
    probability: float = 1.0            # fire with this probability, drawn from the scenario's seeded RNG

    def matches(self, facts: Mapping[str, Any]) -> bool:
        return all(facts.get(key) is not None and facts.get(key) == value for key, value in self.when.items())


@dataclass(frozen=True)
class HistoryStep:
    function: str
    channel: str | None = None
    errors: tuple[ForcedError, ...] = ()
    taxes: tuple[tuple[str, str], ...] = DEFAULT_TAXES      # a 33's (taxType, amountVND) lines
    taxes_due_days: int = 30                                # a 33's dueDate: gateway date + this
    warnings: tuple[ForcedError, ...] = ()                  # W codes the entry carries (RPL-15)

    def to_data(self) -> dict:
        out: dict = {"function": self.function}
        if self.channel is not None:
            out["channel"] = self.channel
        if self.errors:
            out["errors"] = [e.__dict__ for e in self.errors]
        if self.function == "33":
            out["taxes"] = [{"tax_type": t, "amount_vnd": a} for t, a in self.taxes]
            out["due_in_days"] = self.taxes_due_days
        if self.warnings:
            out["warnings"] = [e.__dict__ for e in self.warnings]
        return out

    @classmethod
    def from_data(cls, data: Mapping) -> "HistoryStep":
        """Rebuild a step stored with a submission (already validated when the case began)."""
        taxes = tuple((t["tax_type"], t["amount_vnd"]) for t in data.get("taxes", ())) or DEFAULT_TAXES
        return cls(data["function"], data.get("channel"), tuple(ForcedError(**e) for e in data.get("errors", ())),
                   taxes, data.get("due_in_days", 30), tuple(ForcedError(**e) for e in data.get("warnings", ())))


_DEFAULT_STEPS = tuple(HistoryStep.from_data(h) for h in DEFAULT_HISTORY)
_DEFAULT_CHANGE_STEPS = (HistoryStep("32"),)


@dataclass(frozen=True)
class Scenario:
    name: str
    rules: tuple[Rule, ...] = ()
    history: tuple[HistoryStep, ...] = _DEFAULT_STEPS
    pending_queries: int = 0
    amend_cancel_history: tuple[HistoryStep, ...] = _DEFAULT_CHANGE_STEPS
    seed: int = 0                       # seeds the case's RNG: a randomised scenario repeats exactly
    source: Mapping = field(default_factory=dict, compare=False)   # the data as given, for evidence
    wsdl: str = "served"                # TRN-02: "absent" — the WSDL URL answers 404 (faults.wsdl_served)


DEFAULT_SCENARIO = Scenario("default")


def parse_scenario(data: Any, code_replies: Mapping[str, frozenset[str]]) -> Scenario:
    """Validate ``data`` and build a Scenario; raises ScenarioError naming the problem.

    ``code_replies`` maps each §5.3 result code to the reply function codes it may appear in
    (from the profile's code list), so that a scenario cannot force e.g. E0074 into a 271.
    """
    where = "scenario"
    _require(isinstance(data, Mapping), where, f"must be a JSON object, got {type(data).__name__}")
    _no_unknown_keys(data, _TOP_KEYS, where)
    name = data.get("name", "unnamed")
    _require(isinstance(name, str) and name, f"{where}.name", "must be a non-empty string")
    rules = data.get("rules", [])
    _require(isinstance(rules, list), f"{where}.rules", "must be a list")
    parsed_rules = tuple(_parse_rule(r, f"{where}.rules[{i}]", code_replies) for i, r in enumerate(rules))
    steps = _parse_history(data, "history", HISTORY_FUNCTIONS, FINAL_HISTORY, code_replies) or _DEFAULT_STEPS
    change_steps = (_parse_history(data, "amend_cancel_history", CHANGE_HISTORY_FUNCTIONS, CHANGE_FINAL, code_replies)
                    or _DEFAULT_CHANGE_STEPS)
    pending = data.get("pending_queries", 0)
    _require(isinstance(pending, int) and not isinstance(pending, bool) and 0 <= pending <= 10_000,
             f"{where}.pending_queries", f"must be an integer from 0 to 10000, got {pending!r}")
    seed = data.get("seed", 0)
    _require(isinstance(seed, int) and not isinstance(seed, bool), f"{where}.seed", f"must be an integer, got {seed!r}")
    wsdl = data.get("wsdl", "served")
    _require(wsdl in WSDL_MODES, f"{where}.wsdl", f"must be one of {', '.join(WSDL_MODES)}, got {wsdl!r}")
    return Scenario(name, parsed_rules, steps, pending, change_steps, seed, source=data, wsdl=wsdl)


def _parse_history(data: Mapping, key: str, functions, finals, code_replies) -> tuple[HistoryStep, ...] | None:
    """A history script (``history`` or ``amend_cancel_history``); None when the key is absent."""
    if key not in data:
        return None
    where = f"scenario.{key}"
    history = data[key]
    _require(isinstance(history, list), where, "must be a list")
    steps = tuple(_parse_history_step(h, f"{where}[{i}]", code_replies, functions) for i, h in enumerate(history))
    for i, step in enumerate(steps[:-1]):
        _require(step.function not in finals, f"{where}[{i}].function",
                 f"{step.function} is a final reply (Table 7-2); nothing may follow it (RPL-04)")
    return steps


def _parse_rule(rule: Any, where: str, code_replies) -> Rule:
    _require(isinstance(rule, Mapping), where, "must be an object with 'when' and 'then'")
    _no_unknown_keys(rule, _RULE_KEYS, where)
    label = rule.get("name", where.removeprefix("scenario."))
    _require(isinstance(label, str) and label, f"{where}.name", "must be a non-empty string")
    when = rule.get("when", {})
    _require(isinstance(when, Mapping), f"{where}.when", "must be an object")
    _no_unknown_keys(when, tuple(WHEN_KEYS), f"{where}.when")
    for key, value in when.items():
        kind = WHEN_KEYS[key]
        ok = isinstance(value, kind) and not isinstance(value, bool)
        _require(ok, f"{where}.when.{key}", f"must be {'an integer' if kind is int else 'a string'}, got {value!r}")
        if key == "attempt":
            _require(value >= 1, f"{where}.when.attempt", f"must be 1 or more, got {value}")
        if key == "after_sequence":
            _require(value >= 0, f"{where}.when.after_sequence", f"must be 0 or more, got {value}")
    _require("then" in rule, where, "has no 'then'")
    times = rule.get("times")
    if times is not None:
        _require(_integer(1, 1_000_000)(times) is None, f"{where}.times", _integer(1, 1_000_000)(times) or "")
    probability = rule.get("probability", 1.0)
    _require(_number(0, 1)(probability) is None, f"{where}.probability", _number(0, 1)(probability) or "")
    return Rule(label, dict(when), _parse_action(rule["then"], f"{where}.then", code_replies), times,
                float(probability))


def _parse_action(then: Any, where: str, code_replies) -> ReplyAction | DelayAction | WarnAction | FaultAction:
    _require(isinstance(then, Mapping), where, "must be an object with an 'action'")
    action = then.get("action")
    _require(action in _ACTION_NAMES, f"{where}.action",
             f"unknown action {action!r} (known: {', '.join(_ACTION_NAMES)})")
    if action in FAULT_ACTIONS:
        return _parse_fault(then, where, action)
    _no_unknown_keys(then, tuple(sorted(_ACTION_KEYS[action])), where)
    missing = _ACTION_KEYS[action] - set(then)
    _require(not missing, where, f"action {action!r} needs {', '.join(sorted(missing))}")
    if action == "delay":
        seconds = then["seconds"]
        ok = isinstance(seconds, (int, float)) and not isinstance(seconds, bool) and 0 <= seconds <= MAX_DELAY_S
        _require(ok, f"{where}.seconds", f"must be a number of seconds from 0 to {MAX_DELAY_S:g}, got {seconds!r}")
        return DelayAction(float(seconds))
    if action == "warn":
        return WarnAction(_parse_warnings(then["warnings"], f"{where}.warnings", None, code_replies))
    function = then["function"]
    _require(function in FORCEABLE_REPLIES, f"{where}.function",
             f"must be one of {', '.join(FORCEABLE_REPLIES)}, got {function!r}")
    return ReplyAction(function, _parse_errors(then["errors"], f"{where}.errors", function, code_replies))


def _parse_fault(then: Mapping, where: str, action: str) -> FaultAction:
    spec = FAULT_ACTIONS[action]
    _no_unknown_keys(then, ("action", *spec), where)
    params = {}
    for key, (check, default) in spec.items():
        if key not in then:
            _require(default is not ..., where, f"action {action!r} needs {key}")
            params[key] = default
            continue
        problem = check(then[key])
        _require(problem is None, f"{where}.{key}", problem or "")
        params[key] = then[key]
    return FaultAction(action, params)


def _parse_history_step(step: Any, where: str, code_replies, functions=HISTORY_FUNCTIONS) -> HistoryStep:
    _require(isinstance(step, Mapping), where, "must be an object with a 'function'")
    _no_unknown_keys(step, _HISTORY_KEYS, where)
    function = step.get("function")
    _require(function in functions, f"{where}.function",
             f"must be one of {', '.join(functions)}, got {function!r}")
    for key in ("taxes", "due_in_days"):
        _require(function == "33" or key not in step, f"{where}.{key}", f"only a 33 (tax notice) carries {key}")
    taxes, due = _parse_taxes(step, where) if function == "33" else (DEFAULT_TAXES, 30)
    channel = step.get("channel")
    if function == "10":
        _require(channel is not None, where, "a 10 (channel assigned) needs 'channel'")
    if channel is not None:
        _require(channel in CHANNELS, f"{where}.channel", f"must be one of {', '.join(CHANNELS)}, got {channel!r}")
    errors: tuple[ForcedError, ...] = ()
    if function in ("272", "273"):
        _require("errors" in step, where, f"a {function} needs 'errors'")
        errors = _parse_errors(step["errors"], f"{where}.errors", function, code_replies)
    else:
        _require("errors" not in step, f"{where}.errors", f"a {function} carries no errors")
    warnings = _parse_warnings(step["warnings"], f"{where}.warnings", function, code_replies) if "warnings" in step else ()
    return HistoryStep(function, channel, errors, taxes, due, warnings)


def _parse_taxes(step: Mapping, where: str) -> tuple[tuple[tuple[str, str], ...], int]:
    """A 33's ``taxes`` (1-10 lines, Table 7-1) and ``due_in_days``."""
    lines = step.get("taxes", [{"tax_type": t, "amount_vnd": a} for t, a in DEFAULT_TAXES])
    _require(isinstance(lines, list) and 1 <= len(lines) <= 10, f"{where}.taxes", "must be a list of 1 to 10 taxes")
    out = []
    for i, line in enumerate(lines):
        at = f"{where}.taxes[{i}]"
        _require(isinstance(line, Mapping), at, "must be an object with tax_type and amount_vnd")
        _no_unknown_keys(line, ("tax_type", "amount_vnd"), at)
        _require(line.get("tax_type") in TAX_TYPES, f"{at}.tax_type", f"must be one of {', '.join(TAX_TYPES)}")
        amount = line.get("amount_vnd")
        _require(isinstance(amount, str) and re.fullmatch(r"0|[1-9][0-9]{0,14}", amount) is not None,
                 f"{at}.amount_vnd", f"must be an AmountVND string (§4.2), got {amount!r}")
        out.append((line["tax_type"], amount))
    due = step.get("due_in_days", 30)
    _require(_integer(0, 3650)(due) is None, f"{where}.due_in_days", _integer(0, 3650)(due) or "")
    return tuple(out), due


def _parse_errors(errors: Any, where: str, function: str, code_replies) -> tuple[ForcedError, ...]:
    _require(isinstance(errors, list) and 1 <= len(errors) <= MAX_ERRORS, where,
             f"must be a list of 1 to {MAX_ERRORS} errors")
    out = []
    seen_warning = False
    for i, err in enumerate(errors):
        at = f"{where}[{i}]"
        _require(isinstance(err, Mapping), at, "must be an object with a 'code'")
        _no_unknown_keys(err, _ERROR_KEYS, at)
        code = err.get("code")
        _require(code in code_replies, f"{at}.code", f"unknown result code {code!r} (§5.3)")
        _require(function in code_replies[code], f"{at}.code",
                 f"{code} cannot appear in a {function} reply (allowed in: {', '.join(sorted(code_replies[code]))})")
        is_warning = code.startswith("W")
        _require(not (seen_warning and not is_warning), f"{at}.code",
                 f"{code} follows a W code; non-W codes come first (RPL-01)")
        seen_warning = seen_warning or is_warning
        field_ = err.get("field", "")
        _require(isinstance(field_, str) and len(field_) <= MAX_FIELD, f"{at}.field",
                 f"must be a string of at most {MAX_FIELD} characters")
        description = err.get("description")
        if description is not None:
            _require(isinstance(description, str) and 1 <= len(description) <= MAX_DESCRIPTION,
                     f"{at}.description", f"must be a string of 1 to {MAX_DESCRIPTION} characters")
        out.append(ForcedError(code, field_, description))
    _require(not out[0].code.startswith("W"), f"{where}[0].code",
             f"a {function} needs at least one non-W code, first (RPL-01)")
    return tuple(out)


def _parse_warnings(warnings: Any, where: str, function: str | None, code_replies) -> tuple[ForcedError, ...]:
    """W codes only (RPL-01: replies other than 271/272/273 carry only W codes, if any), each one
    allowed in ``function`` by the code list; ``function`` None (a ``warn`` rule: the reply is not
    known yet) asks only that the code may appear in some reply."""
    _require(isinstance(warnings, list) and 1 <= len(warnings) <= MAX_ERRORS, where,
             f"must be a list of 1 to {MAX_ERRORS} warnings")
    out = []
    for i, err in enumerate(warnings):
        at = f"{where}[{i}]"
        _require(isinstance(err, Mapping), at, "must be an object with a 'code'")
        _no_unknown_keys(err, _ERROR_KEYS, at)
        code = err.get("code")
        _require(code in code_replies, f"{at}.code", f"unknown result code {code!r} (§5.3)")
        _require(code.startswith("W"), f"{at}.code", f"{code} is not a W code (a warning)")
        _require(function is None or function in code_replies[code], f"{at}.code",
                 f"{code} cannot appear in a {function} reply (allowed in: {', '.join(sorted(code_replies[code]))})")
        field_ = err.get("field", "")
        _require(isinstance(field_, str) and len(field_) <= MAX_FIELD, f"{at}.field",
                 f"must be a string of at most {MAX_FIELD} characters")
        description = err.get("description")
        if description is not None:
            _require(isinstance(description, str) and 1 <= len(description) <= MAX_DESCRIPTION,
                     f"{at}.description", f"must be a string of 1 to {MAX_DESCRIPTION} characters")
        out.append(ForcedError(code, field_, description))
    return tuple(out)


def _no_unknown_keys(obj: Mapping, known: tuple[str, ...], where: str) -> None:
    unknown = [k for k in obj if k not in known]
    if unknown:
        raise ScenarioError(f"{where}: unknown key {unknown[0]!r} (known: {', '.join(known)})")


def _require(condition: bool, where: str, problem: str) -> None:
    if not condition:
        raise ScenarioError(f"{where}: {problem}")


class CaseState:
    """The per-case state of the gateway: which case is running, its scenario, and what the
    scenario's rules have done so far (fire counts, the seeded RNG, replies owed to a later query).

    Replaced as a whole by ``begin_case``; ``end()`` releases every connection a ``hold`` or
    ``stall`` keeps open, so a held exchange never outlives its case.
    """

    def __init__(self, case_id: str = "", scenario: Scenario = DEFAULT_SCENARIO):
        self.case_id = case_id
        self.scenario = scenario
        self.rng = random.Random(scenario.seed)
        self.fired: dict[str, int] = {}
        self.redeliver: dict[str, bytes] = {}      # submission messageId -> reply owed to its next query
        self.released = threading.Event()
        # (label, times) -> whether the rule may fire once more: counted for every gateway process sharing a
        # database (shared_sessions.py); None: this process's count is the count
        self.take = None

    def first_match(self, facts: Mapping[str, Any]) -> Rule | None:
        """The first rule whose conditions hold and that may still fire (``times``, ``probability``);
        counts the firing. Only rules whose conditions hold draw from the RNG, so a seeded scenario
        makes the same choices for the same sequence of requests."""
        for rule in self.scenario.rules:
            if not rule.matches(facts) or (rule.times is not None and self.fired.get(rule.label, 0) >= rule.times):
                continue
            if rule.probability < 1.0 and self.rng.random() >= rule.probability:
                continue
            if rule.times is not None and self.take is not None and not self.take(rule.label, rule.times):
                continue
            self.fired[rule.label] = self.fired.get(rule.label, 0) + 1
            return rule
        return None

    def end(self) -> None:
        self.released.set()
