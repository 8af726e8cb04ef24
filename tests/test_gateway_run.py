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

from conftest import ecdi_process

TIME_SCALE = "0.05"
pytestmark = pytest.mark.xdist_group("cgw-gateway-run")   # one mock gateway process for the module
TRANSPORT = ("send-over-https", "wsdl", "cdata-accepted", "no-http-auth-errors", "soap-faults", "overload-answers",
             "tls", "size-limit")


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
    proc = ecdi_process("run", "--gateway", statement, "--out", out, "--progress", "off", *extra, timeout=300)
    results = out / "results.json"
    return proc, json.loads(results.read_text(encoding="utf-8")) if results.exists() else {}


def test_the_statement_describes_the_running_gateway_and_is_private(mock_gateway):
    statement = load_gateway_statement(mock_gateway)
    assert statement.endpoint.startswith("https://127.0.0.1:") and statement.endpoint.endswith("/ecdi/CISService")
    assert statement.profiles == ("ecdi-1.0", "ecdi-1.1") and len(statement.accounts) == 3
    assert statement.parameters["time_scale"] == float(TIME_SCALE)
    assert set(statement.facilities) == {"test_clock", "otp_mailbox", "processing_history"}
    assert mock_gateway.stat().st_mode & 0o777 == 0o600
    assert statement.accounts[0].key.stat().st_mode & 0o777 == 0o600


@pytest.fixture(scope="module")
def gateway_runs(mock_gateway, tmp_path_factory) -> dict[str, tuple[subprocess.CompletedProcess, dict, Path]]:
    """One ``ecdi run --gateway`` per profile against the one mock gateway process."""
    runs = {}
    for profile in ("ecdi-1.0", "ecdi-1.1"):
        out = tmp_path_factory.mktemp(f"cgw-{profile}") / "out"
        proc, results = run_gateway(mock_gateway, out, "--profile", profile)
        runs[profile] = (proc, results, out)
    return runs


def ecdi(*args: str) -> subprocess.CompletedProcess:
    return ecdi_process(*args, timeout=120)


@pytest.mark.parametrize("profile", ["ecdi-1.0", "ecdi-1.1"])
def test_the_mock_gateway_is_conformant_through_the_gateway_path(gateway_runs, profile):
    proc, results, out = gateway_runs[profile]
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert results["overall"] == "CONFORMANT" and results["party"] == "CGW"
    ids = {c["id"] for c in results["cases"]}
    assert all(i.startswith("cgw-") for i in ids) and {f"cgw-transport.{n}" for n in TRANSPORT} <= ids
    assert results["sut"]["product"] == "ECDI mock customs gateway" and results["gateway"]["endpoint"]
    assert results["scope"]["missing"] == [] and results["claims"] is None
    assert results["evidence"]["rows"] >= len(results["cases"])
    verify = ecdi("evidence", "verify", str(out / "evidence" / "evidence.sqlite3"))
    assert verify.returncode == 0, verify.stdout + verify.stderr


def test_a_gateway_certificate_names_the_party_and_verifies(gateway_runs):
    _, results, out = gateway_runs["ecdi-1.1"]
    page = (out / "certificate.html").read_text(encoding="utf-8")
    assert 'data-claim="party">CGW' in page and results["gateway"]["endpoint"] in page
    for name in ("certificate.html", "certificate.pdf"):
        proc = ecdi("verify", "--trust", str(out / "certificate-issuer.pub.pem"), "--accept-self-assessment",
                    "--evidence", str(out / "evidence" / "evidence.sqlite3"), str(out / name))
        assert proc.returncode == 0 and "SELF-ASSESSMENT: CGW ECDI mock customs gateway" in proc.stdout, proc.stderr
    assert "Party tested" in (out / "report.html").read_text(encoding="utf-8")


def test_a_gateway_run_replays_offline_to_the_same_verdicts(gateway_runs):
    _, results, out = gateway_runs["ecdi-1.0"]
    proc = ecdi("replay", str(out))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert f"{len(results['cases'])} case(s) replayed, 0 with differences" in proc.stdout


def test_diff_of_two_gateway_runs_names_the_party_and_the_annex_a_change(gateway_runs, tmp_path):
    proc = ecdi("diff", str(gateway_runs["ecdi-1.0"][2]), str(gateway_runs["ecdi-1.1"][2]),
                "--html", str(tmp_path / "diff.html"))
    assert proc.returncode == 1, proc.stderr            # 1: the runs differ
    assert "CGW ECDI mock customs gateway" in proc.stdout and "SIG-07" in proc.stdout and "Annex A #3" in proc.stdout
    assert "PAY-11" not in proc.stdout                  # a DTS-only requirement is no change of a gateway
