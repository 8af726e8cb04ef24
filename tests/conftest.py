"""Shared fixtures of the harness's own tests."""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

SELFTEST_SCALE = "0.05"
SELFTEST_SEED = "20261123"


@pytest.fixture(scope="session")
def pki_dir(tmp_path_factory) -> Path:
    """One generated test PKI for the whole test session (generation costs RSA key generation)."""
    from conformance.pki import TestPKI

    folder = tmp_path_factory.mktemp("pki")
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


def ecdi_run(out: Path, pki_dir: Path, *extra: str) -> RunResult:
    """``ecdi run`` in a separate process, exactly as a user runs it."""
    cmd = [sys.executable, "-m", "conformance.cli", "run", "--sut", "reference", "--out", str(out),
           "--time-scale", SELFTEST_SCALE, "--seed", SELFTEST_SEED, "--pki-dir", str(pki_dir), *extra]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    return RunResult(proc.returncode, out, proc.stdout, proc.stderr)


@pytest.fixture(scope="session")
def run_ecdi(pki_dir):
    """``ecdi run`` against the reference DTS with the session's PKI: ``run_ecdi(out, *extra_args)``."""
    return lambda out, *extra: ecdi_run(out, pki_dir, *extra)


@pytest.fixture(scope="session")
def reference_run(tmp_path_factory, pki_dir) -> RunResult:
    return ecdi_run(tmp_path_factory.mktemp("reference-run"), pki_dir)


def pytest_collection_modifyitems(items):
    """Under pytest-xdist (``--dist loadgroup``) every test reading the shared ``reference_run`` goes to one
    worker, so the full reference session runs once, not once per worker."""
    for item in items:
        if "reference_run" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.xdist_group("reference-run"))
