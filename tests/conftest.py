"""Shared fixtures of the harness's own tests."""

from __future__ import annotations

import fcntl
import json
import os
import pickle
import subprocess
import tempfile
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, TypeVar

import pytest

SELFTEST_SCALE = "0.05"
SELFTEST_SEED = "20261123"
T = TypeVar("T")

# The tests start ~150 Python processes (``ecdi run``, gateways, products run as programs). With
# PYTHONDONTWRITEBYTECODE set, each compiled every module of the harness again (~0.15 s of CPU a run): they
# write and read their bytecode in a cache outside the working tree instead.
if os.environ.pop("PYTHONDONTWRITEBYTECODE", None):
    os.environ.setdefault("PYTHONPYCACHEPREFIX", str(Path(tempfile.gettempdir()) / f"ecdi-tests-pycache-{os.getuid()}"))


def shared_root(tmp_path_factory) -> Path:
    """The session's temporary folder that every pytest-xdist worker sees (a worker's own is a subfolder)."""
    base = tmp_path_factory.getbasetemp()
    return base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base


@contextmanager
def _locked(path: Path):
    with open(path, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def shared(tmp_path_factory, name: str, make: Callable[[Path], T]) -> T:
    """``make(folder)`` once for the whole test session, whichever worker asks first; the others wait for it and
    read what it made (pickled beside ``folder``). A read-only result is made once, not once per worker."""
    root = shared_root(tmp_path_factory) / "shared"
    root.mkdir(exist_ok=True)
    made = root / f"{name}.pickle"
    with _locked(root / f"{name}.lock"):
        if made.is_file():
            return pickle.loads(made.read_bytes())
        value = make(root / name)
        made.write_bytes(pickle.dumps(value))
        return value


@pytest.fixture(scope="session")
def pki_dir(tmp_path_factory) -> Path:
    """One generated test PKI for the whole test session, every worker's (generation costs RSA key
    generation; the folder is locked while one process adds to it, and each run reads its CRL afresh)."""
    from conformance.pki import TestPKI

    folder = shared_root(tmp_path_factory) / "pki"
    TestPKI.ensure(folder)
    return folder


@dataclass
class RunResult:
    returncode: int
    out: Path
    stdout: str
    stderr: str

    @property
    def results(self) -> dict:
        return json.loads((self.out / "results.json").read_text(encoding="utf-8"))

    def verdicts(self) -> dict[str, str]:
        return {c["id"]: c["verdict"] for c in self.results["cases"]}

    def explain(self) -> str:
        """What a failed assertion prints: each case not PASS or NOT-APPLICABLE with its reason (the
        table in stdout has no reasons), then the tails of stdout and stderr."""
        try:
            cases = self.results["cases"]
        except (OSError, ValueError, KeyError):
            cases = []
        lines = [f"{c['id']}: {c['verdict']}: {c.get('reason')}" for c in cases
                 if c["verdict"] not in ("PASS", "NOT-APPLICABLE")]
        return "\n".join([*lines, self.stdout[-3000:], self.stderr[-3000:]])


# What the test needs after its run (assertions, teardown) out of its own timeout: a run is stopped this
# long before pytest-timeout would stop the test, so it fails with the run's output, not a thread dump.
AFTER_RUN_MARGIN_S = 30.0
_deadline: list[float] = []     # the running test's: pytest_runtest_setup sets it, before any fixture


def item_timeout(item) -> float:
    """The test's one timeout: its ``@pytest.mark.timeout(N)``, else ``--timeout``, else the ini's ``timeout``."""
    mark = item.get_closest_marker("timeout")
    if mark is not None and (mark.args or "timeout" in mark.kwargs):
        return float(mark.args[0] if mark.args else mark.kwargs["timeout"])
    return float(item.config.getoption("timeout", None) or item.config.getini("timeout") or 300)


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item):
    _deadline[:] = [time.monotonic() + item_timeout(item)]


def run_budget() -> float:
    """Seconds a subprocess of the running test may take: what is left of its timeout, less the margin."""
    left = (_deadline[0] - time.monotonic()) if _deadline else 300.0
    return max(left - AFTER_RUN_MARGIN_S, 10.0)


def ecdi_process(*args, timeout: float = 60, env: dict | None = None, cwd=None) -> subprocess.CompletedProcess:
    """``python -m conformance.cli ARGS`` in a process of its own, as ``subprocess.run(..., capture_output=True,
    text=True)``; forked from a process that has made the imports already (``warm_ecdi``)."""
    from warm_ecdi import run

    return run(args, timeout=timeout, env=env, cwd=cwd)


def ecdi_run(out: Path, pki_dir: Path, *extra: str, timeout: float | None = None) -> RunResult:
    """``ecdi run`` in a separate process, exactly as a user runs it. It may take what is left of the
    running test's timeout (fixtures included) less ``AFTER_RUN_MARGIN_S``, or ``timeout`` seconds."""
    timeout = run_budget() if timeout is None else timeout
    args = ["run", "--sut", "reference", "--out", str(out), "--time-scale", SELFTEST_SCALE, "--seed", SELFTEST_SEED,
            "--pki-dir", str(pki_dir), *extra]
    try:
        proc = ecdi_process(*args, timeout=timeout)
    except subprocess.TimeoutExpired as exc:
        tail = (exc.stdout or b"")[-3000:]
        pytest.fail(f"ecdi run into {out} did not finish within {timeout:.0f} s (the test's timeout less "
                    f"{AFTER_RUN_MARGIN_S:.0f} s):\n{tail.decode(errors='replace') if isinstance(tail, bytes) else tail}")
    return RunResult(proc.returncode, out, proc.stdout, proc.stderr)


@pytest.fixture(scope="session")
def run_ecdi(pki_dir):
    """``ecdi run`` against the reference DTS with the session's PKI: ``run_ecdi(out, *extra_args)``."""
    return lambda out, *extra, timeout=None: ecdi_run(out, pki_dir, *extra, timeout=timeout)


@pytest.fixture(scope="session")
def shared_ecdi(tmp_path_factory, pki_dir):
    """``shared_ecdi(name, *extra_args)``: an ``ecdi run`` that tests only read, run once for the session."""
    return lambda name, *extra: shared(tmp_path_factory, name, lambda out: ecdi_run(out, pki_dir, *extra))


@pytest.fixture(scope="session")
def reference_run(shared_ecdi) -> RunResult:
    return shared_ecdi("reference-run")


# The fixtures of sessions made once and only read (``shared``): the first test collected that uses one (and no
# other) starts it early; the others read it at the end, so that no worker sits waiting for one.
SHARED_SESSIONS = frozenset({"reference_run", "run_11", "legacy_runs", "sha1_runs", "twice"})
LONG = "long"


def pytest_configure(config):
    config.addinivalue_line("markers", f"{LONG}: a test of a minute or more (a whole session, a score): dispatched "
                                       "early, so that it does not run alone at the end")


def pytest_collection_modifyitems(items):
    """The order the workers are given tests in (pytest-xdist hands them out in this order as workers free up;
    loadgroup's groups go first): one starter of each shared session, then the long tests, then the rest,
    then the shared sessions' other readers."""
    sessions = {item.nodeid: SHARED_SESSIONS.intersection(getattr(item, "fixturenames", ())) for item in items}
    starters = set()
    for name in sorted(SHARED_SESSIONS):
        users = [item.nodeid for item in items if name in sessions[item.nodeid]]
        alone = [nodeid for nodeid in users if sessions[nodeid] == {name}]
        if users:
            starters.add((alone or users)[0])

    def rank(item) -> int:
        if item.nodeid in starters:
            return 0
        if sessions[item.nodeid]:
            return 3
        return 1 if item.get_closest_marker(LONG) else 2

    items.sort(key=rank)     # stable: the catalogue's order within a rank


def cluster_or_skip(**kwargs):
    """A started PostgreSQL cluster (tests/pgcluster.py); the test is skipped, saying why, only where one cannot
    be started (.ci/run installs PostgreSQL)."""
    from pgcluster import Unavailable, start_cluster

    try:
        return start_cluster(**kwargs)
    except Unavailable as exc:
        pytest.skip(f"PostgreSQL cannot run here: {exc}")


@pytest.fixture(scope="session")
def pg_cluster():
    """A PostgreSQL cluster of this test session, stopped at its end."""
    cluster = cluster_or_skip()
    yield cluster
    cluster.remove()


@pytest.fixture
def pg_url(pg_cluster) -> str:
    """A fresh, empty database of the session's cluster."""
    return pg_cluster.create_database()


def storage_config(request, folder: Path) -> dict:
    """GatewayConfig storage fields for the test's engine: ``request.param`` "postgresql" (a fresh
    database of the session's cluster) or "sqlite" (the default, files in ``folder``)."""
    if getattr(request, "param", "sqlite") == "postgresql":
        return {"database": request.getfixturevalue("pg_cluster").create_database()}
    return {"evidence_db": folder / "evidence.sqlite3"}


BOTH_ENGINES = pytest.mark.parametrize("gateway", ["sqlite", "postgresql"], indirect=True)
