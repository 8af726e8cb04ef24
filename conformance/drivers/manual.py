"""The ``manual`` driver: a person operates a GUI-only product and tells the harness what it showed.

The harness prints the instruction, watches the gateway for the product's traffic (so the wire
evidence does not depend on the operator), then asks what the product displayed. An answer is
operator-attestation evidence and is kept in ``<work_dir>/operator-attestation.jsonl``. No answer in
time raises DriverInconclusive: silence proves nothing, so it must never turn into a PASS.

Prompts go to a terminal (``console``, default ``/dev/tty``) rather than stdout/stdin, which pytest
captures while the cases run.
"""

from __future__ import annotations

import json
import os
import select
import time
from datetime import datetime, timezone
from pathlib import Path

from ..sut import SutFile
from .base import Action, DriverError, DriverInconclusive, Environment, Outcome, ReportedError
from .configured import ConfiguredDriver
from .command import expand
from .protocol import STATES, action_fields, environment_fields, parse_journal

_INSTRUCTIONS = {
    "lodge": "Lodge the declaration in {document} (type {type}) with the product now.",
    "amend": "Lodge the amendment in {document} (type {type}, function 5) with the product now.",
    "cancel": "Lodge the cancellation in {document} (type {type}, function 1) with the product now.",
    "query": "Query submission {submission} with the product now.",
    "pay-create": "Create the payment order in {document} with the product now.",
    "pay-approve": "Approve the payment order in {document} with the product now, entering OTP {otp}.",
    "request-otp": "Request a new OTP for the payment order in {document} with the product now.",
}


class ManualDriver(ConfiguredDriver):
    name = "manual"
    evidence_kind = "operator-attestation"  # every Outcome is what the operator says the product showed
    KEYS = frozenset({"console", "wait_s", "answer_s", "journal", "instructions"})

    def __init__(self, sut: SutFile):
        super().__init__(sut)
        self.console = sut.driver.get("console", "/dev/tty")
        if not isinstance(self.console, str) or not self.console:
            raise sut.error("driver.console", f"must be the path of the operator's terminal, found {self.console!r}")
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

    def attach_gateway(self, gateway_control) -> None:
        """The harness hands over the gateway-control client once the gateway runs."""
        self.gateway = gateway_control

    def start(self, env: Environment) -> None:
        self.begin(env)
        settings = "\n".join(f"  {k:<15} {v}" for k, v in environment_fields(env, secrets=True).items()
                             if k != "work_dir")
        self._say(f"\n=== ECDI manual driver, case {self.case_id}: set the product up with a fresh state ===\n"
                  f"{settings}\n")
        self._ask("setup", "Press Enter when the product is configured: ")

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
        self._say(f"\n[{self.case_id}] {instruction}\n")
        seen = self._wait_for_traffic(action)
        self._say(f"[{self.case_id}] the gateway saw {seen} request(s) of type {action.type}; "
                  "answer when the product shows its result.\n")
        state = self._ask("state", f"State shown ({', '.join(STATES)}): ", valid=STATES)
        reception = self._ask("reception_number", "Reception number shown (blank if none): ")
        declaration = self._ask("declaration_number", "Declaration number shown (blank if none): ")
        errors = []
        while line := self._ask("error", "Error shown as code|field|description (blank line ends): "):
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
            self._ask("journal", f"Export the product's journal (SEC-06) to {path} and press Enter: ")
        if not path.is_file():
            raise DriverInconclusive(f"manual driver: no journal export at {path}")
        return parse_journal(path.read_text(encoding="utf-8"), f"journal file {path}")

    # --- the operator's terminal ---------------------------------------------------------
    def _values(self, action: Action) -> dict:
        values = {**environment_fields(self._env, secrets=False), **dict.fromkeys(("document", "type", "submission", "otp"))}
        values.update(action_fields(action) if action.kind != "journal" else {"action": "journal"})
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

    def _open(self) -> int:
        try:
            return os.open(self.console, os.O_RDWR | os.O_NOCTTY)
        except OSError as exc:
            raise DriverError(f"manual driver: cannot open the operator's terminal {self.console}: {exc.strerror}") from None

    def _say(self, text: str) -> None:
        fd = self._open()
        try:
            os.write(fd, text.encode("utf-8"))
        finally:
            os.close(fd)

    def _ask(self, question: str, prompt: str, valid: tuple[str, ...] = ()) -> str:
        """One answer line; re-asks an invalid one; DriverInconclusive when none comes in time."""
        deadline = time.monotonic() + self.answer_s
        fd = self._open()
        try:
            while True:
                os.write(fd, prompt.encode("utf-8"))
                line = _readline(fd, deadline)
                if line is None:
                    self._attest({"question": question, "answer": None})
                    raise DriverInconclusive(f"manual driver: the operator gave no answer to {question!r} "
                                             f"within {self.answer_s:g} s")
                if not valid or line in valid:
                    return line
                os.write(fd, f"  {line!r} is not one of {', '.join(valid)}\n".encode("utf-8"))
        finally:
            os.close(fd)

    def _attest(self, entry: dict) -> None:
        entry = {"time": datetime.now(timezone.utc).isoformat(timespec="seconds"), "case": self.case_id, **entry}
        with open(self._env.work_dir / "operator-attestation.jsonl", "a", encoding="utf-8") as fh:
            fh.write(json.dumps(entry, ensure_ascii=False) + "\n")


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
