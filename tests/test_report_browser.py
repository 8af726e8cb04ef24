"""The HTML report and certificate open in a real browser (headless Chromium) and show every case."""

from __future__ import annotations

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
