"""A run's outputs: each run starts clean, files appear whole, a partial run is no certificate of
conformance, a requirement's status comes from its own findings, and tampered evidence is never replayed."""

from __future__ import annotations

import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time

import pytest

from conformance.cli import main
from conformance.report import outputs
from conformance.report.results import NO_OWN_FINDING, requirement_status, run_overall
from conformance.verdict import CaseRecord, Finding, Verdict

from conftest import SELFTEST_SCALE, run_budget, shared

CASE = "envelope.header-identities"


@pytest.fixture(scope="module")
def twice(tmp_path_factory, run_ecdi):
    """Two runs of one quick case into the same folder, with different seeds (different test data); made once
    for every worker (``conftest.shared``)."""
    def make(out):
        first = run_ecdi(out, "--case", CASE, "--seed", "1")
        first_results = first.results
        return first, first_results, run_ecdi(out, "--case", CASE, "--seed", "2")

    return shared(tmp_path_factory, "same-out", make)


def test_a_second_run_into_the_same_folder_starts_clean(twice):
    first, first_results, second = twice
    assert first_results["cases"][0]["verdict"] == "PASS", first.explain()
    assert second.verdicts() == {CASE: "PASS"}, second.explain()     # no product state of the first run
    assert second.results["seed"] == 2
    (previous,) = (second.out / outputs.PREVIOUS).iterdir()
    assert json.loads((previous / "results.json").read_text(encoding="utf-8")) == first_results
    for name in ("report.html", "junit.xml", "certificate.html", "evidence/evidence.sqlite3", "work/dts"):
        assert (previous / name).exists(), name
    assert not (second.out / outputs.RUNNING).exists() and not (second.out / outputs.STAGING).exists()
    manifest = json.loads((second.out / "evidence" / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["seed"] == 2 and manifest["evidence"] == second.results["evidence"]


def test_a_partial_run_is_incomplete_with_its_own_exit_code_and_heading(twice):
    _, _, run = twice
    assert run.returncode == 3, run.explain()
    scope = run.results["scope"]
    assert run.results["overall"] == "INCOMPLETE" and scope["executed"] == 1 and scope["applicable"] > 1
    assert f"INCOMPLETE (1 of {scope['applicable']} cases)" in run.stdout
    page = (run.out / "certificate.html").read_text(encoding="utf-8")
    assert "INCOMPLETE RUN" in page and f"INCOMPLETE (1 of {scope['applicable']} cases)" in page
    assert "PHÙ HỢP <span" not in page and 'class="verdict CONFORMANT"' not in page
    pub = run.out / "certificate-issuer.pub.pem"
    assert main(["verify", str(run.out / "certificate.html"), "--trust", str(pub), "--accept-self-assessment",
                 "--evidence", str(run.out / "evidence")]) == 0


def test_replay_of_a_tampered_bundle_derives_nothing(twice, tmp_path, capsys):
    _, _, run = twice
    bundle = shutil.copytree(run.out / "evidence", tmp_path / "evidence")
    conn = sqlite3.connect(bundle / "evidence.sqlite3")
    conn.execute("DROP TRIGGER IF EXISTS exchanges_no_update")
    seq = conn.execute("SELECT MIN(seq) FROM exchanges").fetchone()[0]
    conn.execute("UPDATE exchanges SET request_body = ? WHERE seq = ?", (b"<edited/>", seq))
    conn.commit()
    conn.close()
    assert main(["replay", str(bundle)]) == 1
    out = capsys.readouterr().out
    assert f"BROKEN at row seq {seq}" in out and "no verdict can be re-derived" in out and "case(s) replayed" not in out
    pub = run.out / "certificate-issuer.pub.pem"
    assert main(["verify", str(run.out / "certificate.html"), "--trust", str(pub), "--accept-self-assessment",
                 "--evidence", str(bundle)]) == 1
    assert "hash chain breaks" in capsys.readouterr().out


def test_a_killed_run_claims_no_verdict_and_tools_refuse_it(tmp_path, pki_dir, capsys):
    out = tmp_path / "out"
    for name in ("certificate.html", "report.html", "junit.xml"):      # a finished earlier run's outputs
        (out / name).parent.mkdir(parents=True, exist_ok=True)
        (out / name).write_text("old", encoding="utf-8")
    (out / "notes.txt").write_text("mine", encoding="utf-8")
    proc = subprocess.Popen([sys.executable, "-m", "conformance.cli", "run", "--sut", "reference", "--out", str(out),
                             "--time-scale", SELFTEST_SCALE, "--pki-dir", str(pki_dir), "--case", CASE],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + run_budget()
    while not (out / outputs.RUNNING).exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.01)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert (out / outputs.RUNNING).exists()
    assert not any((out / n).exists() for n in ("certificate.html", "report.html", "junit.xml"))
    assert json.loads((out / "results.json").read_text(encoding="utf-8"))["overall"] == "INTERRUPTED"
    assert (out / "notes.txt").read_text(encoding="utf-8") == "mine"          # not an output: left alone
    assert main(["diff", str(out), str(out)]) == 2 and "did not finish" in capsys.readouterr().err
    assert main(["replay", str(out)]) == 2 and "did not finish" in capsys.readouterr().err


def test_a_run_stopped_by_ctrl_c_says_interrupted(tmp_path, pki_dir):
    out = tmp_path / "out"
    proc = subprocess.Popen([sys.executable, "-m", "conformance.cli", "run", "--sut", "reference", "--out", str(out),
                             "--time-scale", SELFTEST_SCALE, "--pki-dir", str(pki_dir), "--case", CASE],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    deadline = time.monotonic() + run_budget()
    while not (out / "work" / "dts" / CASE).exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.01)      # the case's product state appears once the case has begun
    proc.send_signal(signal.SIGINT)
    stdout, _ = proc.communicate(timeout=run_budget())
    assert proc.returncode == 4, stdout[-3000:]
    results = json.loads((out / "results.json").read_text(encoding="utf-8"))
    assert results["overall"] == "INTERRUPTED" and not (out / outputs.RUNNING).exists()
    page = (out / "certificate.html").read_text(encoding="utf-8")
    assert "INTERRUPTED RUN" in page and "the run was interrupted before every case finished" in page


# --- units ------------------------------------------------------------------------------------------


def test_atomic_write_leaves_the_old_file_or_the_new_one(tmp_path, monkeypatch):
    path = tmp_path / "results.json"
    outputs.atomic_write(path, "old")

    def fail(*_):
        raise OSError("disk full")

    monkeypatch.setattr(outputs.os, "replace", fail)
    with pytest.raises(OSError):
        outputs.atomic_write(path, "new")
    assert path.read_text(encoding="utf-8") == "old" and sorted(p.name for p in tmp_path.iterdir()) == ["results.json"]
    monkeypatch.undo()
    outputs.atomic_write(path, "new")
    assert path.read_text(encoding="utf-8") == "new" and len(list(tmp_path.iterdir())) == 1


def test_earlier_outputs_are_moved_aside_and_only_a_few_kept(tmp_path):
    out = tmp_path
    for i in range(outputs.PREVIOUS_KEPT + 2):
        for name in ("results.json", "certificate.html", "evidence/evidence.sqlite3", "work/dts/c/state.json"):
            (out / name).parent.mkdir(parents=True, exist_ok=True)
            (out / name).write_text(str(i), encoding="utf-8")
        (out / "work" / "pki").mkdir(exist_ok=True)
        outputs.begin(out)
        assert not (out / "certificate.html").exists() and not (out / "work" / "dts").exists()
        assert (out / "work" / "pki").is_dir()                               # a cache, not an output
        assert json.loads((out / "results.json").read_text(encoding="utf-8"))["overall"] == "INTERRUPTED"
        outputs.end(out)
    kept = sorted((out / outputs.PREVIOUS).iterdir())
    assert len(kept) == outputs.PREVIOUS_KEPT
    assert (kept[-1] / "certificate.html").read_text(encoding="utf-8") == str(outputs.PREVIOUS_KEPT + 1)


def _case(case_id: str, requirements: list[str], *findings: Finding) -> dict:
    record = CaseRecord(case_id, "payment", "p", requirements)
    for f in findings:
        record.record(f)
    record.finish()
    return record.as_dict()


def test_requirement_status_comes_from_its_own_findings():
    pay = _case("payment.order-description-and-notice", ["PAY-01", "PAY-02", "PAY-08"],
                Finding(Verdict.PASS, "ok", "PAY-01"), Finding(Verdict.PASS, "ok", "PAY-02"),
                Finding(Verdict.FAIL, "expiry shown wrong", "PAY-08"),
                Finding(Verdict.FAIL, "a SHOULD", "PAY-02", advisory=True))
    status = requirement_status([pay])
    assert {r: s["status"] for r, s in status.items()} == {"PAY-01": "PASS", "PAY-02": "PASS", "PAY-08": "FAIL"}
    # no finding of its own: the case's verdict, with a note when that is not PASS
    stopped = _case("payment.x", ["PAY-01", "PAY-03"], Finding(Verdict.FAIL, "stopped", "PAY-01"))
    status = requirement_status([pay, stopped])
    assert status["PAY-01"] == {"status": "FAIL", "cases": ["payment.order-description-and-notice", "payment.x"],
                                "notes": []}
    assert status["PAY-03"]["status"] == "FAIL" and status["PAY-03"]["notes"] == [f"payment.x: {NO_OWN_FINDING}"]
    # a finding naming no requirement (driver error, not applicable) bears on every requirement of its case
    broken = _case("payment.y", ["PAY-04", "PAY-05"], Finding(Verdict.PASS, "ok", "PAY-04"),
                   Finding(Verdict.ERROR, "driver error: gone"))
    assert {r: s["status"] for r, s in requirement_status([broken]).items()} == {"PAY-04": "ERROR", "PAY-05": "ERROR"}


def test_overall_of_partial_failed_and_interrupted_runs():
    full, partial = {"missing": []}, {"missing": ["some.case"]}
    assert run_overall([Verdict.PASS, Verdict.NOT_APPLICABLE], full, interrupted=False) == "CONFORMANT"
    assert run_overall([Verdict.PASS], partial, interrupted=False) == "INCOMPLETE"
    assert run_overall([Verdict.NOT_APPLICABLE], partial, interrupted=False) == "INCOMPLETE"
    assert run_overall([Verdict.PASS, Verdict.FAIL], partial, interrupted=False) == "NOT CONFORMANT"
    assert run_overall([Verdict.PASS], full, interrupted=True) == "INTERRUPTED"
