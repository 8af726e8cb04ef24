"""Worker processes for the gateway's pure CPU work (``pipeline.prepare``), each within a budget.

Why processes, not threads: threads share one GIL, so a hostile message whose XSD errors are
explained in pure Python slowed every other request by the interpreter's switch interval at each
hand-over (issue 13: p99 10 × its idle value), and the gateway used one core of two (issue 14). A
process that outlasts its budget is killed and replaced; a thread could only be abandoned, still
burning a core.

A worker reads the request's octets and returns what ``prepare`` computed as plain data
(``pipeline.portable_results``); the event loop re-parses the message text (cheap, in C) and the steps
find the expensive results already there. Workers are started from a ``forkserver`` that has already
imported the codec and the profiles, so starting one costs milliseconds, and lazily: a gateway that
never sees a Send starts none.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import pickle
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from multiprocessing.connection import Connection

_PRELOAD = ["mock_server.cpu_worker"]


def _context():
    ctx = multiprocessing.get_context("forkserver")
    ctx.set_forkserver_preload(_PRELOAD)
    return ctx


class _Worker:
    """One worker process and its pipe; used by one request at a time."""

    def __init__(self, profile_ids: tuple[str, ...]):
        self._profile_ids = profile_ids
        self.process = None
        self.conn: Connection | None = None

    def call(self, body: bytes, budget: float) -> dict | None:
        """The portable results for ``body``, or None if they did not come within ``budget`` seconds
        (the process is then killed; the next call starts a fresh one)."""
        if self.process is None or not self.process.is_alive():
            self._start()
        try:
            self.conn.send_bytes(body)
            if self.conn.poll(max(budget, 0.0)):
                return pickle.loads(self.conn.recv_bytes())
        except (EOFError, OSError):          # killed by close(), or died: same as over budget
            pass
        self.kill()
        return None

    def _start(self) -> None:
        from .cpu_worker import serve
        parent, child = _context().Pipe()
        self.process = _context().Process(target=serve, args=(child, self._profile_ids), daemon=True,
                                          name="ecdi-cpu")
        self.process.start()
        child.close()
        self.conn = parent

    def stop(self) -> None:
        """Kill the process from any thread; the thread waiting on it sees the pipe close."""
        process = self.process
        if process is not None and process.is_alive():
            process.kill()

    def kill(self) -> None:
        process, conn, self.process, self.conn = self.process, self.conn, None, None
        if process is not None and process.is_alive():
            process.kill()
            process.join(1.0)
        if conn is not None:
            conn.close()


class CpuPool:
    """``count`` worker processes shared by every request of one gateway."""

    def __init__(self, profile_ids: list[str], count: int, budget: float):
        self.budget = budget
        self._workers = [_Worker(tuple(profile_ids)) for _ in range(max(1, count))]
        self._threads = ThreadPoolExecutor(len(self._workers), thread_name_prefix="ecdi-cpu-wait")
        self._idle: asyncio.Queue | None = None
        self._lock = threading.Lock()
        self._closed = False

    async def prepare(self, body: bytes) -> dict | None:
        """The worker's results for ``body``, or None past the budget (waiting for a free worker
        counts: a queue of hostile requests must not hold an answer past it either)."""
        deadline = time.monotonic() + self.budget
        idle = self._idle_queue()
        try:
            worker = await asyncio.wait_for(idle.get(), self.budget)
        except asyncio.TimeoutError:
            return None
        try:
            if self._closed:
                return None
            return await asyncio.get_running_loop().run_in_executor(
                self._threads, worker.call, body, deadline - time.monotonic())
        finally:
            idle.put_nowait(worker)

    def _idle_queue(self) -> asyncio.Queue:
        if self._idle is None:
            self._idle = asyncio.Queue()
            for worker in self._workers:
                self._idle.put_nowait(worker)
        return self._idle

    def close(self) -> None:
        """Kill every worker now: a stopping gateway never waits for a hostile request's work."""
        with self._lock:
            self._closed = True
            for worker in self._workers:
                worker.stop()
        self._threads.shutdown(wait=False, cancel_futures=True)
