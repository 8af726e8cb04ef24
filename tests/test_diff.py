"""Regression across profiles: the reference DTS on 1.0 and on 1.1, compared requirement by requirement."""

from __future__ import annotations

import json

import pytest

from conformance.cli import main
from conformance.report.diff import compare, load_run


@pytest.fixture(scope="module")
def run_11(tmp_path_factory, run_ecdi):
    return run_ecdi(tmp_path_factory.mktemp("run-1.1"), "--profile", "ecdi-1.1")


def test_reference_dts_is_conformant_under_11(run_11):
    assert run_11.returncode == 0, run_11.stdout[-3000:] + run_11.stderr[-3000:]
    assert run_11.results["overall"] == "CONFORMANT" and run_11.results["profile"]["id"] == "ecdi-1.1"


def test_diff_10_11_shows_otp_maker_checker_and_sha1(reference_run, run_11, tmp_path, capsys):
    page = tmp_path / "diff.html"
    assert main(["diff", str(reference_run.out), str(run_11.out), "--html", str(page)]) == 1
    out = capsys.readouterr().out
    assert "T_otp            120 | 300" in out and "Annex A #1" in out
    assert "PAY-11   not tested (SHOULD) | not tested (MUST)" in out and "Annex A #2" in out
    assert "SIG-06   not tested (CGW only) | not in profile" in out and "SIG-07" in out and "Annex A #3" in out
    html = page.read_text(encoding="utf-8")
    for text in ("Annex A #1", "Maker ≠ checker", "SHA-1 in request signatures", "ecdi-1.1"):
        assert text in html


def test_verdict_change_is_explained_by_the_product(reference_run, tmp_path):
    mutated = json.loads((reference_run.out / "results.json").read_text(encoding="utf-8"))
    mutated["sut"]["version"] = "0.2.0"
    mutated["cases"][0]["verdict"] = "FAIL"
    (tmp_path / "results.json").write_text(json.dumps(mutated), encoding="utf-8")
    comparison = compare([load_run(reference_run.out), load_run(tmp_path)])
    changed = [r for r in comparison.requirements if r.changed]
    assert changed and all("PASS" in r.cells and "FAIL" in r.cells for r in changed)
    assert all(any("the product differs" in c for c in r.causes) for r in changed)
    assert not comparison.params


def test_same_run_twice_is_no_change_and_summarises_many_runs(reference_run, run_11, tmp_path, capsys):
    page = tmp_path / "d.html"
    assert main(["diff", str(reference_run.out), str(reference_run.out), "--html", str(page)]) == 0
    assert "Requirement changes (0 of" in capsys.readouterr().out
    assert main(["diff", str(reference_run.out), str(run_11.out), str(reference_run.out), "--html", str(page)]) == 1
    html = page.read_text(encoding="utf-8")
    assert html.count("<td>ECDI-Reference-DTS 0.1.0</td>") == 3


def test_a_folder_without_results_is_one_clear_line(tmp_path, reference_run, capsys):
    assert main(["diff", str(tmp_path), str(reference_run.out)]) == 2
    err = capsys.readouterr().err
    assert "no results.json" in err and "Traceback" not in err
