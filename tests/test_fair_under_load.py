"""Cases that failed the correct reference DTS when the machine's load delayed the gateway (fair14): each is
run with every first attempt of a declaration answered past the DTS's t_send (tests/slow_first), so the DTS
times out and retransmits as REL-03 requires; the case must still judge the reply the DTS really acted on."""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

import pytest

from conformance.commands.run import EXIT_CODES

SLOW_FIRST = Path(__file__).parent / "slow_first"


@pytest.mark.parametrize("case_id, declarations", [("signature.gateway-certificate-renewal", 3),
                                                    ("signature.verifies-replies", 2),
                                                    ("reply.warning-not-failure", 1),
                                                    ("reply.unknown-elements-ignored", 1),
                                                    ("security.misrouted-replies", 5),
                                                    ("transport.final-outcomes-not-retransmitted", 1),
                                                    ("reply.malformed-reply-refused", 1),
                                                    ("reliability.query-settles-unknown-outcome", 1)])
def test_cases_judge_the_reply_to_the_retransmission(run_ecdi, tmp_path, monkeypatch, case_id, declarations):
    # signature cases (runs o3/o7, a shared reference run): the altered reply went to an attempt the DTS had
    # abandoned; entry 1 replayed to its retransmission came genuine, and the case took acting on it for a FAIL.
    # reply.warning-not-failure (20 sessions at load 19): it required exactly one attempt of the declaration;
    # reply.unknown-elements-ignored and security.misrouted-replies had both faults, and
    # transport.final-outcomes-not-retransmitted allowed one attempt of a 271; reply.malformed-reply-refused counted
    # a malformed reply to an attempt the DTS had timed out on as one it must journal; and
    # reliability.query-settles-unknown-outcome forged attempt 1 only (found with tests/slow_first)
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(filter(None, [str(SLOW_FIRST), os.environ.get("PYTHONPATH")])))
    result = run_ecdi(tmp_path / "o", "--case", case_id)
    assert result.returncode == EXIT_CODES["INCOMPLETE"] and set(result.verdicts().values()) == {"PASS"}, \
        result.explain()
    with sqlite3.connect(tmp_path / "o" / "evidence" / "evidence.sqlite3") as db:
        retransmitted = db.execute("SELECT count(*) FROM exchanges WHERE function = '8' AND attempt = 2").fetchone()[0]
    assert retransmitted == declarations            # each declaration answered late was timed out on, re-sent


def test_a_271_resent_after_a_late_accept_is_inconclusive_not_failed(run_ecdi, tmp_path, monkeypatch):
    # run o3: the gateway saw a prompt 271, the DTS had timed out (its attempt began before the gateway's late
    # accept) and re-sent it; the lag monitors saw the stalls, so the case is disturbed and re-run, not FAILed
    late = Path(__file__).parent / "late_accept"
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(filter(None, [str(late), os.environ.get("PYTHONPATH")])))
    result = run_ecdi(tmp_path / "o", "--case", "reply.rejection-shown-verbatim")
    case = result.results["cases"][0]
    assert case["verdict"] == "INCONCLUSIVE" and case["reason"].startswith("harness overloaded"), result.explain()
    assert "271 expected once" in case["reason"]
