"""Certifying a gateway end to end: the project's mock gateway started as a separate process
(``ecdi gateway --statement``), certified through ``ecdi run --gateway`` like any customs gateway."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from conformance.gateway_statement import load_gateway_statement

TIME_SCALE = "0.05"


def start_gateway(pki_dir: Path, folder: Path, *options: str) -> tuple[subprocess.Popen, Path]:
    """``ecdi gateway --port 0 --statement`` in its own process; returns it and its statement's path, read
    from what it printed up to "ready"."""
    proc = subprocess.Popen([sys.executable, "-m", "conformance.cli", "gateway", "--port", "0", "--pki-dir",
                             str(pki_dir), "--dir", str(folder), "--profile", "ecdi-1.0", "--profile", "ecdi-1.1",
                             "--time-scale", TIME_SCALE, "--statement", *options],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    statement = None
    for line in proc.stdout:
        if "gateway statement" in line:
            statement = Path(line.rsplit(": ", 1)[1].strip())
        if line.startswith("ready"):
            return proc, statement
    proc.kill()
    raise AssertionError(proc.stderr.read())


def stop_gateway(proc: subprocess.Popen) -> None:
    proc.send_signal(signal.SIGINT)
    try:
        proc.communicate(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.communicate()


@pytest.fixture(scope="module")
def mock_gateway(pki_dir, tmp_path_factory):
    proc, statement = start_gateway(pki_dir, tmp_path_factory.mktemp("mock-gateway"))
    yield statement
    stop_gateway(proc)


def run_gateway(statement: Path, out: Path, *extra: str) -> tuple[subprocess.CompletedProcess, dict]:
    proc = subprocess.run([sys.executable, "-m", "conformance.cli", "run", "--gateway", str(statement),
                           "--out", str(out), "--progress", "off", *extra], capture_output=True, text=True, timeout=120)
    results = out / "results.json"
    return proc, json.loads(results.read_text(encoding="utf-8")) if results.exists() else {}


def test_the_statement_describes_the_running_gateway_and_is_private(mock_gateway):
    statement = load_gateway_statement(mock_gateway)
    assert statement.endpoint.startswith("https://127.0.0.1:") and statement.endpoint.endswith("/ecdi/CISService")
    assert statement.profiles == ("ecdi-1.0", "ecdi-1.1") and len(statement.accounts) == 3
    assert statement.parameters["time_scale"] == float(TIME_SCALE)
    assert set(statement.facilities) == {"test_clock", "otp_mailbox"}
    assert mock_gateway.stat().st_mode & 0o777 == 0o600
    assert statement.accounts[0].key.stat().st_mode & 0o777 == 0o600


@pytest.mark.parametrize("profile", ["ecdi-1.0", "ecdi-1.1"])
def test_the_mock_gateway_is_conformant_through_the_gateway_path(mock_gateway, tmp_path, profile):
    proc, results = run_gateway(mock_gateway, tmp_path / "out", "--profile", profile)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert results["overall"] == "CONFORMANT" and results["party"] == "CGW"
    assert results["cases"] and all(c["id"].startswith("cgw-") for c in results["cases"])
    assert results["sut"]["product"] == "ECDI mock customs gateway" and results["gateway"]["endpoint"]
    assert results["evidence"]["rows"] >= len(results["cases"])
    verify = subprocess.run([sys.executable, "-m", "conformance.cli", "evidence", "verify",
                             str(tmp_path / "out" / "evidence" / "evidence.sqlite3")],
                            capture_output=True, text=True, timeout=60)
    assert verify.returncode == 0, verify.stdout + verify.stderr
