"""The ``manual`` driver: a person operates a GUI-only product and tells the harness what it showed.

The harness prints the instruction, watches the gateway for the product's traffic (so the wire
evidence does not depend on the operator), then asks what the product displayed. An answer is
operator-attestation evidence and is kept in ``<work_dir>/operator-attestation.jsonl``. No answer in
time raises DriverInconclusive: silence proves nothing, so it must never turn into a PASS.

Prompts go to a terminal (``console``, default ``/dev/tty``) rather than stdout/stdin, which pytest
captures while the cases run; or, with ``console = "live"``, to the gateway's live page, for an
operator who watches the browser next to the GUI product rather than a terminal. Both consoles ask
the same ``Question``s and the driver validates the answers the same way; only where a line is shown
and read differs.
"""

from __future__ import annotations

import json
import os
import select
import sys
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from ..sut import SutFile
from ..gateway_control import ControlError
from .base import (Action, DriverError, DriverInconclusive, Environment, Outcome, ReportedError,
                   ShownNotification)
from .configured import ConfiguredDriver
from .command import expand
from .protocol import SECRETS, STATES, action_fields, acting_user_fields, environment_fields, parse_journal

_INSTRUCTIONS = {
    "lodge": "Lodge the declaration in {document} (type {type}) with the product now.",
    "amend": "Lodge the amendment in {document} (type {type}, function 5) with the product now.",
    "cancel": "Lodge the cancellation in {document} (type {type}, function 1) with the product now.",
    "query": "Query submission {submission} with the product now.",
    "configure": "Look at the product's settings for this environment: which environment does it show as active?",
    "resume": "Start the product again (it was stopped) and let it finish what it was doing; lodge nothing new.",
    "pay-create": "Logged in as local user {user} (UserId {user_id}), create the payment order in {document} "
                  "with the product now.",
    "pay-approve": "Logged in as local user {user} (UserId {user_id}), approve payment order {submission} with "
                   "the product now, entering OTP {otp}.",
    "request-otp": "Logged in as local user {user} (UserId {user_id}), request a new OTP for payment order "
                   "{submission} with the product now.",
}


LIVE = "live"   # the ``console`` value that puts the questions on the gateway's live page


@dataclass(frozen=True)
class Question:
    """One thing the operator is asked, whichever console asks it; the rule for a valid answer lives
    here so that the terminal and the live page accept exactly the same answers."""

    name: str                          # the attestation's key: "state", "reception_number", ...
    text: str
    choices: tuple[str, ...] = ()      # empty: any one line (blank included)

    @property
    def line(self) -> str:
        """The terminal's prompt line (the live page shows ``text`` and one button per choice)."""
        return f"{self.text} ({', '.join(self.choices)}): " if self.choices else f"{self.text}: "

    def refusal(self, answer: str) -> str | None:
        """Why ``answer`` is not allowed, or None."""
        if self.choices and answer not in self.choices:
            return f"{answer!r} is not one of {', '.join(self.choices)}"
        return None


SETUP = Question("setup", "Press Enter when the product is configured")
STATE = Question("state", "State shown", STATES)
RECEPTION = Question("reception_number", "Reception number shown (blank if none)")
DECLARATION = Question("declaration_number", "Declaration number shown (blank if none)")
ERROR = Question("error", "Error shown as code|field|description (blank line ends)")
ENVIRONMENT = Question("environment", "Environment the product shows as active", ("test", "production", "none"))


class ManualDriver(ConfiguredDriver):
    name = "manual"
    evidence_kind = "operator-attestation"  # every Outcome is what the operator says the product showed
    KEYS = frozenset({"console", "wait_s", "answer_s", "journal", "instructions"})

    def __init__(self, sut: SutFile):
        super().__init__(sut)
        console = sut.driver.get("console", "/dev/tty")
        if not isinstance(console, str) or not console:
            raise sut.error("driver.console", f"must be \"{LIVE}\" or the path of the operator's terminal, "
                                              f"found {console!r}")
        self.console = console
        self.wait_s = sut.seconds("driver.wait_s", sut.driver.get("wait_s", 300))
        self.answer_s = sut.seconds("driver.answer_s", sut.driver.get("answer_s", 300))
        self.journal_template = [sut.driver.get("journal", "{work_dir}/journal.jsonl")]
        own = sut.driver_table("instructions")
        wrong = sorted(k for k, v in own.items() if k not in _INSTRUCTIONS or not isinstance(v, str))
        if wrong:
            raise sut.error("driver.instructions", f"{wrong} are not actions with a text instruction "
                                                   f"({', '.join(_INSTRUCTIONS)})")
        self.instructions = {**_INSTRUCTIONS, **own}
        self.gateway = None
        self._io = _LivePage(self) if console == LIVE else _Terminal(console)

    def attach_gateway(self, gateway_control) -> None:
        """The harness hands over the gateway-control client once the gateway runs."""
        self.gateway = gateway_control
        self._io.attached()

    def start(self, env: Environment) -> None:
        self.begin(env)
        shown = environment_fields(env, secrets=self._io.shows_secrets)
        settings = "\n".join(f"  {k:<15} {v}" for k, v in shown.items() if k != "work_dir")
        for acc in env.accounts[1:]:      # SEC-08: each further local user, with a CGW account of his or her own
            settings += (f"\n  {'local user':<15} {acc.local_user} (UserId {acc.user_id}"
                         + (f", password {acc.password})" if self._io.shows_secrets else ")"))
        if not self._io.shows_secrets:
            settings += f"\n  {'passwords':<15} printed on the terminal running ecdi run, never here"
        self._io.announce_secrets(env)
        # the same case folder again (CaseContext.restart): the user closes and reopens the product, keeping
        # its state (ENV-07 installation id, REL-09 stored messages) — anything else would mislead the operator
        what = ("close the product and open it again, KEEPING its state" if self._count
                else "set the product up with a fresh state")
        self._say(f"\n=== ECDI manual driver, case {self.case_id}: {what} ===\n"
                  f"{settings}\n", new=True)
        self._ask(SETUP)

    @property
    def case_id(self) -> str:
        return self._env.work_dir.name  # the harness gives each case its own work folder, named by id

    def perform(self, action: Action) -> Outcome:
        if self._env is None or self.gateway is None:
            raise DriverError("the manual driver was asked to act before start() or without a gateway")
        self._count += 1
        values = self._values(action)
        name = values["action"]
        instruction = " ".join(expand([self.instructions[name]], values, f"driver.instructions.{name}"))
        self._say(f"\n[{self.case_id}] {instruction}\n", new=True)
        if action.kind == "configure":               # CAP-07: what the product shows, no traffic to wait for
            shown = self._ask(ENVIRONMENT)
            self._attest({"instruction": instruction, "environment": shown})
            return Outcome(action=action.kind, state="accepted", notifications=[] if shown == "none" else [
                ShownNotification("info", None, f"the operator saw the {shown} environment shown as active")])
        seen = self._wait_for_traffic(action)
        self._say(f"[{self.case_id}] the gateway saw {seen} request(s) of type {action.type}; "
                  "answer when the product shows its result.\n")
        state = self._ask(STATE)
        reception = self._ask(RECEPTION)
        declaration = self._ask(DECLARATION)
        errors = []
        while line := self._ask(ERROR):
            code, _, rest = line.partition("|")
            field, _, description = rest.partition("|")
            errors.append(ReportedError(code.strip(), field.strip(), description.strip()))
        self._attest({"instruction": instruction, "traffic_seen": seen, "state": state, "reception_number": reception,
                      "declaration_number": declaration, "errors": [vars(e) for e in errors]})
        return Outcome(action=action.kind, state=state, reception_number=reception or None,
                       declaration_number=declaration or None, errors=errors)

    def journal(self) -> list[dict]:
        """SEC-06: the operator exports the journal to a file the SUT file names."""
        if self._env is None:
            return []
        path = Path(expand(self.journal_template, self._values(Action(kind="journal")), "driver.journal")[0])
        if not path.is_file():
            self._ask(Question("journal", f"Export the product's journal (SEC-06) to {path} and press Enter"))
        if not path.is_file():
            raise DriverInconclusive(f"manual driver: no journal export at {path}")
        return parse_journal(path.read_text(encoding="utf-8"), f"journal file {path}")

    # --- the operator: what every console shares ------------------------------------------------
    def _values(self, action: Action) -> dict:
        values = {**environment_fields(self._env, secrets=False), **dict.fromkeys(("document", "type", "submission", "otp"))}
        values.update(action_fields(action) if action.kind != "journal" else {"action": "journal"})
        if action.kind != "journal":                 # SEC-08: who acts (never the password: it was printed)
            acting = acting_user_fields(self._env, action.user)
            values.update(user=acting["user"], user_id=acting["user_id"])
        if action.document is not None:
            document = self._env.work_dir / "driver" / f"{self._count:02d}-{values['action']}.xml"
            document.parent.mkdir(parents=True, exist_ok=True)
            document.write_bytes(action.document)
            values["document"] = str(document)
        return values

    def _wait_for_traffic(self, action: Action) -> int:
        deadline = time.monotonic() + self.wait_s
        while True:
            seen = [e for e in self.gateway.exchanges(self.case_id)
                    if e.type == action.type and (action.kind != "lodge" or e.function == action.function)]
            if seen or time.monotonic() >= deadline:
                return len(seen)
            time.sleep(0.2)

    def _say(self, text: str, *, new: bool = False) -> None:
        """Tell the operator something; ``new`` starts a new context (a case's set-up, an instruction)."""
        self._io.say(text, new=new)

    def _ask(self, question: Question) -> str:
        """One valid answer; an invalid one is refused and asked again; DriverInconclusive when none
        comes within ``answer_s`` of the first asking."""
        deadline = time.monotonic() + self.answer_s
        while True:
            answer = self._io.read(question, deadline)
            if answer is None:
                self._attest({"question": question.name, "answer": None})
                raise DriverInconclusive(f"manual driver: the operator gave no answer to {question.name!r} "
                                         f"within {self.answer_s:g} s")
            problem = question.refusal(answer)
            if problem is None:
                return answer
            self._io.refuse(problem)

    def _attest(self, entry: dict) -> None:
        entry = {"time": datetime.now(timezone.utc).isoformat(timespec="seconds"), "case": self.case_id, **entry,
                 **self._io.attribution()}
        with open(self._env.work_dir / "operator-attestation.jsonl", "a", encoding="utf-8") as fh:
            fh.write(json.dumps(entry, ensure_ascii=False) + "\n")


class _Terminal:
    """The operator's terminal (``console``: a tty path, default ``/dev/tty``)."""

    shows_secrets = True          # the terminal is the operator's own screen, never a log (SEC-01/02)

    def __init__(self, path: str):
        self.path = path

    def attached(self) -> None:
        pass

    def announce_secrets(self, env: Environment) -> None:
        pass                      # they are part of the settings printed on the terminal

    def attribution(self) -> dict:
        return {}

    def _open(self) -> int:
        try:
            return os.open(self.path, os.O_RDWR | os.O_NOCTTY)
        except OSError as exc:
            raise DriverError(f"manual driver: cannot open the operator's terminal {self.path}: {exc.strerror}") from None

    def say(self, text: str, *, new: bool = False) -> None:
        fd = self._open()
        try:
            os.write(fd, text.encode("utf-8"))
        finally:
            os.close(fd)

    def refuse(self, problem: str) -> None:
        self.say(f"  {problem}\n")

    def read(self, question: Question, deadline: float) -> str | None:
        fd = self._open()
        try:
            os.write(fd, question.line.encode("utf-8"))
            return _readline(fd, deadline)
        finally:
            os.close(fd)


class _LivePage:
    """The gateway's live page (``console = "live"``): each question is a prompt of the control API
    that the operator answers in the browser, and what the terminal would print meanwhile (an
    instruction while the harness waits for the product's traffic) is a notice, a prompt without a
    question. The gateway enforces the prompt's deadline and choices and records each accepted answer
    as an evidence row; this side keeps who answered for the attestation file. Passwords never go to
    the page: they are printed once on the stderr of ``ecdi run`` (kept from before pytest captures
    it), which the person who started the run sees."""

    shows_secrets = False
    POLL_S = 0.25
    GRACE_S = 5.0                 # the gateway closes the prompt at its deadline; this only bounds a lost reply

    def __init__(self, driver: ManualDriver):
        self.driver = driver
        self.context: list[str] = []
        self.answers: list[dict] = []
        self.notice: str | None = None
        self._stderr: int | None = None
        self._announced: tuple | None = None

    def attached(self) -> None:
        try:
            self._stderr = os.dup(sys.__stderr__.fileno())
        except (OSError, AttributeError, ValueError):
            self._stderr = None
        self._tell(f"ECDI manual driver: answer the operator's questions on the gateway's live page\n"
                   f"  {self.driver.gateway.live_page_url()}\n"
                   "  (served with the session's test TLS certificate: accept the browser's warning or import tls_ca)\n")

    def announce_secrets(self, env: Environment) -> None:
        secrets = tuple(environment_fields(env, secrets=True)[k] for k in SECRETS)
        others = tuple((f"password of {a.local_user}", a.password) for a in env.accounts[1:])   # SEC-08
        if secrets != self._announced:
            self._announced = secrets
            self._tell("ECDI manual driver: the passwords for the product (never shown on the live page):\n"
                       + "".join(f"  {k:<15} {v}\n" for k, v in (*zip(SECRETS, secrets), *others)))

    def _tell(self, text: str) -> None:
        if self._stderr is not None:
            try:
                os.write(self._stderr, text.encode("utf-8"))
            except OSError:
                pass

    def say(self, text: str, *, new: bool = False) -> None:
        if new:
            self.context = []
        self.context.append(text.strip("\n"))
        self._control(self._post_notice)

    def refuse(self, problem: str) -> None:
        self.context.append(f"  {problem}")

    def attribution(self) -> dict:
        answers, self.answers = self.answers, []
        return {"console": LIVE, "answers": answers}

    def read(self, question: Question, deadline: float) -> str | None:
        return self._control(self._read, question, deadline)

    def _post_notice(self) -> None:
        self._withdraw_notice()
        d = self.driver
        self.notice = d.gateway.post_prompt(d.case_id, "notice", "", instruction="\n".join(self.context),
                                            timeout_s=d.wait_s + d.answer_s)["prompt_id"]

    def _withdraw_notice(self) -> None:
        if self.notice is not None:
            self.driver.gateway.withdraw_prompt(self.notice)
            self.notice = None

    def _read(self, question: Question, deadline: float) -> str | None:
        self._withdraw_notice()
        left = deadline - time.monotonic()
        if left <= 0:
            return None
        d = self.driver
        prompt = d.gateway.post_prompt(d.case_id, question.name, question.text, instruction="\n".join(self.context),
                                       choices=question.choices, timeout_s=round(left, 3))
        while True:
            if prompt["status"] == "answered":
                self.answers.append({k: prompt[k] for k in ("prompt_id", "answer", "operator", "answered_at",
                                                            "evidence_seq")} | {"question": question.name})
                return prompt["answer"]
            if prompt["status"] != "open" or time.monotonic() > deadline + self.GRACE_S:
                return None
            time.sleep(self.POLL_S)
            prompt = d.gateway.prompt(prompt["prompt_id"])

    def _control(self, call, *args):
        """A control-API call; its failure is a DriverError naming it (the case is ERROR, the run goes on)."""
        if self.driver.gateway is None:
            raise DriverError('manual driver: console = "live" needs the gateway\'s live page, and no gateway '
                              "was attached")
        try:
            return call(*args)
        except ControlError as exc:
            raise DriverError(f"manual driver: the live page's prompt failed: {exc}") from None


def _readline(fd: int, deadline: float) -> str | None:
    data = b""
    while not data.endswith(b"\n"):
        left = deadline - time.monotonic()
        if left <= 0 or not select.select([fd], [], [], left)[0]:
            return None
        chunk = os.read(fd, 4096)
        if not chunk:
            return None
        data += chunk
    return data.decode("utf-8", "replace").strip()
