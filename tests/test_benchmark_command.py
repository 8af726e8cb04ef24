"""The benchmark command (benchmarks/run.py) runs end to end and prints its table: a smoke test with tiny
sizes, no npm peers and no "sessions at once" (a second batch of `ecdi run` processes: the main job's row
runs the same code). It asserts no speed (speed targets live in benchmarks/, never in unit tests)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.long
def test_quick_benchmark_prints_the_table(tmp_path):
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    proc = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "run.py"), "--quick", "--skip", "sessions",
                           "--work", str(tmp_path)],
                          capture_output=True, text=True, timeout=180, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    table = proc.stdout
    assert "ECDI gateway benchmark" in table and "cores" in table           # date and machine
    for figure in ("accepted 929/s at c=1", "same checks in a loop", "gateway best ÷ floor", "bare aiohttp at c=1",
                   "gateway peak RSS", "held at once", "just under S_max", "critical path"):
        assert figure in table, figure
    assert "skipped" not in table.split("bare aiohttp")[0]
    rows = [line for line in table.splitlines() if line.startswith("| ") and "accepted 929/s" in line]
    assert all("/s" in row.split("|")[3] for row in rows)
