"""The ``command`` driver: each user action is a command line of the vendor's product or glue.

A product only has to offer a command line per action (``sut.toml`` ``[driver.actions]``), read
its settings from placeholders, and print one Outcome JSON object (docs/drivers.md). The harness
never trusts that program: it runs in its own process group with a per-action timeout, its stdout
and stderr are kept in the case's work folder as evidence, and a non-zero exit, a hang or output
that is not the Outcome schema becomes a DriverError naming the action and the cause — an ERROR
verdict for that case only, never a crash of the session.

Passwords (SEC-01, SEC-02) reach the program in the environment variables ``ECDI_PASSWORD`` and
``ECDI_P12_PASSWORD``, not in argv (visible to every local user in the process list) nor on disk.
``{password}`` and ``{p12_password}`` placeholders exist for products that accept nothing else;
they are masked in the evidence the harness writes.

A product slow to start (a JVM) is better run once for the session: ``[driver] server`` (``server.py``).
"""

from __future__ import annotations

import functools
import json
import os
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path
from string import Formatter

from ..sut import SutFile
from .base import Action, DriverError, DriverInconclusive, Environment, Outcome
from .configured import ConfiguredDriver
from .protocol import (ACTIONS, SECRETS, action_fields, acting_user_fields, environment_fields, outcome_from_json,
                       parse_journal)

DEFAULT_TIMEOUT_S = 300.0


class CommandDriver(ConfiguredDriver):
    name = "command"
    KEYS = frozenset({"actions", "timeout_s", "timeouts", "cwd", "env", "journal", "journal_file"})

    def __init__(self, sut: SutFile):
        super().__init__(sut)
        settings = sut.driver
        self.actions = self._actions(sut)
        self.timeout, self.timeouts = sut.timeouts(DEFAULT_TIMEOUT_S)
        self.cwd = sut.resolve(settings.get("cwd", "."))
        self.extra_env = {k: str(v) for k, v in sut.driver_table("env").items()}
        journal = settings.get("journal", self._default_journal(sut))
        self.journal_template = None if journal is None else _template(sut, "driver.journal", journal)
        self.journal_file = settings.get("journal_file")
        if self.journal_file is not None and not (isinstance(self.journal_file, str) and self.journal_file.strip()):
            raise sut.error("driver.journal_file", f"must be a file path, found {self.journal_file!r}")

    @staticmethod
    def _actions(sut: SutFile) -> dict[str, list[str]]:
        actions = {name: _template(sut, f"driver.actions.{name}", argv)
                   for name, argv in sut.driver_table("actions").items()}
        unknown = sorted(set(actions) - set(ACTIONS))
        if unknown:
            raise sut.error("driver.actions", f"unknown action(s) {unknown}; actions: {', '.join(ACTIONS)}")
        return actions

    @staticmethod
    def _default_journal(sut: SutFile):
        return sut.statement["pixit"]["journal_export"]

    def start(self, env: Environment) -> None:
        self.begin(env)
        if "configure" in self.actions:
            self._run("configure", Action(kind="configure"))

    def perform(self, action: Action) -> Outcome:
        name = self._offered(action)
        stdout = self._run(name, action)
        return outcome_from_json(stdout, action, f"command driver, action {name!r}")

    def offers(self, action_name: str) -> bool:
        """Whether ``sut.toml`` gives the product a way to perform the user action ``action_name``."""
        return action_name in self.actions

    def perform_and_kill(self, action: Action, when, *, timeout: float) -> None:
        """REL-09: run the action's command and kill its whole process group (SIGKILL, no chance to clean
        up) once ``when()`` holds; the next action (``resume``) starts the product again."""
        self._run(self._offered(action), action, kill_when=(when, timeout))

    def _offered(self, action: Action) -> str:
        """The user action's name, once sure the product offers it. Without ``resume`` nothing can be judged
        (REL-09 needs the product, started again over its state, to finish what it was doing): INCONCLUSIVE."""
        if self._env is None:
            raise DriverError("the command driver was asked to act before start()")
        name = action_fields(action)["action"]
        if name in self.actions:
            return name
        where = f"{self.sut.path}: [driver] actions offer no {name!r}"
        if name == "resume":
            raise DriverInconclusive(f"{where}; REL-09 needs the product started again over its state to finish the "
                                     "send operation a crash cut short (docs/drivers.md, 'resume')")
        raise DriverError(where)

    def journal(self) -> list[dict]:
        """SEC-06 export: ``journal_file`` (read; absent means nothing journalled yet), else the ``journal``
        template (default ``pixit.journal_export``), which names a file (read) or a command (run)."""
        if self._env is None:
            return []
        if self.journal_file is not None:
            path = Path(expand([self.journal_file], self._values(Action(kind="journal")), "driver.journal_file")[0])
            text = path.read_text(encoding="utf-8") if path.is_file() else ""
            return parse_journal(text, f"journal file {path}")
        if self.journal_template is None:
            return self._ask_journal()
        argv = expand(self.journal_template, self._values(Action(kind="journal")), "driver.journal")
        if len(argv) == 1 and Path(argv[0]).is_file():
            return parse_journal(Path(argv[0]).read_text(encoding="utf-8"), f"journal file {argv[0]}")
        return parse_journal(self._run("journal", Action(kind="journal"), argv=argv), "command driver, journal")

    # --- running one command -------------------------------------------------------------
    def _values(self, action: Action, document: Path | None = None) -> dict[str, str | None]:
        values = {**environment_fields(self._env, secrets=True),
                  **dict.fromkeys(("type", "function", "business_ref", "submission", "otp", "user"))}
        values.update(action_fields(action) if action.kind not in ("configure", "journal") else {"action": action.kind})
        values.update(acting_user_fields(self._env, action.user))         # SEC-08: the acting user's own account
        values.update(document=str(document) if document else None, python=sys.executable,
                      sut_dir=str(self.sut.folder))
        return values

    def _run(self, name: str, action: Action, argv: list[str] | None = None, kill_when=None) -> str:
        env = self._env
        self._count += 1
        evidence = env.work_dir / "driver" / f"{self._count:02d}-{name}"
        evidence.parent.mkdir(parents=True, exist_ok=True)
        document = None
        if action.document is not None:
            document = evidence.with_suffix(".xml")
            document.write_bytes(action.document)
        values = self._values(action, document)
        if argv is None:
            argv = expand(self.actions[name], values, f"driver.actions.{name}")
        request = {k: values[k] for k in ("action", "type", "function", "business_ref", "submission", "otp",
                                          "user", "document") if k in values}
        child_env = self._child_env({var: values[k] for k, var in SECRETS.items()})
        timeout = self.timeouts.get(name, self.timeout)
        shown = _masked(argv, [values[k] for k in SECRETS])
        started = time.monotonic()
        with open(f"{evidence}.stdout", "w+b") as out, open(f"{evidence}.stderr", "w+b") as err:
            try:
                proc = subprocess.Popen(argv, cwd=self.cwd, env=child_env, stdin=subprocess.PIPE, stdout=out,
                                        stderr=err, start_new_session=True)
            except OSError as exc:
                raise DriverError(f"command driver, action {name!r}: cannot start {shown}: {exc}") from None
            if kill_when is not None:                      # REL-09: killed mid-action, never a result
                return self._kill_when(proc, json.dumps(request).encode(), *kill_when, name, evidence, shown)
            try:
                proc.communicate(json.dumps(request).encode(), timeout=timeout)
            except subprocess.TimeoutExpired:
                _kill(proc)
                self._log(evidence, shown, "timeout", time.monotonic() - started)
                raise DriverError(f"command driver, action {name!r}: no result within {timeout:g} s "
                                  f"(timeout); the command was killed: {shown}") from None
            self._log(evidence, shown, proc.returncode, time.monotonic() - started)
            out.seek(0)
            err.seek(0)
            stdout, stderr = out.read(), err.read().decode("utf-8", "replace")
        if proc.returncode != 0:
            tail = stderr.strip().splitlines()[-3:]
            raise DriverError(f"command driver, action {name!r}: exit code {proc.returncode} from {shown}"
                              f"{': ' + ' | '.join(tail) if tail else ''} (stderr kept in {evidence}.stderr)")
        return stdout.decode("utf-8", "replace")

    def _kill_when(self, proc, stdin: bytes, when, timeout: float, name: str, evidence: Path, shown: str) -> str:
        started = time.monotonic()
        try:
            proc.stdin.write(stdin)
            proc.stdin.close()
        except OSError:
            pass
        while not when():
            if proc.poll() is not None:
                self._log(evidence, shown, proc.returncode, time.monotonic() - started)
                raise DriverError(f"command driver, action {name!r}: the command ended (exit code {proc.returncode}) "
                                  "before the moment to kill it came")
            if time.monotonic() - started > timeout:
                _kill(proc)
                self._log(evidence, shown, "killed-timeout", time.monotonic() - started)
                raise DriverError(f"command driver, action {name!r}: the moment to kill it did not come within "
                                  f"{timeout:g} s; the command was killed")
            time.sleep(0.02)
        _kill(proc)
        self._log(evidence, shown, "killed", time.monotonic() - started)
        return ""

    def _child_env(self, secrets: dict[str, str]) -> dict[str, str]:
        """The environment of the product's processes: ours, the UI locale (TXT-06: vi-VN), ``[driver.env]``."""
        return {**os.environ, **posix_locale(self._env.ui_locale), **self.extra_env, **secrets}

    def _ask_journal(self) -> list[dict]:
        raise DriverError(f"{self.sut.path}: no way to export the journal: set [driver] journal_file or journal")

    @staticmethod
    def _log(evidence: Path, shown: str, status, seconds: float) -> None:
        with open(evidence.parent / "commands.log", "a", encoding="utf-8") as log:
            log.write(f"{evidence.name}\t{status}\t{seconds:.3f}s\t{shown}\n")


def expand(template: list[str], values: dict[str, str | None], where: str) -> list[str]:
    """Fill ``{placeholder}`` in each argv element. An unknown one is the SUT file's fault; one without a value
    for this action (``{submission}`` in a lodge) is the empty string, so one template serves every action."""
    filled = {k: "" if v is None else v for k, v in values.items()}
    out = []
    for part in template:
        for _, field, _, _ in Formatter().parse(part):
            if field is not None and field not in values:
                raise DriverError(f"{where}: unknown placeholder {{{field}}} (see docs/drivers.md)")
        out.append(part.format_map(filled))
    return out


def _template(sut: SutFile, key: str, value) -> list[str]:
    """An argv array, or a string split like a POSIX shell would (no shell is ever run)."""
    if isinstance(value, str):
        try:
            value = shlex.split(value)
        except ValueError as exc:
            raise sut.error(key, f"cannot be split into arguments: {exc}") from None
    if not isinstance(value, list) or not value or not all(isinstance(v, str) for v in value):
        raise sut.error(key, f"must be a command line (string or array of strings), found {value!r}")
    return value


def _masked(argv: list[str], secrets: list[str | None]) -> str:
    text = shlex.join(argv)
    for secret in secrets:
        if secret:
            text = text.replace(secret, "***")
    return text


def _kill(proc: subprocess.Popen) -> None:
    """Kill the whole process group the command started (a wrapper script's children included)."""
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    proc.wait()


def posix_locale(tag: str) -> dict[str, str]:
    """``LANG``/``LC_ALL`` for a BCP 47 locale tag (``vi-VN`` → ``vi_VN.UTF-8``): the locale the product's
    process runs with (TXT-06: numbers and dates on the wire must not follow it). Set only where this machine
    has that locale: an unknown one makes the C library fall back to "C" with an ASCII code set, which would
    test something else (the ``{ui_locale}`` placeholder carries the tag in any case)."""
    if not tag:
        return {}
    name = tag.replace("-", "_") + ".UTF-8"
    if _locale_key(name) not in _installed_locales():
        return {}
    return {"LANG": name, "LC_ALL": name}


def _locale_key(name: str) -> str:
    return name.lower().replace("-", "")


@functools.cache
def _installed_locales() -> frozenset[str]:
    try:
        listed = subprocess.run(["locale", "-a"], capture_output=True, text=True, timeout=10).stdout
    except (OSError, subprocess.SubprocessError):
        return frozenset()
    return frozenset(_locale_key(line.strip()) for line in listed.splitlines())
