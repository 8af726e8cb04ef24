"""Cases at once on lanes (``ecdi run --jobs N``), reported one by one in catalogue order.

pytest runs one test at a time in one thread, and our cases mostly wait on timers. So the plugin takes
pytest's run loop: this scheduler runs each case's body on a free lane (``lanes.py``), one case per lane
at a time, while the main thread passes the cases, in catalogue order, through pytest's ordinary run
protocol as soon as each one's lane is done with it; there the plugin hands over what the lane found.
Reports, JUnit, HTML, progress output and results.json thus see the same sequence at any N.

Order on the lanes: cases marked ``runs_first`` (they wait out the longest timers, so the run cannot end
before they do) start first, then the catalogue's order, where cases marked ``runs_last`` (they judge the
whole campaign) come last; such a case reads the campaign once every case before it has ended
(``lanes.Campaign``), so it judges the same campaign at any N.

A case re-run because the harness's own lag disturbed it runs alone (``Scheduler.alone``): the lanes are
that load, so none starts a case meanwhile, and the re-run first lets the running ones end.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Callable


ALONE_WAIT_S = 30.0     # how long a re-run waits for the other lanes' cases to end before it starts anyway


@dataclass
class Execution:
    """What a lane did with one case, for the plugin to report."""

    ctx: object | None = None                   # the CaseContext of the last attempt
    decided: bool = False                       # decided before it ran (NOT-APPLICABLE, no session)
    setup_error: BaseException | None = None    # starting the case failed: reported as its set-up
    raised: BaseException | None = None         # what the case body raised (CaseFailure or a fault)
    seconds: float = 0.0                        # how long the lane took (the report's duration)


@dataclass
class Scheduler:
    items: list                                 # the cases, in catalogue order
    lanes: list
    work: Callable[[object, object], Execution]  # (item, lane) -> Execution; run on the lane's thread
    first: Callable[[object], bool] = lambda item: False
    # told on the lane's thread when a case starts there and when it ends (the console's progress)
    on_start: Callable[[object], None] = lambda item: None
    on_end: Callable[[object, Execution], None] = lambda item, result: None
    results: dict[str, Execution] = field(default_factory=dict)

    def __post_init__(self):
        self._pending = deque([i for i in self.items if self.first(i)] + [i for i in self.items if not self.first(i)])
        self.ended = {i.nodeid: threading.Event() for i in self.items}
        self.stopped = threading.Event()
        self._lock = threading.Lock()
        self._calm = threading.Condition(self._lock)
        self._running = 0                        # cases on a lane now
        self._alone = 0                          # re-runs asking for a quiet harness
        self._threads = [threading.Thread(target=self._lane, args=(lane,), name=f"ecdi-lane-{n}", daemon=True)
                         for n, lane in enumerate(self.lanes)]

    def start(self) -> "Scheduler":
        for thread in self._threads:
            thread.start()
        return self

    def wait(self, item) -> None:
        """Until ``item``'s lane is done with it (at once for an item that is not a case)."""
        ended = self.ended.get(item.nodeid)
        while ended is not None and not ended.wait(0.2):
            pass

    def stop(self) -> None:
        """No case starts any more (those running end on their own); a case never started has no
        execution, so the run reports it as not run to completion."""
        with self._lock:
            self._pending.clear()
        self.stopped.set()

    @contextmanager
    def alone(self, within: float = ALONE_WAIT_S):
        """For a case re-run because the harness's own load disturbed it (``lag``): no case starts while it
        runs, and it first waits, up to ``within`` seconds, for the cases running on other lanes to end
        (bounded: a campaign case waiting for this very case is one of them)."""
        with self._calm:
            self._alone += 1
            deadline = time.monotonic() + within
            while self._running > 1 and (left := deadline - time.monotonic()) > 0:
                self._calm.wait(left)
        try:
            yield
        finally:
            with self._calm:
                self._alone -= 1
                self._calm.notify_all()

    def _next(self):
        with self._calm:
            while self._alone and self._pending and not self.stopped.is_set():
                self._calm.wait(0.2)
            if not self._pending:
                return None
            self._running += 1
            return self._pending.popleft()

    def _lane(self, lane) -> None:
        while (item := self._next()) is not None:
            began = time.monotonic()
            try:
                self.on_start(item)
                result = self.work(item, lane)
            except BaseException as exc:  # noqa: BLE001 - reported as the case's set-up failure, never lost
                result = Execution(setup_error=exc)
            finally:
                with self._calm:
                    self._running -= 1
                    self._calm.notify_all()
            result.seconds = time.monotonic() - began
            self.results[item.nodeid] = result
            try:
                self.on_end(item, result)
            finally:
                self.ended[item.nodeid].set()
