"""The verdict model: only gets worse, keeps the first reason at the final level, never passes silently."""

from conformance.verdict import CaseRecord, EvidenceKind, Finding, Status, Verdict, overall


def record() -> CaseRecord:
    return CaseRecord("x.y", "x", "purpose", ["REL-05"])


def test_verdict_only_gets_worse_and_keeps_first_failure_reason():
    r = record()
    r.record(Finding(Verdict.PASS, "ok"))
    r.record(Finding(Verdict.FAIL, "first failure"))
    r.record(Finding(Verdict.PASS, "later pass"))
    r.record(Finding(Verdict.FAIL, "second failure"))
    r.record(Finding(Verdict.INCONCLUSIVE, "inconclusive"))
    assert r.finish() is Verdict.FAIL
    assert r.reason == "first failure"
    assert r.status is Status.FINISHED


def test_error_outranks_fail():
    r = record()
    r.record(Finding(Verdict.FAIL, "fail"))
    r.record(Finding(Verdict.ERROR, "crash"))
    assert r.finish() is Verdict.ERROR and r.reason == "crash"


def test_a_case_with_no_verdict_is_an_error_not_a_pass():
    r = record()
    assert r.finish() is Verdict.ERROR
    assert "without recording any verdict" in r.reason


def test_status_is_kept_apart_from_result():
    r = record()
    r.status = Status.WAITING
    r.record(Finding(Verdict.PASS, "ok"))
    assert r.status is Status.WAITING and r.verdict is Verdict.PASS


def test_evidence_kinds_are_reported():
    r = record()
    r.record(Finding(Verdict.PASS, "wire", evidence=EvidenceKind.WIRE))
    r.record(Finding(Verdict.PASS, "journal", evidence=EvidenceKind.FILE))
    assert r.as_dict()["evidence"] == ["file-inspection", "wire"]


def test_overall_requires_every_applicable_case_to_pass():
    assert overall([Verdict.PASS, Verdict.NOT_APPLICABLE]) == "CONFORMANT"
    assert overall([Verdict.PASS, Verdict.INCONCLUSIVE]) == "NOT CONFORMANT"
    assert overall([Verdict.NOT_APPLICABLE]) == "NOT CONFORMANT"
    assert overall([]) == "NOT CONFORMANT"


def test_a_should_not_met_is_reported_but_never_worsens_the_verdict():
    """CAP-02: SHOULDs are reported but do not affect conformance."""
    record = CaseRecord("x.y", "x", "purpose", ["PAY-11", "PAY-10"])
    record.record(Finding(Verdict.PASS, "sent nothing", "PAY-10"))
    record.record(Finding(Verdict.FAIL, "the maker's approval was sent", "PAY-11", advisory=True))
    assert record.finish() is Verdict.PASS
    data = record.as_dict()
    assert data["should_not_met"] == ["PAY-11"] and data["findings"][1]["advisory"] is True
    record.record(Finding(Verdict.FAIL, "the old OTP was sent again", "PAY-10"))
    assert record.verdict is Verdict.FAIL and record.reason == "the old OTP was sent again"
