"""Cases at once (``ecdi run --jobs N``, issue 14): the scheduler's order, the campaign a case reads, the
product's ``[driver] instances``, and a run whose verdicts and evidence do not depend on the number of jobs."""

from __future__ import annotations

import json
import re
import threading
import time
from itertools import groupby
from pathlib import Path
from types import SimpleNamespace

import pytest

from conformance.lanes import Campaign, driver_instances, lane_user
from conformance.parallel import Execution, Scheduler
from conformance.sut import SutError, load_sut

# --- the scheduler -------------------------------------------------------------------------------------


def items(*names):
    return [SimpleNamespace(nodeid=n, name=n) for n in names]


def test_lanes_take_runs_first_cases_first_then_the_catalogue_order_one_case_per_lane_at_a_time():
    started, running, most = [], [], [0]
    lock = threading.Lock()

    def work(item, lane):
        with lock:
            started.append(item.name)
            running.append(item.name)
            most[0] = max(most[0], len(running))
        time.sleep(0.02)
        with lock:
            running.remove(item.name)
        return SimpleNamespace(lane=lane)

    cases = items("a", "b", "long", "c", "d")
    scheduler = Scheduler(cases, ["lane-0", "lane-1"], work, first=lambda i: i.name == "long").start()
    for item in cases:
        scheduler.wait(item)
    assert started[0] == "long" and [n for n in started if n != "long"] == ["a", "b", "c", "d"]
    assert most[0] == 2 and {r.lane for r in scheduler.results.values()} == {"lane-0", "lane-1"}


def test_a_lane_fault_is_the_case_s_setup_error_and_the_other_cases_still_run():
    def work(item, lane):
        if item.name == "bad":
            raise RuntimeError("lane broke")
        return SimpleNamespace(setup_error=None)

    cases = items("bad", "good")
    scheduler = Scheduler(cases, [None], work).start()
    for item in cases:
        scheduler.wait(item)
    assert "lane broke" in str(scheduler.results["bad"].setup_error)
    assert scheduler.results["good"].setup_error is None


def test_stopped_scheduler_starts_nothing_more():
    gate = threading.Event()
    scheduler = Scheduler(items("a", "b"), [None], lambda item, lane: gate.wait(5) and Execution()).start()
    scheduler.stop()
    gate.set()
    time.sleep(0.1)
    assert "b" not in scheduler.results and scheduler.stopped.is_set()


def test_a_rerun_runs_alone_no_case_starts_meanwhile_and_the_running_ones_end_first():
    """A case re-run because the harness's own load disturbed it runs on a quiet harness (plugin._attempts)."""
    lock, running, seen = threading.Lock(), [], {}
    holder = {}

    def work(item, lane):
        with lock:
            running.append(item.name)
        if item.name == "rerun":
            time.sleep(0.05)                       # the others are running now
            with holder["scheduler"].alone(within=5):
                with lock:
                    seen["alone"] = list(running)
                time.sleep(0.2)
                with lock:
                    seen["after"] = list(running)
        else:
            time.sleep(0.15)
        with lock:
            running.remove(item.name)
        return SimpleNamespace()

    cases = items("rerun", "b", "c", "d", "e", "f")
    scheduler = holder["scheduler"] = Scheduler(cases, ["l0", "l1", "l2"], work)
    scheduler.start()
    for item in cases:
        scheduler.wait(item)
    assert seen["alone"] == ["rerun"] and seen["after"] == ["rerun"]
    assert set(scheduler.results) == {c.name for c in cases}


def test_a_rerun_waits_for_the_others_only_so_long():
    gate = threading.Event()
    holder, waited = {}, {}

    def work(item, lane):
        if item.name == "campaign":                # waits for the re-run's case: must not deadlock it
            gate.wait(5)
        else:
            began = time.monotonic()
            with holder["scheduler"].alone(within=0.3):
                waited["s"] = time.monotonic() - began
            gate.set()
        return SimpleNamespace()

    cases = items("campaign", "rerun")
    scheduler = holder["scheduler"] = Scheduler(cases, ["l0", "l1"], work)
    scheduler.start()
    for item in cases:
        scheduler.wait(item)
    assert 0.25 <= waited["s"] < 3


# --- the campaign -----------------------------------------------------------------------------------------

class FakeLane:
    def __init__(self, exchanges):
        self.gateway_control = SimpleNamespace(own=SimpleNamespace(campaign_exchanges=lambda: exchanges))


def ex(seq, case_id):
    return SimpleNamespace(seq=seq, case_id=case_id)


def test_a_case_reads_the_campaign_of_the_cases_before_it_once_they_have_ended():
    ended = [threading.Event() for _ in range(4)]
    campaign = Campaign(["a", "b", "last", "c-after"], ended, threading.Event())
    lanes = [FakeLane([ex(1, "a"), ex(4, "last")]), FakeLane([ex(2, "b@2"), ex(3, "c-after")])]
    seen = []
    reader = threading.Thread(target=lambda: seen.extend(campaign.exchanges("last", lanes)))
    ended[0].set()
    reader.start()
    time.sleep(0.3)
    assert not seen and reader.is_alive()          # "b" has not ended yet
    ended[1].set()
    reader.join(5)
    assert [e.seq for e in seen] == [1, 2, 4]      # arrival order, every lane; a later case's exchange left out


def test_a_stopped_run_does_not_keep_a_campaign_reader_waiting():
    stopped = threading.Event()
    stopped.set()
    campaign = Campaign(["a", "b"], [threading.Event(), threading.Event()], stopped)
    assert campaign.exchanges("b", [FakeLane([ex(1, "b")])]) == [ex(1, "b")]


# --- lanes and the product's instances ------------------------------------------------------------------

def test_lane_user_ids_are_user_ids_of_their_own():
    assert lane_user("nguyenvana", 0) == "nguyenvana"
    assert lane_user("nguyenvana", 3) == "nguyenvana.j3"
    long = "x" * 50
    assert re.fullmatch(r"[A-Za-z0-9._@-]{1,50}", lane_user(long, 12))


def sut_file(tmp_path: Path, driver: str) -> Path:
    from conformance.reference_dts.config import STATEMENT_FILE

    (tmp_path / "sut.toml").write_text(f'statement = "{STATEMENT_FILE}"\n[driver]\n{driver}\n', encoding="utf-8")
    return tmp_path / "sut.toml"


def test_a_sut_file_states_how_many_instances_may_run(tmp_path):
    assert load_sut(sut_file(tmp_path, 'kind = "command"\nlodge = "true"')).instances == 1
    sut = load_sut(sut_file(tmp_path, 'kind = "command"\nlodge = "true"\ninstances = 4'))
    assert sut.instances == 4 and "instances" not in sut.driver
    assert driver_instances(SimpleNamespace(name="command", sut=sut)) == 4
    assert driver_instances(SimpleNamespace(name="manual", sut=sut)) == 1
    assert driver_instances(SimpleNamespace(name="reference")) is None


@pytest.mark.parametrize("driver, problem", [
    ('kind = "command"\nlodge = "true"\ninstances = 0', "at least 1"),
    ('kind = "command"\nlodge = "true"\ninstances = true', "at least 1"),
    ('kind = "manual"\ninstances = 2', "one instance"),
])
def test_a_bad_instances_key_is_named(tmp_path, driver, problem):
    with pytest.raises(SutError, match=f"driver.instances: .*{problem}"):
        load_sut(sut_file(tmp_path, driver))


def test_jobs_below_one_is_a_usage_error(run_ecdi, tmp_path):
    result = run_ecdi(tmp_path / "o", "--jobs", "0", "--case", "envelope.version-claimed")
    assert result.returncode == 2 and "--jobs must be at least 1" in result.stderr
    assert "Traceback" not in result.stderr


# --- the same run at any N ------------------------------------------------------------------------------

# Cases that share what lanes could share: the campaign (both readers), TLS probes, the gateway clock
# (an OTP's expiry), a certificate install, a crash and resume, restarts and a retransmission's timing.
MIXED = ["capability.unclaimed-never-sent", "envelope.message-ids-fresh", "transport.https-only",
         "transport.refuses-untrusted-tls", "payment.expired-otp-renewed", "payment.maker-and-checker",
         "signature.sha256-only", "reliability.resume-after-crash", "reliability.resend-after-timeout",
         "envelope.business-references"]

_LANE_USER = re.compile(r"\.j[0-9]+\b")
_VARYING = re.compile(r"[\w.:-]*[0-9][\w.:-]*")      # a word with a digit: times, counts, UUIDs, references


def evidence(out: Path) -> dict:
    """Each case's verdict, findings and what it did and read (its tape's operations), modulo times,
    numbers, random identifiers and lane UserIds."""
    cases = {}
    for path in sorted((out / "evidence" / "cases").glob("*.json")):
        bundle = json.loads(path.read_text(encoding="utf-8"))
        case = bundle["case"]
        cases[case["id"]] = {
            "verdict": case["verdict"],
            "findings": [(f["verdict"], f["requirement"], f["evidence"], _VARYING.sub("#", _LANE_USER.sub("", f["message"])))
                         for f in case["findings"]],
            # how often a case polled (for a kill moment, a reply) is timing: a run of one operation counts once
            "tape": [op for op, _ in groupby(e["op"] for e in bundle["tape"] if e["op"] != "lag")],
        }
    return cases


@pytest.mark.long
@pytest.mark.timeout(400)
def test_one_job_and_the_default_give_the_same_verdicts_and_evidence(run_ecdi, tmp_path):
    chosen = [a for c in MIXED for a in ("--case", c)]
    serial = run_ecdi(tmp_path / "one", "--jobs", "1", *chosen)
    parallel = run_ecdi(tmp_path / "default", *chosen)
    assert set(serial.verdicts().values()) <= {"PASS", "NOT-APPLICABLE"}, serial.explain()
    assert serial.verdicts() == parallel.verdicts(), parallel.explain()
    assert [c["id"] for c in serial.results["cases"]] == [c["id"] for c in parallel.results["cases"]]
    one, default = evidence(serial.out), evidence(parallel.out)
    assert one.keys() == default.keys() == set(MIXED)
    for case_id in MIXED:
        assert one[case_id] == default[case_id], case_id
