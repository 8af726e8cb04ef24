"""The harness's own scheduling lag, so that a busy machine is never taken for a slow product.

A monitor sleeps a short period again and again and records by how much each wake-up came late
(the *overshoot*, measured on the monotonic clock). Two monitors run: an asyncio task in the gateway's
event loop (it stamps arrivals, accepts and closes) and a thread in the case process (the in-process
reference DTS, the drivers' glue and the case itself). Each sample also carries the wall-clock span it
covers, so a timing check can ask for the lag inside the window it judged (evidence times are epoch
seconds).

The rule a case's timing finding goes through (``explains``) is pure and deterministic:

* the lag of one measured interval is the largest overshoot of a sample overlapping it, per monitor;
  the two monitors' values add (one side may have stamped an end late while the other woke late);
* a finding judged over several intervals (a schedule of backoffs) adds the lags of its intervals;
* a failed timing check "could be explained" by the harness when that lag is at least the amount by
  which the measurement missed its bound *beyond* the tolerance (``shortfall``): then the finding is
  disturbed, not a FAIL. A clear failure — no backoff at all, a gap of 0 s against 2 s — needs 2 s of lag
  to be excused, which no monitor reports on a working machine.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections import deque
from dataclasses import dataclass

PERIOD_S = 0.01            # how long each monitor sleeps between wake-ups
NOTEWORTHY_S = 0.001       # overshoots below this are not stored (a window without samples has lag 0)
KEEP = 200_000             # samples kept per monitor (hours of a busy machine, minutes of a hogged one)
RERUNS = 2                 # a disturbed case runs at most this many more times (docs/decisions.md)


@dataclass(frozen=True)
class Sample:
    start: float          # wall clock when the sleep began
    end: float            # wall clock at the late wake-up
    overshoot: float      # seconds beyond the period (monotonic clock)


class LagSamples:
    """Overshoots of one monitor; thread-safe appends, window queries."""

    def __init__(self, keep: int = KEEP):
        self._samples: deque[Sample] = deque(maxlen=keep)
        self._lock = threading.Lock()

    def add(self, start: float, end: float, overshoot: float) -> None:
        if overshoot >= NOTEWORTHY_S:
            with self._lock:
                self._samples.append(Sample(start, end, overshoot))

    def worst(self, t0: float, t1: float) -> float:
        """The largest overshoot of a sample whose span overlaps [t0, t1] (0.0 if none)."""
        with self._lock:
            samples = list(self._samples)
        return max((s.overshoot for s in samples if s.end >= t0 and s.start <= t1), default=0.0)


def sleep_overshoot(period: float, sleep) -> tuple[float, float, float]:
    """One monitoring step with a blocking ``sleep``: (wall start, wall end, overshoot)."""
    wall, mono = time.time(), time.monotonic()
    sleep(period)
    return wall, time.time(), max(0.0, time.monotonic() - mono - period)


class ThreadMonitor:
    """The case process's monitor: a daemon thread (it competes for the GIL and the CPU like the DTS)."""

    def __init__(self, samples: LagSamples | None = None, period: float = PERIOD_S):
        self.samples = samples or LagSamples()
        self.period = period
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="ecdi-lag-monitor", daemon=True)

    def start(self) -> "ThreadMonitor":
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()

    def _run(self) -> None:
        while not self._stop.is_set():
            self.samples.add(*sleep_overshoot(self.period, self._stop.wait))


_process_monitor: ThreadMonitor | None = None
_process_lock = threading.Lock()


def process_monitor() -> ThreadMonitor:
    """This process's monitor, started on first use and running until the process ends."""
    global _process_monitor
    with _process_lock:
        if _process_monitor is None:
            _process_monitor = ThreadMonitor().start()
        return _process_monitor


async def watch_loop(samples: LagSamples, period: float = PERIOD_S) -> None:
    """The gateway's monitor: an asyncio task measuring its event loop's lateness until cancelled."""
    while True:
        wall, mono = time.time(), time.monotonic()
        await asyncio.sleep(period)
        samples.add(wall, time.time(), max(0.0, time.monotonic() - mono - period))


# --- the rule --------------------------------------------------------------------------------------

def explains(shortfall_s: float, lags_s: list[float]) -> bool:
    """Whether the harness's lag over a finding's intervals could account for its miss (see module doc)."""
    return shortfall_s > 0 and sum(lags_s) >= shortfall_s


def overloaded_message(lags_s: list[float], message: str) -> str:
    return f"harness overloaded: lag {sum(lags_s) * 1000:.0f} ms could explain the finding ({message})"
