"""The HTML report and certificate open in a real browser (headless Chromium) and show every case."""

from __future__ import annotations

import re
import shutil
import subprocess

import pytest

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"]

pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="Chromium is not installed (.ci/run installs it)")


def chromium(tmp_path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([CHROMIUM, *FLAGS, f"--user-data-dir={tmp_path / 'profile'}", *args],
                          capture_output=True, text=True, timeout=90)


@pytest.mark.parametrize("page", ["report.html", "certificate.html"])
def test_page_renders_every_case(page, reference_run, tmp_path):
    url = (reference_run.out / page).as_uri()
    dom = chromium(tmp_path, "--virtual-time-budget=5000", "--dump-dom", url).stdout
    for case_id in reference_run.verdicts():
        assert case_id in dom, f"{case_id} not shown in {page} as rendered"
    shot = tmp_path / f"{page}.png"
    chromium(tmp_path, "--window-size=1240,1754", f"--screenshot={shot}", url)
    assert shot.exists() and shot.stat().st_size > 10_000, "a screenshot with content"


# Issue 15: the report stands on its own. A probe script (added to a copy) records the page's width once
# pytest-html has drawn its rows and every exchange is opened, so "readable at 900 px" is measured.
PROBE = ('<script>window.addEventListener("load", () => setTimeout(() => {'
         'document.querySelectorAll("details").forEach((d) => { d.open = true; });'
         'document.body.setAttribute("data-scroll-width", document.documentElement.scrollWidth);'
         'const pick = document.getElementById("ecdi-verdict"); pick.value = "FAIL";'
         'pick.dispatchEvent(new Event("change"));'
         'document.body.setAttribute("data-fail-rows", [...document.querySelectorAll("#results-table '
         'tbody.results-table-row")].filter((r) => r.style.display !== "none").length); }, 300));'
         '</script></body>')


def rendered_at(tmp_path, report, width: int = 900) -> str:
    probe = tmp_path / "probe.html"
    probe.write_text(report.read_text(encoding="utf-8").replace("</body>", PROBE), encoding="utf-8")
    return chromium(tmp_path, f"--window-size={width},1200", "--virtual-time-budget=5000", "--dump-dom",
                    probe.as_uri()).stdout


def test_passing_run_header_states_verdict_and_counts(reference_run, tmp_path):
    dom = rendered_at(tmp_path, reference_run.out / "report.html")
    results = reference_run.results
    assert f'<h2 class="ecdi-overall">{results["overall"]}</h2>' in dom
    for verdict, n in results["summary"].items():
        assert f"{n} {verdict}" in dom
    assert str(results["seed"]) in dom and results["sut"]["product"] in dom


def test_failing_run_shows_expected_observed_and_exchanges_at_900px(run_ecdi, tmp_path):
    run = run_ecdi(tmp_path / "out", "--mutant", "no-retry", "--case", "reliability.resend-after-timeout",
                   "--case", "transport.valid-declaration-accepted")
    assert run.verdicts() == {"reliability.resend-after-timeout": "FAIL",
                              "transport.valid-declaration-accepted": "PASS"}, run.explain()
    report = run.out / "report.html"
    dom = rendered_at(tmp_path, report)
    assert '<h2 class="ecdi-overall">NOT CONFORMANT</h2>' in dom and "2 case(s) run of" in dom and ": 1 FAIL, 1 PASS" in dom
    assert "<dt>Expected</dt>" in dom and "<dt>Observed</dt>" in dom
    assert 'class="ecdi-exchange"' in dom and "type 929 (Import declaration)" in dom
    assert '<table id="environment"></table>' in dom      # pytest's environment table is gone
    assert 'class="log"' not in dom.split('id="results-table"')[1]   # no grey box repeating the FAIL line
    width = int(re.search(r'data-scroll-width="(\d+)"', dom).group(1))
    assert width <= 900, f"report.html is {width} px wide at a 900 px window"
    assert 'data-fail-rows="1"' in dom, "the verdict filter leaves the failed case only"
    shot = tmp_path / "fail.png"
    chromium(tmp_path, "--window-size=900,1600", f"--screenshot={shot}", report.as_uri())
    assert shot.exists() and shot.stat().st_size > 10_000, "a screenshot with content"
    pdf = tmp_path / "fail.pdf"
    chromium(tmp_path, "--no-pdf-header-footer", f"--print-to-pdf={pdf}", report.as_uri())
    assert pdf.exists() and pdf.stat().st_size > 10_000, "the report prints"
