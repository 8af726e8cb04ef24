"""The evidence bundle replays offline: every verdict re-derived as recorded; any edit shows as a difference."""

from __future__ import annotations

import json
import shutil

import pytest

from conformance.cli import main
from conformance.report.replay import BundleError, replay


@pytest.fixture
def bundle(reference_run, tmp_path):
    """A private copy of the reference run's evidence bundle, safe to edit."""
    return shutil.copytree(reference_run.out / "evidence", tmp_path / "evidence")


def test_bundle_holds_log_exchanges_scenarios_and_results(reference_run):
    evidence = reference_run.out / "evidence"
    for name in ("evidence.sqlite3", "results.json", "manifest.json"):
        assert (evidence / name).is_file(), name
    for case in reference_run.results["cases"]:
        tape = json.loads((evidence / "cases" / f"{case['id']}.json").read_text(encoding="utf-8"))
        assert tape["case"]["id"] == case["id"]
        ops = {e["op"] for e in tape["tape"]}
        # what each verdict rests on was recorded: the wire as exchanges, the product's answers as performs
        # (a case judging only the statement file, CAP-05, asks the DTS nothing)
        assert "begin_case" in ops, case["id"]
        if "wire" in case["evidence"]:          # this case's exchanges, or the whole campaign's (ENV-02, CAP-04)
            assert ops & {"exchanges", "campaign_exchanges"}, (case["id"], ops)
        if "driver-action" in case["evidence"]:
            assert "perform" in ops, (case["id"], ops)
    manifest = json.loads((evidence / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["evidence"] == reference_run.results["evidence"] and manifest["statement"]["pixit"]


def test_replay_rederives_every_verdict(reference_run, capsys):
    report = replay(reference_run.out)
    assert report.differences == 0, [c.differences for c in report.cases]
    assert {c.case_id: c.replayed for c in report.cases} == reference_run.verdicts()
    assert main(["replay", str(reference_run.out)]) == 0
    out = capsys.readouterr().out
    assert "evidence chain: intact" in out and "0 with differences" in out


def test_an_edited_outcome_changes_the_rederived_verdict(bundle, capsys):
    path = bundle / "cases" / "transport.valid-declaration-accepted.json"
    data = json.loads(path.read_text(encoding="utf-8"))
    perform = next(e for e in data["tape"] if e["op"] == "perform")
    perform["outcome"]["state"] = "rejected"
    path.write_text(json.dumps(data), encoding="utf-8")
    assert main(["replay", str(bundle)]) == 1
    out = capsys.readouterr().out
    assert "DIFF  transport.valid-declaration-accepted: verdict PASS recorded, FAIL re-derived" in out


def test_a_tape_out_of_step_with_the_case_is_reported(bundle):
    path = bundle / "cases" / "signature.sha256-only.json"
    data = json.loads(path.read_text(encoding="utf-8"))
    data["tape"] = [e for e in data["tape"] if e["op"] != "data.document"]
    path.write_text(json.dumps(data), encoding="utf-8")
    case = next(c for c in replay(bundle).cases if c.case_id == "signature.sha256-only")
    assert any("replay diverged from the recording" in d for d in case.differences), case.differences


@pytest.mark.parametrize("damage,expected", [
    (lambda b: (b / "manifest.json").unlink(), "bundle manifest missing"),
    (lambda b: (b / "results.json").write_text("{not json"), "bundle results unreadable"),
    (lambda b: (b / "evidence.sqlite3").write_bytes(b"not sqlite"), "not an ECDI evidence log"),
])
def test_a_bad_bundle_is_one_clear_line(bundle, damage, expected, capsys):
    damage(bundle)
    assert main(["replay", str(bundle)]) == 2
    err = capsys.readouterr().err
    assert expected in err and "Traceback" not in err


def test_replay_of_a_missing_folder_is_a_bundle_error(tmp_path):
    with pytest.raises(BundleError):
        replay(tmp_path / "nothing")


def test_replay_reproduces_a_mutants_failure(tmp_path, run_ecdi):
    from conformance.reference_dts.mutants import MUTANTS

    mutant = sorted(MUTANTS.values(), key=lambda m: m.name)[0]
    run = run_ecdi(tmp_path / "mutant", "--mutant", mutant.name, "--case", mutant.caught_by)
    assert run.verdicts() == {mutant.caught_by: "FAIL"}
    report = replay(run.out)
    assert report.differences == 0, [c.differences for c in report.cases]
    assert {c.case_id: c.replayed for c in report.cases} == run.verdicts()
