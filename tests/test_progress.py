"""Console progress: what a person watching a long run sees, on a terminal and in a log."""

from __future__ import annotations

import io
import re
import sys
from types import SimpleNamespace

from rich.console import Console

from conformance import progress as progress_module
from conformance.context import CaseContext
from conformance.drivers.base import Action
from conformance.progress import Progress, clock_text
from conftest import SELFTEST_SCALE


class Clock:
    def __init__(self):
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def plain(total: int, clock: Clock) -> tuple[Progress, io.StringIO]:
    stream = io.StringIO()
    return Progress(total, mode="plain", stream=stream, clock=clock), stream


def test_plain_lines_count_verdicts_and_estimate_time_left():
    clock = Clock()
    prog, stream = plain(3, clock)
    with prog:
        prog.start("a.one")
        clock.now += 10
        prog.finished("a.one", "PASS")
        prog.start("b.two")
        prog.waiting("b.two", 15.0, "poll_max_total")
        prog.waiting("b.two", 0.5, "a short wait")          # not worth a line in a log
        clock.now += 15
        prog.finished("b.two", "FAIL")
    lines = stream.getvalue().splitlines()
    assert lines[0] == "3 cases to run"
    assert lines[1] == "[1/3] PASS           a.one (10.0 s; elapsed 0:10, about 0:20 left)"
    assert lines[2] == "b.two: waiting 15.0 s: poll_max_total"
    assert lines[3].startswith("[2/3] FAIL           b.two (15.0 s; elapsed 0:25, about 0:12 left)")
    assert lines[-1] == "2/3 cases in 0:25: 1 FAIL, 1 PASS"
    assert len(lines) == 5


def test_time_left_spreads_over_cases_running_at_once_and_covers_announced_waits():
    """Several cases at once (``--jobs``): the mean per case is shared by those running; a wait announced
    longer than that estimate is the floor."""
    clock = Clock()
    prog, _ = plain(10, clock)
    assert prog.left_seconds() is None and "estimating" in prog.times_text()
    for name in ("a", "b"):
        prog.start(name)
    clock.now += 4
    prog.finished("a", "PASS")
    prog.start("c")
    assert prog.left_seconds() == 9 * 4 / 2
    prog.waiting("c", 60.0, "poll_max_total")
    assert prog.left_seconds() == 60.0


def test_cases_on_lanes_show_the_time_their_lane_took_and_leave_the_estimate_when_they_end():
    """``ecdi run --jobs``: a case starts and ends on its lane (``notify_started``/``notify_ended``), and the
    pytest hooks see it only afterwards, in catalogue order; its line shows the lane's time, not the instant
    between those hooks, and a case ended but not yet reported no longer counts as work left."""
    clock = Clock()
    prog, stream = plain(4, clock)
    with prog:
        progress_module.notify_started("a.long")
        progress_module.notify_started("b.short")
        clock.now += 2
        progress_module.notify_ended("b.short", 2.0)       # reported after a.long, which comes first
        assert set(prog.running) == {"a.long"}
        assert prog.left_seconds() == (4 - 1) * 2.0 / 1
        clock.now += 13
        progress_module.notify_ended("a.long", 15.0)
        assert prog.left_seconds() == (4 - 2) * 8.5 / 1
        for item in ("a.long", "b.short"):                 # the hooks, in catalogue order, at once
            prog.start(item)
            prog.finished(item, "PASS")
    lines = stream.getvalue().splitlines()
    assert lines[1].startswith("[1/4] PASS           a.long (15.0 s; elapsed 0:15, ")
    assert lines[2].startswith("[2/4] PASS           b.short (2.0 s; elapsed 0:15, ")
    assert progress_module._ACTIVE is None


def test_live_panel_shows_each_running_case_and_what_it_waits_for():
    clock = Clock()
    prog = Progress(5, mode="live", stream=io.StringIO(), clock=clock)
    prog.start("reliability.polling-stops-at-max-total")
    prog.waiting("reliability.polling-stops-at-max-total", 15.0, "poll_max_total (the DTS to lodge 929/8)")
    prog.start("transport.https-only")
    prog.waiting("transport.https-only", None, "the DTS to lodge 929/8")
    clock.now += 3
    console = Console(file=io.StringIO(), width=140, record=True)
    console.print(prog._panel())
    text = console.export_text()
    assert "0/5 cases" in text and "elapsed 0:03" in text
    assert re.search(r"reliability\.polling-stops-at-max-total +3\.0 s waiting 12\.0 s: poll_max_total", text)
    assert re.search(r"transport\.https-only +3\.0 s waiting for the DTS to lodge 929/8", text)


def test_a_case_announces_what_its_action_waits_on():
    """What the scenario makes the DTS wait for, with the product's own PIXIT value under the run's scale."""
    seen = []
    ctx = SimpleNamespace(spec=SimpleNamespace(id="reliability.x"),
                          pixit_seconds=lambda key: {"poll_max_total_s": 15.0, "poll_interval_s": 0.2,
                                                     "t_send_s": 1.5}[key])
    progress_module._ACTIVE = SimpleNamespace(waiting=lambda *a: seen.append(a))
    try:
        for scenario in ({"name": "never-processed", "rules": [], "pending_queries": 10_000},
                         {"name": "slow-processing", "rules": [], "pending_queries": 2},
                         {"rules": [{"then": {"action": "delay", "seconds": 4.2}}]},
                         {"rules": [{"then": {"action": "hold"}}]},
                         {"name": "accept", "rules": []}):
            ctx.scenario = scenario
            CaseContext._announce_wait(ctx, Action(kind="lodge", type="929", function="8"))
    finally:
        progress_module._ACTIVE = None
    assert seen[1][0] == "reliability.x" and abs(seen.pop(1)[1] - 0.6) < 1e-9
    assert seen == [("reliability.x", 15.0, "poll_max_total (the DTS to lodge 929/8)"),
                    ("reliability.x", 4.2, "a reply delayed by the gateway (the DTS to lodge 929/8)"),
                    ("reliability.x", 1.5, "t_send after a held request (the DTS to lodge 929/8)"),
                    ("reliability.x", None, "the DTS to lodge 929/8")]


def test_clock_text():
    assert clock_text(0) == "0:00" and clock_text(75.4) == "1:15" and clock_text(3725) == "1:02:05"


def test_a_run_in_a_log_shows_plain_progress_and_ends_with_counts_and_outputs(reference_run):
    """The reference run's stderr is no terminal: plain lines, one per verdict; stdout ends with the overall
    verdict, the counts, the output folder and, scaled, the self-assessment note; no pytest dots."""
    total = len(reference_run.results["cases"])
    assert f"{total} cases to run" in reference_run.stderr
    assert re.search(rf"^\[{total}/{total}\] [A-Z-]+ +\S+ \(", reference_run.stderr, re.M)
    assert re.search(rf"^{total}/{total} cases in \d+:\d\d: ", reference_run.stderr, re.M)
    assert re.search(r"^reliability\.polling-stops-at-max-total: waiting \d+\.\d s: poll_max_total",
                     reference_run.stderr, re.M), "the announced wait of a case, from inside pytest's capture"
    took = re.search(r"^\[\d+/\d+\] PASS +reliability\.polling-stops-at-max-total \((\d+\.\d) s;",
                     reference_run.stderr, re.M)
    assert took and float(took[1]) >= 5, "the case's own time on its lane (poll_max_total, scaled), not 0.0 s"
    assert re.search(rf"^CONFORMANT: {total} cases, ", reference_run.stdout, re.M)
    assert f"outputs: {reference_run.out}" in reference_run.stdout
    assert "a self-assessment (spec §2.1)" in reference_run.stdout
    assert not re.search(r"^[.sFE]{3,}", reference_run.stdout, re.M), "pytest's dots are silenced"


def test_on_a_terminal_the_run_draws_a_live_panel(tmp_path, pki_dir):
    """In a pseudo-terminal: the panel (redrawn with control codes) and the verdict line, then the summary."""
    pexpect = __import__("pexpect")
    child = pexpect.spawn(sys.executable, ["-m", "conformance.cli", "run", "--out", str(tmp_path / "out"),
                                           "--time-scale", SELFTEST_SCALE, "--pki-dir", str(pki_dir),
                                           "--case", "transport.https-only"],
                          encoding="utf-8", timeout=120, dimensions=(40, 160))
    child.expect(pexpect.EOF)
    assert "\x1b[" in child.before, "drawn with control codes"
    text = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", child.before)
    assert "0/1 cases · elapsed" in text and "transport.https-only" in text
    assert re.search(r"PASS.* transport\.https-only", text)
    assert "1/1 cases in" in text and "INCOMPLETE (1 of" in text
