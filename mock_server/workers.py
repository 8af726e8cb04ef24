"""Worker threads for the gateway's CPU work (``pipeline.prepare``), off the event loop (issue 13).

Unlike ``ThreadPoolExecutor``'s, these threads are daemons: a process stopping (SIGTERM, Ctrl-C) never
waits for a hostile request's parsing to end — its answer was abandoned anyway and nothing of it is
recorded (``prepare`` writes nothing but its own exchange).
"""

from __future__ import annotations

import queue
import threading
from concurrent.futures import Executor, Future


class DaemonWorkers(Executor):
    def __init__(self, count: int, name: str = "ecdi-cpu"):
        self._queue: queue.SimpleQueue = queue.SimpleQueue()
        self._threads = [threading.Thread(target=self._work, name=f"{name}-{i}", daemon=True) for i in range(count)]
        for thread in self._threads:
            thread.start()

    def submit(self, fn, /, *args, **kwargs) -> Future:
        future: Future = Future()
        self._queue.put((future, fn, args, kwargs))
        return future

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        """Stop the workers once their current task ends; queued tasks are cancelled."""
        for _ in self._threads:
            self._queue.put(None)
        if wait:
            for thread in self._threads:
                thread.join()

    def _work(self) -> None:
        while (item := self._queue.get()) is not None:
            future, fn, args, kwargs = item
            if not future.set_running_or_notify_cancel():
                continue
            try:
                future.set_result(fn(*args, **kwargs))
            except BaseException as exc:          # noqa: BLE001 — handed to whoever waits
                future.set_exception(exc)
        self._drain()

    def _drain(self) -> None:
        try:
            while True:
                item = self._queue.get_nowait()
                if item is not None:
                    item[0].cancel()
        except queue.Empty:
            pass
