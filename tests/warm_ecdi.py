"""``python -m conformance.cli ARGS`` for the own tests, in a process forked from one that has already imported
the harness and its libraries.

The tests run ``ecdi`` about 150 times (every mutant's run, the shared sessions, the CLI tests); a new interpreter
spends ≈ 1.2 CPU-s importing pytest, lxml, cryptography, aiohttp, pyhanko, reportlab and the harness before it
does anything. A child forked from a warm process (``multiprocessing``'s fork server, one per xdist worker) is
still a process of its own: its own arguments, environment, folder, stdin/stdout/stderr, exit status and
signals, and its ``atexit`` work done as an interpreter's exit does it; only the imports are already made.

Left for the child to import, as a fresh interpreter would: the modules pytest rewrites for its assertions
(``conformance.plugin``, the cases, plugins registered through entry points): imported beforehand they would
not be rewritten and pytest would warn. What an interpreter reads once, at its start or at import, cannot be
changed in a fork: ``ECDI_FIXTURES`` (``conformance.profile``) and ``PYTHONPATH`` (a ``sitecustomize`` the
fairness tests put on it, tests/slow_first): a test that sets either another way gets a new interpreter.
"""

from __future__ import annotations

import io
import locale
import os
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

CLI = str(Path(__file__).resolve().parents[1] / "conformance" / "cli.py")   # sys.argv[0] of `python -m conformance.cli`
_context = None
_starting = threading.Lock()
_IMPORT_TIME_ENV = ("ECDI_FIXTURES", "PYTHONPATH")
_server_env: list[tuple[str | None, ...]] = []


def _warm_context():
    with _starting:     # tests run ecdi from several threads at once
        return _context or _start_server()


def _start_server():
    global _context
    import atexit
    import multiprocessing
    import multiprocessing.forkserver

    _context = multiprocessing.get_context("forkserver")
    _context.set_forkserver_preload(["warm_imports"])
    _server_env.append(_import_time(os.environ))
    # Python 3.11's fork server does not take the parent's sys.path (3.12 does): it finds warm_imports, beside
    # this file, through PYTHONPATH, set while it starts (a preload it cannot import it skips in silence)
    before = os.environ.get("PYTHONPATH")
    os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(Path(__file__).parent), before]))
    try:
        multiprocessing.forkserver.ensure_running()
    finally:
        if before is None:
            del os.environ["PYTHONPATH"]
        else:
            os.environ["PYTHONPATH"] = before
    # stopped and waited for when the worker ends: no server left behind, and its children's CPU time
    # counted in the test run's (/usr/bin/time, getrusage) as a subprocess's is
    atexit.register(multiprocessing.forkserver._forkserver._stop)      # noqa: SLF001
    return _context


def _import_time(env) -> tuple[str | None, ...]:
    return tuple(env.get(name) for name in _IMPORT_TIME_ENV)


def run(args, *, timeout: float | None = None, env: dict | None = None, cwd=None,
        input: str | None = None) -> subprocess.CompletedProcess:
    """As ``subprocess.run([sys.executable, "-m", "conformance.cli", *args], capture_output=True, text=True,
    timeout=timeout, env=env, cwd=cwd)``: the same result, or ``subprocess.TimeoutExpired`` with the output so far."""
    args = [str(a) for a in args]
    cmd = [sys.executable, "-m", "conformance.cli", *args]
    env = dict(os.environ if env is None else env)
    context = _warm_context()
    if input is not None or _import_time(env) != _server_env[0]:
        return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env, cwd=cwd, input=input)
    with tempfile.TemporaryDirectory(prefix="warm-ecdi-") as tmp:
        out, err = Path(tmp) / "stdout", Path(tmp) / "stderr"
        child = context.Process(target=_child, args=(args, env, str(Path(cwd or os.getcwd()).resolve()), str(out),
                                                     str(err)), name="ecdi " + " ".join(args[:1]))
        child.start()
        child.join(timeout)
        timed_out = child.exitcode is None
        if timed_out:
            child.kill()     # as subprocess.run: the process itself, SIGKILL
            child.join()
        code = child.exitcode
        child.close()
        stdout, stderr = (p.read_text(encoding=locale.getpreferredencoding(False), errors="replace")
                          if p.exists() else "" for p in (out, err))
    if timed_out:
        raise subprocess.TimeoutExpired(cmd, timeout, output=stdout, stderr=stderr)
    return subprocess.CompletedProcess(cmd, code, stdout, stderr)


def _child(args: list[str], env: dict, cwd: str, out: str, err: str) -> None:
    """In the forked process: become ``python -m conformance.cli ARGS`` run with ``env`` in ``cwd``."""
    os.chdir(cwd)
    os.environ.clear()
    os.environ.update(env)
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)
    os.close(null)
    for fd, path in ((1, out), (2, err)):
        handle = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        os.dup2(handle, fd)
        os.close(handle)
    encoding = os.environ.get("PYTHONIOENCODING") or locale.getpreferredencoding(False)
    sys.stdin = sys.__stdin__ = io.TextIOWrapper(io.FileIO(0, "r", closefd=False), encoding=encoding)
    sys.stdout = sys.__stdout__ = io.TextIOWrapper(io.BufferedWriter(io.FileIO(1, "w", closefd=False)),
                                                   encoding=encoding, errors="strict")
    sys.stderr = sys.__stderr__ = io.TextIOWrapper(io.BufferedWriter(io.FileIO(2, "w", closefd=False)),
                                                   encoding=encoding, errors="backslashreplace", line_buffering=True)
    sys.argv = [CLI, *args]
    # the path of `python -m` run here: this folder, then PYTHONPATH's, then the interpreter's own
    sys.path[:] = [cwd, *filter(None, env.get("PYTHONPATH", "").split(os.pathsep)), *_interpreter_path()]
    code = _exit_status(args)
    try:          # what an interpreter does on its way out: wait for its threads, then its atexit functions
        threading._shutdown()      # noqa: SLF001
    finally:
        import atexit

        atexit._run_exitfuncs()      # noqa: SLF001
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except (OSError, ValueError):
                pass
    os._exit(code)


def _interpreter_path() -> list[str]:
    from warm_imports import INTERPRETER_PATH

    return INTERPRETER_PATH


def _exit_status(args: list[str]) -> int:
    """``sys.exit(main(args))`` as the interpreter turns it into an exit status."""
    import traceback

    try:
        from conformance.cli import main

        code = main(args)
    except SystemExit as exc:
        code = exc.code
    except KeyboardInterrupt:
        traceback.print_exc()
        return 130
    except BaseException:      # noqa: BLE001  (the interpreter prints any uncaught exception and exits 1)
        traceback.print_exc()
        return 1
    if code is None:
        return 0
    if isinstance(code, int):
        return code & 0xFF
    print(code, file=sys.stderr)
    return 1
