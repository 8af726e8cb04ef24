"""Regression across profiles: the reference DTS on 1.0 and on 1.1, compared requirement by requirement."""

from __future__ import annotations

import json

import pytest

from conformance.cli import main
from conformance.report.diff import compare, load_run


@pytest.fixture(scope="module")
def run_11(shared_ecdi):
    return shared_ecdi("run-1.1", "--profile", "ecdi-1.1")


def test_reference_dts_is_conformant_under_11(run_11):
    assert run_11.returncode == 0, run_11.explain()
    assert run_11.results["overall"] == "CONFORMANT" and run_11.results["profile"]["id"] == "ecdi-1.1"


def test_diff_10_11_shows_otp_maker_checker_and_sha1(reference_run, run_11, tmp_path, capsys):
    page = tmp_path / "diff.html"
    assert main(["diff", str(reference_run.out), str(run_11.out), "--html", str(page)]) == 1
    out = capsys.readouterr().out
    assert "T_otp            120 | 300" in out and "Annex A #1" in out
    assert "PAY-11   PASS (SHOULD) | PASS (MUST)" in out and "Annex A #2" in out   # payment.maker-cannot-approve
    assert "SIG-06   not tested (CGW only) | not in profile" in out and "SIG-07" in out and "Annex A #3" in out
    html = page.read_text(encoding="utf-8")
    for text in ("Annex A #1", "Maker ≠ checker", "SHA-1 in request signatures", "ecdi-1.1"):
        assert text in html


def test_verdict_change_is_explained_by_the_product(reference_run, tmp_path):
    mutated = json.loads((reference_run.out / "results.json").read_text(encoding="utf-8"))
    mutated["sut"]["version"] = "0.2.0"
    mutated["cases"][0]["verdict"] = "FAIL"
    for finding in mutated["cases"][0]["findings"]:     # a requirement's status comes from its findings
        finding["verdict"] = "FAIL"
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


# --- the legacy configurations: a DTS built for 1.0 and never updated, run under both profiles -----------

LEGACY_CASES = ("transport.valid-declaration-accepted", "payment.order-description-and-notice",
                "payment.maker-cannot-approve")
PROFILES = ("ecdi-1.0", "ecdi-1.1")


@pytest.fixture(scope="module")
def legacy_runs(shared_ecdi):
    cases = [arg for case in LEGACY_CASES for arg in ("--case", case)]
    return [shared_ecdi(f"legacy-{p}", "--mutant", "legacy-1.0", "--profile", p, *cases) for p in PROFILES]


@pytest.fixture(scope="module")
def sha1_runs(shared_ecdi):
    return [shared_ecdi(f"legacy-sha1-{p}", "--mutant", "legacy-1.0-sha1", "--profile", p, "--case", LEGACY_CASES[0])
            for p in PROFILES]


def changed_rows(runs) -> dict:
    return {r.key: r for r in compare([load_run(run.out) for run in runs]).requirements if r.changed}


def explained(row, item: int) -> bool:
    return any(c.startswith(f"Annex A #{item} ") for c in row.causes)


def test_legacy_configuration_conforms_to_10_with_the_pay11_should_reported(legacy_runs):
    run_10 = legacy_runs[0]
    assert run_10.verdicts() == dict.fromkeys(LEGACY_CASES, "PASS"), run_10.results["cases"]
    assert run_10.results["overall"] == "INCOMPLETE" and run_10.results["sut"]["mutant"] == "legacy-1.0"
    maker = next(c for c in run_10.results["cases"] if c["id"] == "payment.maker-cannot-approve")
    assert maker["should_not_met"] == ["PAY-11"]   # CAP-02: reported, not counted


def test_diff_of_legacy_configuration_shows_the_otp_and_maker_checker_changes(legacy_runs, tmp_path, capsys):
    run_10, run_11 = legacy_runs
    assert main(["diff", str(run_10.out), str(run_11.out), "--html", str(tmp_path / "d.html")]) == 1
    out = capsys.readouterr().out
    assert "T_otp            120 | 300" in out and "Annex A #1" in out
    rows = changed_rows(legacy_runs)
    # maker/checker (Annex A #2): PAY-11 goes from a SHOULD (not met, reported) to a MUST that fails
    assert rows["PAY-11"].cells == ["PASS", "FAIL"] and rows["PAY-11"].levels == ["SHOULD", "MUST"]
    assert explained(rows["PAY-11"], 2)
    # T_otp (Annex A #1): the expiry the product shows is 120 s after reception, no longer the reply's
    assert rows["PAY-08"].cells == ["PASS", "FAIL"] and explained(rows["PAY-08"], 1)
    # ... and only PAY-08: the requirements its case checked and found kept stay PASS (status from findings)
    assert "PAY-01" not in rows and "PAY-02" not in rows
    assert "SIG-01" not in rows          # it signs with SHA-256: Annex A #3 does not touch it


def test_diff_of_the_sha1_configuration_shows_the_sha1_change(sha1_runs, capsys):
    rows = changed_rows(sha1_runs)
    # SHA-1 (Annex A #3): accepted with W0001 under 1.0, refused G0007 under 1.1
    assert rows["SIG-01"].cells == ["PASS", "FAIL"] and explained(rows["SIG-01"], 3)
    assert any("G0007" in c for c in rows["SIG-01"].causes)


def test_html_goes_beside_the_first_run_not_into_the_current_folder(reference_run, tmp_path, monkeypatch, capsys):
    first, second, here = tmp_path / "a", tmp_path / "b", tmp_path / "here"
    for folder in (first, second, here):
        folder.mkdir()
    for folder in (first, second):
        (folder / "results.json").write_bytes((reference_run.out / "results.json").read_bytes())
    monkeypatch.chdir(here)
    assert main(["diff", str(first), str(second / "results.json")]) == 0
    assert (first / "diff.html").is_file() and not list(here.iterdir())
    assert f"html: {first / 'diff.html'}" in capsys.readouterr().out
