"""Console progress of a long command (``ecdi run``, ``ecdi mutants --score``, the benchmarks).

A person watching a run of many minutes must see that it lives: how many items are done of how many, which
are running now and what each waits for, elapsed and estimated time left, verdicts as they land. Three calls
feed it, whoever runs the items and however many run at once: ``start(item)``, ``waiting(item, seconds,
what)``, ``finished(item, verdict)``; a fourth, ``ended(item, seconds)``, where an item's work ends before its
verdict is shown (``ecdi run --jobs``: a case ends on its lane, and is reported in catalogue order later).

On a terminal it is one live panel drawn by ``rich`` on stderr; elsewhere (a CI log, a pipe) it is plain lines,
one per verdict and one per long wait, so a log shows the same facts without control codes. Stdout is left
to the command's own result.

A case deep inside the harness tells the progress of its process what it waits for through ``notify_waiting``
(the active progress of this process, if any): ``CaseContext`` does, before it asks the DTS to act. The lanes
of ``ecdi run`` say when a case starts and ends on one through ``notify_started`` and ``notify_ended``: the
pytest hooks of the controlling process see a case only once its lane is done with it.
"""

from __future__ import annotations

import os
import sys
import threading
import time
from collections import Counter
from dataclasses import dataclass, field

import pytest

MODES = ("auto", "live", "plain", "off")
LONG_WAIT_S = 2.0          # plain lines: a wait announced only when it is worth noticing

_ACTIVE: "Progress | None" = None


def notify_waiting(item: str, seconds: float | None, what: str) -> None:
    """``item`` now waits ``seconds`` (None: for as long as it takes) for ``what``; shown by this process's
    active progress, if there is one."""
    if _ACTIVE is not None:
        _ACTIVE.waiting(item, seconds, what)


def notify_started(item: str) -> None:
    """``item`` starts now (on a lane of ``ecdi run``)."""
    if _ACTIVE is not None:
        _ACTIVE.start(item)


def notify_ended(item: str, seconds: float) -> None:
    """``item``'s work ended after ``seconds``; its verdict is shown later (``Progress.finished``)."""
    if _ACTIVE is not None:
        _ACTIVE.ended(item, seconds)


def clock_text(seconds: float) -> str:
    seconds = max(0, int(round(seconds)))
    hours, rest = divmod(seconds, 3600)
    return f"{hours}:{rest // 60:02d}:{rest % 60:02d}" if hours else f"{rest // 60}:{rest % 60:02d}"


@dataclass
class _Running:
    started: float
    wait_until: float | None = None
    what: str = ""


@dataclass
class Progress:
    """Progress of ``total`` items called ``noun`` (cases, mutants). ``clock`` is injectable for tests."""

    total: int
    noun: str = "cases"
    mode: str = "auto"
    stream: object = None
    clock: object = time.monotonic
    # the command's own stdout lines printed above the live panel (not under pytest, which holds stdout itself)
    redirect_stdout: bool = True
    echo: bool = True          # on a terminal, a line per finished item (False: the command prints its own)
    running: dict = field(default_factory=dict)
    verdicts: Counter = field(default_factory=Counter)
    durations: list = field(default_factory=list)     # of the items ended, in the order they ended
    took: dict = field(default_factory=dict)          # item ended, verdict not shown yet -> its duration

    def __post_init__(self):
        self.stream = self.stream or sys.stderr
        if self.mode == "auto":
            self.mode = "live" if _is_terminal(self.stream) else "plain"
        self.started = self.clock()
        self.done = 0
        self._lock = threading.RLock()
        self._live = None

    # --- the three calls ----------------------------------------------------------------------
    def start(self, item: str) -> None:
        """``item`` starts; a second call for an item running or ended (the pytest hook after its lane's
        ``notify_started``) keeps the first."""
        with self._lock:
            if item in self.running or item in self.took:
                return
            self.running[item] = _Running(self.clock())
            self._refresh()

    def waiting(self, item: str, seconds: float | None, what: str) -> None:
        with self._lock:
            run = self.running.setdefault(item, _Running(self.clock()))
            run.what = what
            run.wait_until = None if seconds is None else self.clock() + seconds
            if self.mode == "plain" and seconds is not None and seconds >= LONG_WAIT_S:
                self._line(f"{item}: {self.waiting_text(run)}")
            self._refresh()

    def ended(self, item: str, seconds: float | None = None) -> None:
        """``item``'s work is over after ``seconds`` (None: since its ``start``); no longer running."""
        with self._lock:
            run = self.running.pop(item, None)
            if seconds is None:
                seconds = self.clock() - run.started if run else 0.0
            self.took[item] = seconds
            self.durations.append(seconds)
            self._refresh()

    def finished(self, item: str, verdict: str) -> None:
        with self._lock:
            if item not in self.took:
                self.ended(item)
            took = self.took.pop(item)
            self.done += 1
            self.verdicts[verdict] += 1
            if self.mode == "plain":
                self._line(f"[{self.done}/{self.total}] {verdict:<14} {item} ({took:.1f} s; {self.times_text()})")
            elif self.mode == "live" and self.echo:
                self._console().print(f"{_styled(verdict)} {item} [dim]({took:.1f} s)[/dim]", highlight=False)
            self._refresh()

    # --- what is shown ------------------------------------------------------------------------
    def waiting_text(self, run: _Running) -> str:
        if not run.what:
            return "running"
        if run.wait_until is None or run.wait_until <= self.clock():
            return f"waiting for {run.what}"
        return f"waiting {max(0.0, run.wait_until - self.clock()):.1f} s: {run.what}"

    def left_seconds(self) -> float | None:
        """Items not ended × the mean time of those ended, spread over the items running at once; at least
        the longest announced wait still running. None before anything ended or announced a wait."""
        now = self.clock()
        waits = [r.wait_until - now for r in self.running.values() if r.wait_until is not None]
        floor = max(waits, default=None)
        if not self.durations:
            return floor
        mean = sum(self.durations) / len(self.durations)
        estimate = (self.total - len(self.durations)) * mean / max(1, len(self.running))
        return max(estimate, floor or 0.0)

    def times_text(self) -> str:
        left = self.left_seconds()
        shown = "estimating" if left is None else f"about {clock_text(left)} left"
        return f"elapsed {clock_text(self.clock() - self.started)}, {shown}"

    def counts_text(self) -> str:
        return ", ".join(f"{n} {v}" for v, n in sorted(self.verdicts.items())) or "none yet"

    # --- rendering ------------------------------------------------------------------------------
    def __enter__(self) -> "Progress":
        global _ACTIVE
        _ACTIVE = self
        if self.mode == "live":
            from rich.live import Live

            self._live = Live(get_renderable=self._panel, console=self._console(), refresh_per_second=4,
                              transient=True, redirect_stdout=self.redirect_stdout, redirect_stderr=False)
            self._live.start()
        elif self.mode == "plain":
            self._line(f"{self.total} {self.noun} to run")
        return self

    def __exit__(self, *exc) -> None:
        global _ACTIVE
        if _ACTIVE is self:
            _ACTIVE = None
        if self._live is not None:
            self._live.stop()
            self._live = None
        if self.mode in ("live", "plain"):
            self._line(f"{self.done}/{self.total} {self.noun} in {clock_text(self.clock() - self.started)}: "
                       f"{self.counts_text()}")

    def _panel(self):
        from rich.console import Group
        from rich.table import Table

        with self._lock:
            grid = Table.grid(padding=(0, 1), expand=True)
            names = max((len(item) for item in self.running), default=0) + 2
            grid.add_column(no_wrap=True, style="cyan", width=min(names, 60))
            grid.add_column(no_wrap=True, justify="right", width=7)
            grid.add_column(no_wrap=True, overflow="ellipsis", ratio=1)
            now = self.clock()
            for item, run in sorted(self.running.items(), key=lambda kv: kv[1].started)[:8]:
                grid.add_row(f"  {item}", f"{now - run.started:.1f} s", self.waiting_text(run))
            head = f"[bold]{self.done}/{self.total}[/bold] {self.noun} · {self.times_text()} · {self.counts_text()}"
            return Group(head, grid)

    def _refresh(self) -> None:
        if self._live is not None:
            self._live.refresh()

    def _console(self):
        if not hasattr(self, "_rich"):
            from rich.console import Console

            self._rich = Console(file=self.stream, highlight=False)
        return self._rich

    def _line(self, text: str) -> None:
        if self.mode == "live":
            self._console().print(text, markup=False)
        else:
            print(text, file=self.stream, flush=True)


def _is_terminal(stream) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


_STYLES = {"PASS": "green", "FAIL": "bold red", "ERROR": "bold magenta", "INCONCLUSIVE": "yellow",
           "NOT-APPLICABLE": "dim", "caught": "green", "MISSED": "bold red"}


def _styled(verdict: str) -> str:
    style = _STYLES.get(verdict, "")
    return f"[{style}]{verdict:<14}[/{style}]" if style else f"{verdict:<14}"


class PytestProgress:
    """A pytest plugin (``pytest.main(plugins=[...])``) feeding a ``Progress`` from the hooks the controlling
    process sees (pytest-xdist relays them from its workers): a case starts at ``logstart`` and finishes with
    the report carrying its verdict. pytest's own dots are silenced (the report's letter emptied; its
    category, hence pytest's summary, kept)."""

    def __init__(self, mode: str, stream=None):
        self.mode = mode
        # pytest captures file descriptor 2 while a case runs: the progress writes to a copy of it made now
        self._owned = stream is None
        self.stream = stream or os.fdopen(os.dup(sys.stderr.fileno()), "w", buffering=1, closefd=True)
        self.progress: Progress | None = None
        self.names: dict[str, str] = {}
        self.finished: set[str] = set()

    def _open(self, nodeids: list[str]) -> None:
        if self.progress is None:
            from .catalogue import case_ids_by_test

            by_test = case_ids_by_test()
            self.names = {n: by_test.get(_test_key(n), n) for n in nodeids}
            self.progress = Progress(len(nodeids), mode=self.mode, stream=self.stream,
                                     redirect_stdout=False).__enter__()

    def pytest_collection_finish(self, session):
        if not hasattr(session.config, "workerinput") and session.items:
            self._open([i.nodeid for i in session.items])

    @pytest.hookimpl(optionalhook=True)
    def pytest_xdist_node_collection_finished(self, node, ids):
        self._open(list(ids))

    def pytest_runtest_logstart(self, nodeid, location):
        if self.progress is not None:
            self.progress.start(self.names.get(nodeid, nodeid))

    def pytest_runtest_logreport(self, report):
        verdict = dict(report.user_properties).get("verdict")
        if self.progress is not None and verdict and report.nodeid not in self.finished:
            self.finished.add(report.nodeid)
            self.progress.finished(self.names.get(report.nodeid, report.nodeid), verdict)

    @pytest.hookimpl(hookwrapper=True)
    def pytest_report_teststatus(self, report, config):
        outcome = yield
        result = outcome.get_result()
        if result:
            outcome.force_result((result[0], "", result[2]))

    @pytest.hookimpl(tryfirst=True)
    def pytest_sessionfinish(self, session):
        if self.progress is not None:
            self.progress.__exit__(None, None, None)
            self.progress = None
        if self._owned:
            self.stream.close()


def _test_key(nodeid: str) -> str:
    """``cases/test_x.py::test_y[param]`` → ``test_x.py::test_y``."""
    path, _, name = nodeid.partition("::")
    return f"{path.rsplit('/', 1)[-1]}::{name.split('[')[0]}"
