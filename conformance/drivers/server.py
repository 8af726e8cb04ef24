"""The command driver's server mode: the product runs as one long-lived process for the whole session.

A JVM or .NET product launched once per action spends most of a run starting up (issue 12). With
``[driver] server = [...]`` the harness starts that command once, writes each request as one JSON line on its
stdin — the HTTP driver's request body (``protocol.action_request``: the action, the document as XML text, the
environment with the passwords) — and reads one JSON line back: the Outcome, or ``{"error": "..."}`` when the
product could not be made to act. One protocol, two transports (docs/drivers.md, "Server mode").

The harness never trusts that process: a request unanswered within the action's timeout, an answer that is not
JSON or a process that ended make a DriverError naming the action and the cause, and the process is killed and
started again at the next request. REL-09's kill is a SIGKILL of its whole process group, as for a command.
Its stderr is kept with the request it belongs to; the requests are kept with the passwords masked.
"""

from __future__ import annotations

import atexit
import collections
import fcntl
import json
import os
import queue
import select
import subprocess
import sys
import termios
import threading
import time
from pathlib import Path
from string import Formatter

from ..sut import SutFile
from .base import Action, DriverError, Environment, Outcome
from .command import CommandDriver, _kill, _template, expand
from .protocol import ACTIONS, action_request, outcome_from_json

SERVER_VALUES = ("python", "sut_dir", "run_dir")   # the placeholders of the server command
STOP_GRACE_S = 5.0     # at the end of the session: how long the process may take to exit after its stdin closes


class ServerDriver(CommandDriver):
    KEYS = CommandDriver.KEYS | {"server"}

    def __init__(self, sut: SutFile):
        super().__init__(sut)
        self.server = _template(sut, "driver.server", sut.driver["server"])
        unknown = sorted({f for part in self.server for _, f, _, _ in Formatter().parse(part) if f} - set(SERVER_VALUES))
        if unknown:   # the process outlives every case; passwords travel in the requests only (SEC-01)
            raise sut.error("driver.server", f"placeholder(s) {', '.join('{' + f + '}' for f in unknown)} not "
                                             f"allowed here (only {', '.join('{' + v + '}' for v in SERVER_VALUES)})")
        self._proc: subprocess.Popen | None = None
        self._answers: queue.Queue | None = None     # the lines of the running process's stdout; None at its end
        self._stderr: dict = {"file": None, "tail": collections.deque(maxlen=3), "lock": threading.Lock()}
        self._run_dir: Path | None = None
        atexit.register(self.close)

    @staticmethod
    def _actions(sut: SutFile) -> tuple[str, ...]:
        offered = [a for a in ACTIONS if a != "kill"]        # kill is the driver's own SIGKILL
        names = sut.driver.get("actions", offered)
        if not isinstance(names, list) or not all(isinstance(n, str) for n in names) or not set(names) <= set(offered):
            raise sut.error("driver.actions", f"with server, a list of the requests the product answers, among "
                                              f"{', '.join(offered)}; found {names!r}")
        return tuple(names)

    @staticmethod
    def _default_journal(sut: SutFile):
        return None                                           # ask the process (a "journal" request)

    def start(self, env: Environment) -> None:
        self.begin(env)
        if self._run_dir is None:
            self._run_dir = env.work_dir.parent
        if "configure" in self.actions:
            self._answer("configure", self._request("configure", Action(kind="configure")))

    def perform(self, action: Action) -> Outcome:
        name = self._offered(action)
        where = f"command driver (server), action {name!r}"
        return outcome_from_json(self._answer(name, self._request(name, action)), action, where)

    def perform_and_kill(self, action: Action, when, *, timeout: float) -> None:
        """REL-09: send the request and SIGKILL the process group once ``when()`` holds; the next request starts
        the product again over its state."""
        self._request(self._offered(action), action, kill_when=(when, timeout))

    def _ask_journal(self) -> list[dict]:
        try:
            events = json.loads(self._answer("journal", self._request("journal", Action(kind="journal"))))
        except ValueError:
            events = None
        if not isinstance(events, list) or not all(isinstance(e, dict) for e in events):
            raise DriverError("command driver (server), journal: the answer must be one JSON array of event objects")
        return events

    def close(self) -> None:
        """End of the session: close the process's stdin (its cue to exit), then kill what is left."""
        proc, self._proc = self._proc, None
        if proc is None or proc.poll() is not None:
            return
        try:
            proc.stdin.close()
            proc.wait(STOP_GRACE_S)
        except (OSError, subprocess.TimeoutExpired):
            _kill(proc)

    # --- one request, one answer ----------------------------------------------------------
    def _request(self, name: str, action: Action, kill_when=None) -> str | None:
        """Write the request line and return the answer line (None once killed at ``kill_when``)."""
        self._count += 1
        evidence = self._env.work_dir / "driver" / f"{self._count:02d}-{name}"
        evidence.parent.mkdir(parents=True, exist_ok=True)
        payload, masked = action_request(self._env, action)
        Path(f"{evidence}.request.json").write_text(json.dumps(masked, ensure_ascii=False, indent=1), encoding="utf-8")
        self._stderr["file"] = Path(f"{evidence}.stderr")
        self._stderr["file"].touch()
        self._stderr["tail"].clear()
        where = f"command driver (server), action {name!r}"
        if self._proc is None or self._proc.poll() is not None:
            self._launch(where)
        proc, answers, shown = self._proc, self._answers, f"request to process {self._proc.pid}"
        started = time.monotonic()
        try:
            proc.stdin.write((json.dumps(payload, ensure_ascii=False) + "\n").encode("utf-8"))
            proc.stdin.flush()
        except OSError:
            pass                                             # it ended: the answer queue says so below
        if kill_when is not None:
            return self._kill_when(answers, *kill_when, where, evidence, shown)
        timeout = self.timeouts.get(name, self.timeout)
        try:
            line = answers.get(timeout=timeout)
        except queue.Empty:
            self._end()
            self._log(evidence, shown, "timeout", time.monotonic() - started)
            raise DriverError(f"{where}: no answer within {timeout:g} s (timeout); the product's process was killed "
                              f"and starts again at the next request (stderr kept in {evidence}.stderr)") from None
        if line is None:
            code = proc.wait()
            self._stderr["thread"].join(1.0)                 # its last words, for the message
            self._end()
            self._log(evidence, shown, f"ended {code}", time.monotonic() - started)
            tail = " | ".join(self._stderr["tail"])
            raise DriverError(f"{where}: the product's process ended (exit code {code}) without answering"
                              f"{': ' + tail if tail else ''} (stderr kept in {evidence}.stderr)")
        self._settle_stderr(proc)
        self._log(evidence, shown, "answered", time.monotonic() - started)
        Path(f"{evidence}.stdout").write_text(line, encoding="utf-8")
        return line

    def _settle_stderr(self, proc, limit: float = 0.25) -> None:
        """A product writes a request's stderr before its answer, but the two pipes are read by two threads:
        wait (briefly) until what it wrote to stderr is in this request's file, not the next one's."""
        deadline = time.monotonic() + limit
        while time.monotonic() < deadline:
            with self._stderr["lock"]:                   # not while a read chunk is being written out
                if _unread(proc.stderr) == 0:
                    return
            time.sleep(0.002)

    def _answer(self, name: str, line: str) -> str:
        """The answer line, unless it is ``{"error": ...}`` or not JSON at all (then the process is out of step
        with the requests, and is started again)."""
        try:
            data = json.loads(line)
        except ValueError:
            self._end()
            return line                                      # outcome_from_json names what was wrong
        if isinstance(data, dict) and set(data) == {"error"}:
            raise DriverError(f"command driver (server), action {name!r}: the product could not act: {data['error']}")
        return line

    def _kill_when(self, answers: queue.Queue, when, timeout: float, where: str, evidence: Path, shown: str) -> None:
        """Kill the process once ``when()`` holds; whatever ends the wait ends the process too (a late answer
        would otherwise come to the next request)."""
        started = time.monotonic()
        try:
            while not when():
                if not answers.empty():
                    what = "ended" if answers.get() is None else "answered"
                    self._log(evidence, shown, what, time.monotonic() - started)
                    raise DriverError(f"{where}: the product {what} before the moment to kill it came")
                if time.monotonic() - started > timeout:
                    self._log(evidence, shown, "killed-timeout", time.monotonic() - started)
                    raise DriverError(f"{where}: the moment to kill it did not come within {timeout:g} s; "
                                      "the product's process was killed")
                time.sleep(0.02)
        finally:
            self._end()
        self._log(evidence, shown, "killed", time.monotonic() - started)

    # --- the process ----------------------------------------------------------------------
    def _launch(self, where: str) -> None:
        values = {"python": sys.executable, "sut_dir": str(self.sut.folder), "run_dir": str(self._run_dir)}
        argv = expand(self.server, values, "driver.server")
        try:   # no passwords in its environment: each request carries the current ones (SEC-01)
            proc = subprocess.Popen(argv, cwd=self.cwd, env=self._child_env({}), stdin=subprocess.PIPE,
                                    stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)
        except OSError as exc:
            raise DriverError(f"{where}: cannot start the product's process {' '.join(argv)}: {exc}") from None
        self._proc, self._answers = proc, queue.Queue()
        _daemon(_read_answers, proc.stdout, self._answers)
        self._stderr["thread"] = _daemon(_keep_stderr, proc.stderr, self._stderr)

    def _end(self) -> None:
        """Kill the process (hung, killed on purpose, or out of step); the next request starts it again."""
        if self._proc is not None:
            _kill(self._proc)
            self._proc = None


def _daemon(target, *args):
    thread = threading.Thread(target=target, args=args, daemon=True, name=f"ecdi-server-{target.__name__}")
    thread.start()
    return thread


def _read_answers(stdout, answers: queue.Queue) -> None:
    for raw in stdout:
        line = raw.decode("utf-8", "replace").strip()
        if line:                                            # a blank line answers nothing
            answers.put(line)
    answers.put(None)


def _keep_stderr(stderr, sink: dict) -> None:
    """Each stderr line goes to the evidence file of the request in flight (the latest one). Bytes are read
    and written out under the lock, so ``_settle_stderr`` finds them either still in the pipe or in a file."""
    fd, rest = stderr.fileno(), b""
    while True:
        select.select([fd], [], [])                       # data or the end, waited for without the lock
        with sink["lock"]:
            try:
                chunk = os.read(fd, 65536)
            except OSError:
                chunk = b""
            if chunk:
                *lines, rest = (rest + chunk).split(b"\n")
            else:                                         # the end: an unterminated last line too
                lines, rest = ([rest] if rest else []), b""
            for raw in lines:
                line = raw.decode("utf-8", "replace")
                sink["tail"].append(line.strip())
                with open(sink["file"], "a", encoding="utf-8") as out:
                    out.write(line + "\n")
        if not chunk:
            return


def _unread(pipe) -> int:
    """Bytes waiting in ``pipe`` (FIONREAD); 0 once it is closed."""
    try:
        return int.from_bytes(fcntl.ioctl(pipe.fileno(), termios.FIONREAD, b"\0\0\0\0"), sys.byteorder)
    except (OSError, ValueError):
        return 0

