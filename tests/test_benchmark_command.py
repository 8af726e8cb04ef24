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


def test_the_sessions_part_states_the_cpu_bound_of_many_sessions_at_once():
    """Sessions at once need their CPU over the machine's cores: the row gives that bound as a multiple of
    one session's time, and the CPU a session may cost for the goal (≤ 2 × one) to be reachable."""
    import importlib.util

    sys.path.insert(0, str(ROOT / "benchmarks"))
    try:
        spec = importlib.util.spec_from_file_location("ecdi_benchmark_run", ROOT / "benchmarks" / "run.py")
        bench = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(bench)
    finally:
        sys.path.remove(str(ROOT / "benchmarks"))
    figure, value, note = bench.cpu_bound_row(20, 1.2, 0.3, 2, 3.0)
    assert figure == "CPU bound of 20 at once" and value == "≥ 15.0 s"
    assert note.startswith("20 sessions need ≥ 20 × 1.50 CPU-s / 2 cores = 15.0 s = 5.0 × one session ")
    assert note.endswith("≤ 2 × one needs ≤ 0.60 CPU-s a session")
