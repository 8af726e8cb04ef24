"""Scenario builders: the data a case hands the gateway. The gateway validates and interprets it.

Builders only assemble JSON-compatible dicts (see docs/scenarios.md and mock_server/scenario.py);
they hold no behaviour, so a scenario in a report or an evidence bundle reads exactly as it ran.
"""

from __future__ import annotations


def accept(name: str = "accept") -> dict:
    """A normal acceptance: receipt 29, then the default history the gateway's scenario model defines."""
    return {"name": name, "rules": []}


def answered_alike(type_: str, function: str, reply_function: str, errors: list[dict], name: str) -> dict:
    """Every attempt of a submission of the given type/function meets the same customs answer, however the
    DTS times them (a retransmission after a slow reply, REL-03): a 271 is not recorded, so each attempt is
    evaluated afresh and refused alike (REL-10); a 272/273 is recorded as entry 1 by the first attempt and
    replayed to the later ones. Set it before each submission: it answers every new one so."""
    when = {"type": type_, "function": function, **({} if reply_function == "271" else {"attempt": 1})}
    return {"name": name, "rules": [{"when": when, "then": {"action": "reply", "function": reply_function,
                                                            "errors": errors}}]}


def every_reply(type_: str, then: dict, name: str, history: list[dict] | None = None) -> dict:
    """Every reply concerning the next submission of ``type_`` altered as ``then`` says: each attempt of it, a
    replay of its entry 1 (the fault alters the text in transit) and the answer to a query about it. A
    retransmission after the DTS timed out on a slow attempt (REL-03), or the query that settles an unknown
    outcome (REL-08), meets the same reply, so whatever reply the DTS acts on is one the case means. Set it
    before each submission."""
    return scenario(name, rule(then, name=name, type_=type_), history=history)


def gateway_certificate(which: str) -> dict:
    """Every reply concerning the next declaration signed by the gateway's ``which`` certificate (``usual``,
    ``renewed`` or ``expired``; SIG-15), the declaration then cleared (35)."""
    name, history = f"gateway-certificate-{which}", [{"function": "35"}]
    if which == "usual":
        return scenario(name, history=history)
    return every_reply("929", {"action": "gateway_certificate", "certificate": which}, name, history)


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


# ------------------------------------------------------------------------------------------
# General builders (any rule of docs/scenarios.md) and the seed failures by name


def rule(then: dict, *, name: str | None = None, times: int | None = None, probability: float | None = None,
         **when) -> dict:
    """One rule: ``when`` conditions as keyword arguments (``type_`` for ``type``), ``then`` an action."""
    data: dict = {"when": {("type" if k == "type_" else k): v for k, v in when.items()}, "then": then}
    if name is not None:
        data["name"] = name
    if times is not None:
        data["times"] = times
    if probability is not None:
        data["probability"] = probability
    return data


def scenario(name: str, *rules: dict, history: list[dict] | None = None, pending_queries: int = 0,
             seed: int | None = None, amend_cancel_history: list[dict] | None = None) -> dict:
    """A whole scenario from rules made with ``rule``."""
    data: dict = {"name": name, "rules": list(rules)}
    if history is not None:
        data["history"] = history
    if amend_cancel_history is not None:
        data["amend_cancel_history"] = amend_cancel_history
    if pending_queries:
        data["pending_queries"] = pending_queries
    if seed is not None:
        data["seed"] = seed
    return data


def slow_reply(type_: str, function: str, seconds: float) -> dict:
    """Seed failure "no reply or a very slow one": the first attempt answered ``seconds`` late."""
    return delay_first_attempt(type_, function, seconds, name="slow-reply")


def overloaded(type_: str, function: str, *, mode: str = "503", retry_after: int = 5, attempts: int = 1) -> dict:
    """Seed failure "overloaded servers" (TRN-08): the first ``attempts`` answered 503 + Retry-After
    (or 271 E9001 with ``mode="E9001"``), not recorded."""
    return scenario("overloaded", rule({"action": "overload", "mode": mode, "retry_after": retry_after},
                                       type_=type_, function=function, times=attempts))


def forged_reply(type_: str, function: str, *, untrusted: bool = False) -> dict:
    """Seed failure "signatures that fail to verify" (SIG-15): the reply to every attempt of ``type_``/
    ``function`` has one character altered after signing, or (``untrusted``) is signed by an impostor key —
    a retransmission after the DTS timed out on a slow attempt (REL-03) meets it too; a query's answer is
    genuine."""
    action = "untrusted_signature" if untrusted else "forge_signature"
    return scenario("forged-reply", rule({"action": action}, type_=type_, function=function))


def lost_reply(type_: str, function: str, *, stage: str = "after_read") -> dict:
    """Seed failure "replies that never arrive": the first attempt is recorded but its connection is
    reset (``before_read``: reset without recording)."""
    return scenario("lost-reply", rule({"action": "reset", "stage": stage}, type_=type_, function=function, attempt=1))


def expired_otp() -> dict:
    """Seed failure "expired OTP" (PAY-06): the first approval finds its OTP expired (273 P0001)."""
    return scenario("expired-otp", rule({"action": "expire_otp"}, type_="702", function="8", times=1))


def out_of_order_history() -> dict:
    """RPL-09: the first query after the receipt is answered with entry 3 (10) before entry 2 (30)."""
    return scenario("out-of-order", rule({"action": "out_of_order"}, function="13", times=1))


def faults_on_attempts(type_: str, function: str, actions: list[dict], *, name: str = "faults-on-attempts",
                       **extra) -> dict:
    """The i-th attempt (1-based) of the given type/function meets ``actions[i-1]``; later ones are served.
    ``extra`` goes to ``scenario`` (history, pending_queries, more rules via ``rules``)."""
    more = extra.pop("rules", ())
    rules = [rule(action, type_=type_, function=function, attempt=i) for i, action in enumerate(actions, 1)]
    return scenario(name, *rules, *more, **extra)


def swallow_every_attempt(type_: str, function: str, *, name: str = "swallow-every-attempt") -> dict:
    """Every attempt of the given type/function is reset before it is read: nothing is ever recorded."""
    return scenario(name, rule({"action": "reset", "stage": "before_read"}, type_=type_, function=function))


def never_processed(*, name: str = "never-processed") -> dict:
    """Customs never gets round to it: every query after the receipt is answered 12 (REL-14)."""
    return scenario(name, pending_queries=10_000)


# ------------------------------------------------------------------------------------------
# Restart, duplicates, warnings, amendments and cancellations (issue 6)


def held_first_attempt(type_: str, function: str, *, name: str = "held-first-attempt") -> dict:
    """The first attempt of the given type/function is recorded but never answered (``hold``): the moment
    to kill the DTS (REL-09). Its retransmission gets the stored entry 1 (REL-10)."""
    return scenario(name, rule({"action": "hold"}, type_=type_, function=function, attempt=1))


def warned(type_: str, warning: dict, *, name: str = "warned") -> dict:
    """RPL-15: the receipt (29) to the first attempt of ``type_``/8 and the declaration number (30) carry
    the W code ``warning`` (``{"code", "description"}``); the rest of the history is the default."""
    history = [{"function": "30", "warnings": [warning]}, {"function": "10", "channel": "1"},
               {"function": "32"}, {"function": "35"}]
    return scenario(name, rule({"action": "warn", "warnings": [warning]}, type_=type_, function="8", attempt=1),
                    history=history)


def duplicated_reply(type_: str, after_sequence: int, history: list[dict], *, name: str = "duplicated-reply") -> dict:
    """RPL-08: the reply to the query with ``after_sequence`` is delivered again to the next query."""
    return scenario(name, rule({"action": "duplicate"}, type_=type_, function="13", after_sequence=after_sequence,
                               times=1), history=history)


def declaration_left_open(type_: str, *, amend_cancel_history: list[dict] | None = None,
                          name: str = "declaration-left-open") -> dict:
    """Amendments and cancellations (DOC-04): the declaration gets its number (30), then the query after it
    is held unanswered — the moment the case kills the DTS, so that its declaration stays recorded with an
    incomplete history. ``amend_cancel_history`` scripts the later replies to an amendment/cancellation."""
    return scenario(name, rule({"action": "hold"}, type_=type_, function="13", after_sequence=2, times=1),
                    history=[{"function": "30"}, {"function": "10", "channel": "1"}, {"function": "32"},
                             {"function": "35"}],
                    amend_cancel_history=amend_cancel_history)


def cleared_at_first_query() -> dict:
    """Customs clears at the first query after the 29, so that each lodge of a case ends quickly."""
    return scenario("cleared-at-first-query", history=[{"function": "35"}])
