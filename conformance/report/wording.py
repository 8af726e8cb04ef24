"""Findings and exchanges in words for the HTML report: a vendor's developer reads sentences and code
names, not Python reprs and bare ECDI codes. Code names come from the run's profile (codes.toml)."""

from __future__ import annotations

import ast
import re
from datetime import datetime, timezone

_QUOTED = re.compile(r"(?<![\w'])'([^'\\\n]*)'(?![\w'])")
_SEQ_IN_TEXT = re.compile(r"#(\d+)\b")
_RESULT_CODE = re.compile(r"\b[A-Z]\d{4}\b")


def words(value) -> str:
    """A Python value as a reader would write it: lists comma-separated, an empty one "none"."""
    if isinstance(value, str):
        return value
    if value is None:
        return "none"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, dict):
        return "; ".join(f"{words(k)}: {words(v)}" for k, v in value.items()) if value else "none"
    if isinstance(value, tuple):
        return " ".join(words(v) for v in value if v not in ([], (), None, "")) or "none"
    if isinstance(value, (list, set, frozenset)):
        return ", ".join(words(v) for v in value) if value else "none"
    return str(value)


def _literal_spans(text: str):
    """(start, end) of every balanced [...] or {...} span, outermost only."""
    depth, start = 0, None
    for i, ch in enumerate(text):
        if ch in "[{":
            if depth == 0:
                start = i
            depth += 1
        elif ch in "]}" and depth:
            depth -= 1
            if depth == 0:
                yield start, i + 1


def readable(message: str) -> str:
    """``message`` with the Python reprs a check embedded (``['X0001']``, ``'rejected'``) in words."""
    out, last = [], 0
    for start, end in _literal_spans(message):
        try:
            value = ast.literal_eval(message[start:end])
        except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
            continue
        out += [message[last:start], words(value)]
        last = end
    text = "".join(out) + message[last:]
    return _QUOTED.sub(lambda m: f"“{m.group(1)}”", text)


def exchange_refs(finding) -> list[int]:
    """The exchange seqs a finding names: ``detail["exchange"]``/``["exchanges"]`` and "#N" in its message."""
    detail = finding.detail if isinstance(finding.detail, dict) else {}
    found = [detail.get("exchange")]
    listed = detail.get("exchanges")
    found += listed if isinstance(listed, list) else []
    found += [int(n) for n in _SEQ_IN_TEXT.findall(finding.message)]
    return list(dict.fromkeys(n for n in found if isinstance(n, int) and not isinstance(n, bool)))


def _short(meaning: str) -> str:
    return meaning.split(" (")[0]


def code_name(profile, kind: str, code) -> str:
    """``code`` followed by its meaning in the profile's code list (kind: message_type, function_request,
    function_reply, result), or the bare code where the profile does not list it."""
    if code is None or code == "":
        return "none"
    if profile is None:
        return str(code)
    if kind == "result":
        entry = profile.result_codes.get(str(code))
        meaning = entry.meaning if entry else None
    else:
        meaning = profile.codes.get(kind, {}).get(str(code))
    return f"{code} ({_short(meaning)})" if meaning else f"{code} (not a code of {profile.id})"


def codes_named(text: str, profile) -> list[str]:
    """The profile's result codes that ``text`` mentions, each with its meaning (§5.3)."""
    if profile is None:
        return []
    found = dict.fromkeys(c for c in _RESULT_CODE.findall(text) if c in profile.result_codes)
    return [code_name(profile, "result", c) for c in found]


def clock(epoch: float | None) -> str:
    if epoch is None:
        return "—"
    return datetime.fromtimestamp(epoch, timezone.utc).strftime("%H:%M:%S.%f")[:-3]


def request_words(ex, profile) -> str:
    if ex.type is None and ex.function is None:
        return f"{ex.method} {ex.path} (not an ECDI message the gateway could read)"
    return (f"{ex.method} {ex.path}: type {code_name(profile, 'message_type', ex.type)}, function "
            f"{code_name(profile, 'function_request', ex.function)}, attempt {ex.attempt}")


def reply_words(ex, profile) -> str:
    if ex.response_status is None:
        if ex.connection_closed_at is not None:
            return "no response: the DTS closed the connection before the gateway answered"
        return "no response recorded (held back by the scenario, or still in flight)"
    out = f"HTTP {ex.response_status}"
    if ex.reply_function:
        out += f", reply function {code_name(profile, 'function_reply', ex.reply_function)}"
    if ex.reply_codes:
        out += ", codes " + ", ".join(code_name(profile, "result", c) for c in ex.reply_codes)
    return out


def exchange_line(ex, profile) -> str:
    """One exchange in a sentence: when, what was asked, what the gateway answered."""
    return f"#{ex.seq} at {clock(ex.received_at)} UTC: {request_words(ex, profile)} → {reply_words(ex, profile)}"
