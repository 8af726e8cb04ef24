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
* ``history`` is the customs processing simulated after a 29 to a 929/930 declaration (function 8):
  each query that finds nothing new reveals the next entry, after ``pending_queries`` queries that
  are answered 12 first. The history in force when a submission is recorded stays with it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping

MAX_DELAY_S = 600.0
MAX_ERRORS = 100                       # Table 7-1: Errors/Error 1..100
MAX_FIELD = 500                        # Table 7-1: Error/field 0..500 characters
MAX_DESCRIPTION = 500                  # Table 7-1: Error/description Text(500)
FORCEABLE_REPLIES = ("271", "272", "273")
CHANNELS = ("1", "2", "3")             # §5.4
# History entries the default flow of Table 7-2 can script (929/930 function 8), and which end it.
HISTORY_FUNCTIONS = ("30", "10", "31", "32", "35", "272", "273")
FINAL_HISTORY = ("35", "272", "273")

DEFAULT_HISTORY = ({"function": "30"}, {"function": "10", "channel": "1"}, {"function": "32"}, {"function": "35"})

_TOP_KEYS = ("name", "rules", "history", "pending_queries")
_RULE_KEYS = ("name", "when", "then")
# ``when`` keys and the exchange fact each one is compared with; all are strings except attempt.
WHEN_KEYS = {
    "type": str,           # Subject/type
    "function": str,       # Subject/function
    "reference": str,      # Subject/reference
    "message_id": str,     # Reference/messageId
    "user_id": str,        # SOAP UserId
    "attempt": int,        # n-th reception of this messageId, 1 = first
}
_ACTION_KEYS = {
    "reply": {"action", "function", "errors"},
    "delay": {"action", "seconds"},
}
_ERROR_KEYS = ("code", "field", "description")
_HISTORY_KEYS = ("function", "channel", "errors")


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
class Rule:
    label: str                          # the rule's name, or rules[i]; logged as evidence
    when: Mapping[str, Any]
    action: ReplyAction | DelayAction

    def matches(self, facts: Mapping[str, Any]) -> bool:
        return all(facts.get(key) is not None and facts.get(key) == value for key, value in self.when.items())


@dataclass(frozen=True)
class HistoryStep:
    function: str
    channel: str | None = None
    errors: tuple[ForcedError, ...] = ()

    def to_data(self) -> dict:
        out: dict = {"function": self.function}
        if self.channel is not None:
            out["channel"] = self.channel
        if self.errors:
            out["errors"] = [e.__dict__ for e in self.errors]
        return out

    @classmethod
    def from_data(cls, data: Mapping) -> "HistoryStep":
        """Rebuild a step stored with a submission (already validated when the case began)."""
        return cls(data["function"], data.get("channel"), tuple(ForcedError(**e) for e in data.get("errors", ())))


_DEFAULT_STEPS = tuple(HistoryStep.from_data(h) for h in DEFAULT_HISTORY)


@dataclass(frozen=True)
class Scenario:
    name: str
    rules: tuple[Rule, ...] = ()
    history: tuple[HistoryStep, ...] = _DEFAULT_STEPS
    pending_queries: int = 0
    source: Mapping = field(default_factory=dict, compare=False)   # the data as given, for evidence

    def first_match(self, facts: Mapping[str, Any]) -> Rule | None:
        return next((r for r in self.rules if r.matches(facts)), None)


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
    if "history" in data:
        history = data["history"]
        _require(isinstance(history, list), f"{where}.history", "must be a list")
        steps = tuple(_parse_history_step(h, f"{where}.history[{i}]", code_replies) for i, h in enumerate(history))
        for i, step in enumerate(steps[:-1]):
            _require(step.function not in FINAL_HISTORY, f"{where}.history[{i}].function",
                     f"{step.function} is a final reply (Table 7-2); nothing may follow it (RPL-04)")
    else:
        steps = _DEFAULT_STEPS
    pending = data.get("pending_queries", 0)
    _require(isinstance(pending, int) and not isinstance(pending, bool) and 0 <= pending <= 10_000,
             f"{where}.pending_queries", f"must be an integer from 0 to 10000, got {pending!r}")
    return Scenario(name, parsed_rules, steps, pending, source=data)


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
    _require("then" in rule, where, "has no 'then'")
    return Rule(label, dict(when), _parse_action(rule["then"], f"{where}.then", code_replies))


def _parse_action(then: Any, where: str, code_replies) -> ReplyAction | DelayAction:
    _require(isinstance(then, Mapping), where, "must be an object with an 'action'")
    action = then.get("action")
    _require(action in _ACTION_KEYS, f"{where}.action",
             f"unknown action {action!r} (known: {', '.join(sorted(_ACTION_KEYS))})")
    _no_unknown_keys(then, tuple(sorted(_ACTION_KEYS[action])), where)
    missing = _ACTION_KEYS[action] - set(then)
    _require(not missing, where, f"action {action!r} needs {', '.join(sorted(missing))}")
    if action == "delay":
        seconds = then["seconds"]
        ok = isinstance(seconds, (int, float)) and not isinstance(seconds, bool) and 0 <= seconds <= MAX_DELAY_S
        _require(ok, f"{where}.seconds", f"must be a number of seconds from 0 to {MAX_DELAY_S:g}, got {seconds!r}")
        return DelayAction(float(seconds))
    function = then["function"]
    _require(function in FORCEABLE_REPLIES, f"{where}.function",
             f"must be one of {', '.join(FORCEABLE_REPLIES)}, got {function!r}")
    return ReplyAction(function, _parse_errors(then["errors"], f"{where}.errors", function, code_replies))


def _parse_history_step(step: Any, where: str, code_replies) -> HistoryStep:
    _require(isinstance(step, Mapping), where, "must be an object with a 'function'")
    _no_unknown_keys(step, _HISTORY_KEYS, where)
    function = step.get("function")
    _require(function in HISTORY_FUNCTIONS, f"{where}.function",
             f"must be one of {', '.join(HISTORY_FUNCTIONS)}, got {function!r}")
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
    return HistoryStep(function, channel, errors)


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


def _no_unknown_keys(obj: Mapping, known: tuple[str, ...], where: str) -> None:
    unknown = [k for k in obj if k not in known]
    if unknown:
        raise ScenarioError(f"{where}: unknown key {unknown[0]!r} (known: {', '.join(known)})")


def _require(condition: bool, where: str, problem: str) -> None:
    if not condition:
        raise ScenarioError(f"{where}: {problem}")


@dataclass(frozen=True)
class CaseState:
    """The per-case state of the gateway: which case is running and its scenario.

    Replaced as a whole by ``begin_case`` (an atomic swap). Kept in one object so that per-vendor
    sessions (a later issue) can each hold their own.
    """

    case_id: str = ""
    scenario: Scenario = DEFAULT_SCENARIO
