"""Operator prompts: the harness asks a question, the operator answers it on the live page.

The manual driver of a GUI-only product needs a person to say what the product showed. In a
terminal it asks on ``/dev/tty``; an operator who watches the browser instead answers here: the
harness posts a prompt (``POST /_control/prompts``), the live page shows the open prompt with a
form, the answer is posted back (``POST /_control/prompts/<id>/answer``) and the harness reads it
(``GET /_control/prompts/<id>``).

Prompts are plain data, validated strictly (unknown keys are refused by name) because a typo in a
prompt must not silently drop the allowed answers. The gateway enforces the deadline and the allowed
answers itself, so what the harness reads is an answer that was valid and on time when it was given;
a late answer is refused rather than quietly accepted, since silence must stay INCONCLUSIVE.
Deadlines are real time (``time.time``), not the session clock: a case may advance that clock, but
the operator's minutes are real.

A prompt without a question is a notice: the page shows its instruction while the harness waits for
something other than an answer (the product's traffic after "lodge it now"), and it takes no answer.
The harness withdraws a prompt it no longer needs; a prompt never outlives its case either:
beginning the session's next case withdraws the open ones, as it releases held connections.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone

PROMPT_KEYS = ("case_id", "name", "question", "instruction", "choices", "pattern", "timeout_s")
ANSWER_KEYS = ("answer", "operator")
NAME = re.compile(r"[a-z][a-z0-9_]{0,39}")
MAX_TIMEOUT_S = 86400.0
_LIMITS = {"case_id": 200, "question": 500, "instruction": 4000, "pattern": 200, "answer": 1000, "operator": 100}
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


class PromptError(ValueError):
    """A prompt or an answer that cannot be taken; ``status`` is the HTTP status to answer with."""

    def __init__(self, message: str, status: int = 400):
        super().__init__(message)
        self.status = status


@dataclass
class Prompt:
    prompt_id: str
    case_id: str
    name: str
    question: str
    instruction: str
    choices: list[str]
    pattern: str | None
    timeout_s: float
    created_at: float
    withdrawn: bool = False
    answer: str | None = None
    operator: str | None = None
    answered_at: float | None = None
    evidence_seq: int | None = None

    @property
    def deadline(self) -> float:
        return self.created_at + self.timeout_s

    def status(self, now: float) -> str:
        if self.answered_at is not None:
            return "answered"
        if self.withdrawn:
            return "withdrawn"
        return "open" if now < self.deadline else "expired"

    def to_json(self, now: float | None = None) -> dict:
        now = time.time() if now is None else now
        return {"prompt_id": self.prompt_id, "case_id": self.case_id, "name": self.name, "question": self.question,
                "instruction": self.instruction, "choices": list(self.choices), "pattern": self.pattern,
                "timeout_s": self.timeout_s, "created_at": _iso(self.created_at), "deadline": _iso(self.deadline),
                "seconds_left": round(max(0.0, self.deadline - now), 3) if self.status(now) == "open" else 0.0,
                "status": self.status(now), "answer": self.answer, "operator": self.operator,
                "answered_at": _iso(self.answered_at) if self.answered_at is not None else None,
                "evidence_seq": self.evidence_seq}

    def check_answer(self, answer: str) -> None:
        """The prompt's own rule: one of ``choices``, else a full match of ``pattern``, else one line."""
        if self.choices and answer not in self.choices:
            raise PromptError(f"answer: {answer!r} is not one of {', '.join(self.choices)}")
        if self.pattern is not None and not re.fullmatch(self.pattern, answer):
            raise PromptError(f"answer: {answer!r} does not match {self.pattern}")


@dataclass
class Prompts:
    """One session's prompts, in the order they were posted."""

    items: dict[str, Prompt] = field(default_factory=dict)
    _next: int = 1

    def create(self, data, forbidden: list[str] = ()) -> Prompt:
        """Validate a posted prompt; ``forbidden`` are texts (passwords) the page must never show."""
        if not isinstance(data, dict):
            raise PromptError(f"body: must be a JSON object with {', '.join(PROMPT_KEYS)}")
        _no_unknown(data, PROMPT_KEYS)
        case_id = _text(data, "case_id", required=True)
        name = data.get("name")
        if not isinstance(name, str) or not NAME.fullmatch(name):
            raise PromptError(f"name: must match {NAME.pattern}, got {name!r}")
        question = _text(data, "question")
        instruction = _text(data, "instruction", multiline=True)
        choices = data.get("choices", [])
        if not isinstance(choices, list) or len(choices) > 50 or not all(
                isinstance(c, str) and 0 < len(c) <= 100 and not _CONTROL.search(c) for c in choices) \
                or len(set(choices)) != len(choices):
            raise PromptError("choices: must be a list of at most 50 distinct one-line strings of 1 to 100 characters")
        pattern = data.get("pattern")
        if pattern is not None:
            pattern = _text(data, "pattern", required=True)
            if choices:
                raise PromptError("pattern: give choices or a pattern, not both")
            try:
                re.compile(pattern)
            except re.error as exc:
                raise PromptError(f"pattern: not a regular expression ({exc})") from None
        if not question and (choices or pattern is not None):
            raise PromptError("question: a notice (no question) takes no choices or pattern")
        timeout_s = data.get("timeout_s")
        if isinstance(timeout_s, bool) or not isinstance(timeout_s, (int, float)) or not 0 < timeout_s <= MAX_TIMEOUT_S:
            raise PromptError(f"timeout_s: must be a number of seconds in (0, {MAX_TIMEOUT_S:g}], got {timeout_s!r}")
        shown = [question, instruction, *choices]
        if any(secret and secret in text for secret in forbidden for text in shown):
            raise PromptError("the prompt's text holds a password; the live page never shows passwords")
        prompt = Prompt(f"p{self._next}", case_id, name, question, instruction, choices, pattern, float(timeout_s),
                        time.time())
        self._next += 1
        self.items[prompt.prompt_id] = prompt
        return prompt

    def get(self, prompt_id: str) -> Prompt:
        try:
            return self.items[prompt_id]
        except KeyError:
            raise PromptError(f"no prompt {prompt_id!r} in this session", status=404) from None

    def answer(self, prompt_id: str, data) -> Prompt:
        """Take the operator's answer if the prompt is open and the answer allowed; the prompt stays
        open after a refused answer, so the operator can correct it (as the terminal asks again)."""
        prompt = self.get(prompt_id)
        if not isinstance(data, dict):
            raise PromptError(f"body: must be a JSON object with {', '.join(ANSWER_KEYS)}")
        _no_unknown(data, ANSWER_KEYS)
        answer = data.get("answer")
        if not isinstance(answer, str):
            raise PromptError(f"answer: must be a string (possibly empty), got {answer!r}")
        answer = _text(data, "answer").strip()
        operator = _text(data, "operator", required=True).strip()
        now = time.time()
        status = prompt.status(now)
        if status == "expired":
            raise PromptError(f"prompt {prompt_id} is closed: its deadline passed at {_iso(prompt.deadline)}", 409)
        if status != "open":
            raise PromptError(f"prompt {prompt_id} is closed: {status}", 409)
        if not prompt.question:
            raise PromptError(f"prompt {prompt_id} is a notice: it takes no answer", 409)
        prompt.check_answer(answer)
        prompt.answer, prompt.operator, prompt.answered_at = answer, operator, now
        return prompt

    def withdraw(self, prompt_id: str) -> Prompt:
        """The harness no longer needs it (a closed prompt stays as it was)."""
        prompt = self.get(prompt_id)
        if prompt.status(time.time()) == "open":
            prompt.withdrawn = True
        return prompt

    def open(self) -> list[Prompt]:
        now = time.time()
        return [p for p in self.items.values() if p.status(now) == "open"]

    def withdraw_open(self) -> None:
        for prompt in self.open():
            prompt.withdrawn = True


def _no_unknown(data: dict, known: tuple[str, ...]) -> None:
    unknown = sorted(set(data) - set(known))
    if unknown:
        raise PromptError(f"unknown key{'s' if len(unknown) > 1 else ''} {', '.join(map(repr, unknown))} "
                          f"(known: {', '.join(known)})")


def _text(data: dict, key: str, *, required: bool = False, multiline: bool = False) -> str:
    value = data.get(key, None if required else "")
    limit = _LIMITS[key]
    if not isinstance(value, str) or (required and not value.strip()) or len(value) > limit:
        raise PromptError(f"{key}: must be a {'non-empty ' if required else ''}string of at most {limit} "
                          f"characters, got {_excerpt(value)}")
    if _CONTROL.search(value.replace("\n", "") if multiline else value):
        raise PromptError(f"{key}: control characters are not allowed{' (except newlines)' if multiline else ''}")
    return value


def _excerpt(value) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")
