"""Worker processes for the gateway's pure CPU work (``pipeline.prepare``), each within a budget.

Why processes, not threads: threads share one GIL, so a hostile message whose XSD errors are
explained in pure Python slowed every other request by the interpreter's switch interval at each
hand-over (issue 13: p99 10 × its idle value), and the gateway used one core of two (issue 14). A
process that outlasts its budget is killed and replaced; a thread could only be abandoned, still
burning a core.

A worker reads the accounts' passwords and the request's octets (two frames) and returns what ``prepare`` computed as plain data
(``pipeline.portable_preparation``); the event loop re-reads the pruned message-text tree in C and the
steps find the expensive results already there.

Workers are plain ``python`` processes running ``cpu_worker.main``, not ``multiprocessing`` ones: those
re-import the parent's main module in the child, which re-runs a user's script that starts a gateway
without an ``if __name__ == "__main__"`` guard. Starting one costs about a second (imports, schemas),
so an idle worker outlives its gateway and serves the next one with the same profiles in this process
(the harness's own tests start hundreds of gateways).
"""

from __future__ import annotations

import asyncio
import logging
import os
import pickle
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from multiprocessing.connection import Connection
from pathlib import Path

from .cpu_worker import READY

START_TIMEOUT = 60.0            # a worker's start, imports included, on a loaded machine
INLINE_BODY = 48 * 1024         # bodies up to this go to a worker from the event loop itself: with the
                                # passwords' frame they fit in a pipe's 64 KiB buffer, so writing never waits
log = logging.getLogger("mock_server")
_SOURCE_ROOT = str(Path(__file__).resolve().parents[1])
_ENTRY = "import sys; from mock_server.cpu_worker import main; sys.exit(main(sys.argv[1:]))"


class WorkerStartError(Exception):
    """A worker process could not be started (the pool then prepares in the gateway's own threads)."""


class _Process:
    """A running worker and its two pipes."""

    def __init__(self, profile_ids: tuple[str, ...]):
        self.profile_ids = profile_ids
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [_SOURCE_ROOT, os.environ.get("PYTHONPATH")]))}
        self.popen = subprocess.Popen([sys.executable, "-c", _ENTRY, *profile_ids],
                                      stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=env, close_fds=True)
        self.requests = Connection(os.dup(self.popen.stdin.fileno()), readable=False)
        self.results = Connection(os.dup(self.popen.stdout.fileno()), writable=False)
        self.popen.stdin.close()
        self.popen.stdout.close()
        try:
            if self.results.poll(START_TIMEOUT) and self.results.recv_bytes() == READY:
                return
            problem = f"no answer within {START_TIMEOUT:g} s"
        except (OSError, EOFError) as exc:
            problem = f"it exited ({type(exc).__name__}) with status {self.popen.poll()}"
        self.kill()
        raise WorkerStartError(problem)

    def alive(self) -> bool:
        return self.popen.poll() is None

    def kill(self) -> None:
        if self.popen.poll() is None:
            self.popen.kill()
        self.popen.wait(5)
        self.requests.close()
        self.results.close()


class _Idle:
    """Started workers no gateway uses at the moment, by profile ids (process-wide)."""

    def __init__(self):
        self._lock = threading.Lock()
        self._by_profiles: dict[tuple[str, ...], list[_Process]] = {}

    def take(self, profile_ids: tuple[str, ...]) -> _Process | None:
        with self._lock:
            while self._by_profiles.get(profile_ids):
                process = self._by_profiles[profile_ids].pop()
                if process.alive():
                    return process
        return None

    def give(self, process: _Process) -> None:
        with self._lock:
            self._by_profiles.setdefault(process.profile_ids, []).append(process)


_IDLE = _Idle()


class _Worker:
    """One slot of a pool: a process, used by one request at a time."""

    def __init__(self, profile_ids: tuple[str, ...]):
        self._profile_ids = profile_ids
        self.process: _Process | None = None
        self._lock = threading.Lock()        # a pool's start and a request never start it twice

    def ensure_started(self) -> None:
        with self._lock:
            self._ensure_started()

    def _ensure_started(self) -> None:
        if self.process is None or not self.process.alive():
            self.process = _IDLE.take(self._profile_ids) or _Process(self._profile_ids)

    def call(self, body: bytes, known: list[str], budget: float) -> dict | None:
        """The portable results for ``body`` (``known``: the passwords its evidence must not hold), or None if they did not come within ``budget`` seconds
        (the process is then killed; the next call starts a fresh one)."""
        with self._lock:
            self._ensure_started()
            process = self.process
            try:
                process.requests.send_bytes(pickle.dumps(known))
                process.requests.send_bytes(body)
                if process.results.poll(max(budget, 0.0)):
                    return pickle.loads(process.results.recv_bytes())
            except (EOFError, OSError):      # killed by stop(), or died: same as over budget
                pass
            self.process = None
            process.kill()
            return None

    def ready(self) -> bool:
        """Started and alive: ``call_here`` needs no process start (a second or more) on the event loop."""
        return self.process is not None and self.process.alive()

    async def call_here(self, body: bytes, known: list[str], budget: float) -> dict | None:
        """``call`` without a thread, for a request whose two frames fit in the pipe's buffer at once
        (``INLINE_BODY``): written without waiting, and the answer awaited by the event loop's own reader.
        The hand-over to a waiting thread and back cost the event loop as much as a tenth of its time per
        exchange (docs/performance.md)."""
        loop = asyncio.get_running_loop()
        self._lock.acquire()                 # held while busy, as ``call`` does: ``stop`` tells so
        process = self.process
        answered = loop.create_future()
        fd = process.results.fileno()
        try:
            loop.add_reader(fd, lambda: answered.done() or answered.set_result(None))
            try:
                process.requests.send_bytes(pickle.dumps(known))
                process.requests.send_bytes(body)
                await asyncio.wait_for(answered, max(budget, 0.0))
                return pickle.loads(process.results.recv_bytes())
            except (EOFError, OSError, asyncio.TimeoutError):   # killed, died, or over budget
                pass
            except asyncio.CancelledError:   # the gateway stops: its answer would be the next call's
                self.process = None
                process.kill()
                raise
            finally:
                loop.remove_reader(fd)
            self.process = None
            process.kill()
            return None
        finally:
            self._lock.release()

    def stop(self) -> None:
        """The gateway stops: a busy process is killed (the thread or event-loop reader waiting on it sees its pipe close),
        an idle one is kept for the next gateway."""
        process = self.process
        if process is None:
            return
        if not self._lock.acquire(blocking=False):   # a request holds it for its whole call
            process.popen.kill()
            return
        try:
            self.process = None
            if process.alive():
                _IDLE.give(process)
        finally:
            self._lock.release()


class CpuPool:
    """``count`` worker slots shared by every request of one gateway."""

    def __init__(self, profile_ids: list[str], count: int, budget: float):
        self.budget = budget
        self._workers = [_Worker(tuple(profile_ids)) for _ in range(max(1, count))]
        self._threads = ThreadPoolExecutor(len(self._workers), thread_name_prefix="ecdi-cpu-wait")
        self._idle: asyncio.Queue | None = None
        self._closed = False
        self.start_problem: str | None = None   # why workers could not start, once that happened

    def start(self) -> None:
        """Start every worker now (a serving gateway's first requests do not wait for them); one that
        is not started here is started by the first request that needs it."""
        for worker in self._workers:
            if self._closed or self.start_problem is not None:
                return
            try:
                worker.ensure_started()
            except WorkerStartError as exc:
                self._cannot_start(exc)

    def _cannot_start(self, exc: WorkerStartError) -> None:
        if self.start_problem is None:
            self.start_problem = str(exc)
            log.error("the gateway's CPU worker processes could not start (%s): requests are prepared "
                      "in its own threads from now on", exc)

    async def prepare(self, body: bytes, known: list[str], fallback) -> dict | None:
        """The worker's results for ``body``, or None past the budget (waiting for a free worker
        counts: a queue of hostile requests must not hold an answer past it either).

        ``fallback(body, known)`` computes the same in this process: used, in a thread, once a worker could not
        be started (a platform without usable worker processes serves, with the stall it had before)."""
        deadline = time.monotonic() + self.budget
        idle = self._idle_queue()
        try:
            worker = await asyncio.wait_for(idle.get(), self.budget)
        except asyncio.TimeoutError:
            return None
        loop = asyncio.get_running_loop()
        try:
            if self._closed:
                return None
            if self.start_problem is None:
                try:
                    if len(body) <= INLINE_BODY and worker.ready():
                        return await worker.call_here(body, known, deadline - time.monotonic())
                    return await loop.run_in_executor(self._threads, worker.call, body, known,
                                                      deadline - time.monotonic())
                except WorkerStartError as exc:
                    self._cannot_start(exc)
            work = loop.run_in_executor(self._threads, fallback, body, known)
            try:
                return await asyncio.wait_for(asyncio.shield(work), max(0.0, deadline - time.monotonic()))
            except asyncio.TimeoutError:
                return None
        finally:
            idle.put_nowait(worker)

    def _idle_queue(self) -> asyncio.Queue:
        if self._idle is None:
            self._idle = asyncio.Queue()
            for worker in self._workers:
                self._idle.put_nowait(worker)
        return self._idle

    def close(self) -> None:
        """Busy workers are killed now (a stopping gateway never waits for a hostile request's work);
        idle ones wait for the next gateway of this process."""
        self._closed = True
        for worker in self._workers:
            worker.stop()
        self._threads.shutdown(wait=False, cancel_futures=True)
