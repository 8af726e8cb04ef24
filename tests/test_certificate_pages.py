"""The certificate prints on A4 and the report can be filtered by family and verdict (headless Chromium).

Documented command for a manual look: ``chromium --headless --no-pdf-header-footer
--print-to-pdf=cert.pdf OUT/certificate.html``.
"""

from __future__ import annotations

import re
import shutil
import subprocess

import pytest

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
         "--disable-component-update", "--disable-sync"]
A4_POINTS = (595, 842)


def chromium(tmp_path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([CHROMIUM, *FLAGS, f"--user-data-dir={tmp_path / 'profile'}", *args],
                          capture_output=True, text=True, timeout=90)


def test_report_rows_carry_family_and_verdict_filters(reference_run):
    page = (reference_run.out / "report.html").read_text(encoding="utf-8")
    assert 'id="ecdi-family"' in page and 'id="ecdi-verdict"' in page
    for family in {c["family"] for c in reference_run.results["cases"]}:
        assert f'<option value="{family}">' in page
    assert "col-family" in page


@pytest.mark.skipif(CHROMIUM is None, reason="Chromium is not installed (.ci/run installs it)")
def test_certificate_prints_on_a4(reference_run, tmp_path):
    pdf = tmp_path / "certificate.pdf"
    chromium(tmp_path, "--no-pdf-header-footer", f"--print-to-pdf={pdf}", (reference_run.out / "certificate.html").as_uri())
    data = pdf.read_bytes()
    boxes = re.findall(rb"/MediaBox\s*\[\s*0\s+0\s+([\d.]+)\s+([\d.]+)\s*\]", data)
    assert boxes and all((round(float(w)), round(float(h))) == A4_POINTS for w, h in boxes), boxes
    pages = len(re.findall(rb"/Type\s*/Page[^s]", data))
    assert 1 <= pages <= 4, f"{pages} A4 pages for {len(reference_run.verdicts())} cases"   # bilingual titles: decisions.md


@pytest.mark.skipif(CHROMIUM is None, reason="Chromium is not installed (.ci/run installs it)")
def test_report_renders_the_family_column(reference_run, tmp_path):
    dom = chromium(tmp_path, "--virtual-time-budget=5000", "--dump-dom", (reference_run.out / "report.html").as_uri()).stdout
    cells = re.findall(r'<td class="col-family">([^<]*)</td>', dom)
    assert sorted(cells) == sorted(c["family"] for c in reference_run.results["cases"])
