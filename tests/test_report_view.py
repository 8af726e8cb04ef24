"""report.html's own rendering: the run header, a failed case's expected vs observed and its exchanges,
findings in words and ECDI codes named from the profile (issue 15)."""

from __future__ import annotations

import pytest

from conformance.gateway_control import Exchange
from conformance.profile import load_profile
from conformance.report.case_view import case_detail, shown_exchanges
from conformance.report.run_header import run_header
from conformance.report.wording import code_name, exchange_refs, readable
from conformance.verdict import CaseRecord, EvidenceKind, Finding, Verdict


@pytest.fixture(scope="module")
def profile():
    return load_profile("ecdi-1.0")


def exchange(seq: int, **over) -> Exchange:
    values = dict(seq=seq, case_id="c1", received_at=1_765_000_000.0 + seq, responded_at=1_765_000_000.5 + seq,
                  client="127.0.0.1", method="POST", path="/ecdi/CISService",
                  request_headers={"Content-Type": "text/xml", "Authorization": "Basic c2VjcmV0"},
                  request_body=b"<Send><UserId>u</UserId><Password>hunter2</Password></Send>",
                  message_text=f"<Envelope><messageId>m{seq}</messageId></Envelope>".encode(), user_id="u",
                  message_id=f"m{seq}", type="929", function="13", reference="R1", attempt=1,
                  response_status=200, response_headers={}, response_body=b"",
                  reply_text=b"<Envelope><Result>30</Result></Envelope>", reply_function="30", reply_codes=[],
                  rule=None, gateway_verdict={})
    values.update(over)
    return Exchange(**values)


def failed_record(*findings: Finding) -> CaseRecord:
    record = CaseRecord("reliability.x", "reliability", "Why the case exists.", ["REL-03", "PAY-10"])
    for f in findings:
        record.record(f)
    record.finish()
    return record


@pytest.mark.parametrize("message, expected", [
    ("the approval got [('273', ['P0001']), ('32', [])]", "the approval got 273 P0001, 32"),
    ("the DTS reported 'rejected' with errors ['X0001']", "the DTS reported “rejected” with errors X0001"),
    ("no member 'kind': []", "no member “kind”: none"),
    ("the DTS's t_send and the harness's clock: 1 attempt(s)", "the DTS's t_send and the harness's clock: 1 attempt(s)"),
    ("a [bracketed remark] stays", "a [bracketed remark] stays"),
])
def test_python_reprs_are_rendered_as_words(message, expected):
    assert readable(message) == expected


def test_a_finding_names_its_exchanges_by_detail_and_by_number_in_its_message():
    f = Finding(Verdict.FAIL, "request #7 and #9 differ", "REL-03", detail={"exchange": 3, "exchanges": [9, 11]})
    assert exchange_refs(f) == [3, 9, 11, 7]


def test_codes_are_named_from_the_profile(profile):
    assert code_name(profile, "message_type", "929") == "929 (Import declaration)"
    assert code_name(profile, "function_request", "13") == "13 (Query a submission by reference)"
    assert code_name(profile, "function_reply", "30") == "30 (Declaration number issued)"
    assert code_name(profile, "result", "P0001").startswith("P0001 (")
    assert code_name(profile, "result", "Z9999") == "Z9999 (not a code of ecdi-1.0)"


def test_finding_carries_expected_and_observed_only_when_given():
    plain = Finding(Verdict.FAIL, "m", "REL-03").as_dict()
    assert "expected" not in plain and "observed" not in plain         # results.json as before
    worded = Finding(Verdict.FAIL, "m", "REL-03", expected="two attempts", observed="one").as_dict()
    assert worded["expected"] == "two attempts" and worded["observed"] == "one"


def test_a_failed_case_shows_expected_observed_and_the_exchanges_its_failure_names(profile):
    record = failed_record(
        Finding(Verdict.PASS, "the DTS made 2 attempts", "REL-03"),
        Finding(Verdict.FAIL, "request #5 was not retransmitted", "REL-03", detail={"exchange": 5},
                expected="a retransmission after t_send", observed="one attempt only"),
    )
    exchanges = [exchange(n) for n in range(1, 10)]
    page = case_detail(record, exchanges, profile)
    assert "a retransmission after t_send" in page and "one attempt only" in page
    assert 'id="ex-reliability.x-5"' in page and 'id="ex-reliability.x-6"' not in page
    assert page.count("<details class=\"ecdi-exchange\"") == 1          # only the named one opens
    assert "All 9 exchange(s) of this case" in page and "evidence/cases/reliability.x.json" in page
    assert "929 (Import declaration)" in page and "30 (Declaration number issued)" in page
    assert "hunter2" not in page and "c2VjcmV0" not in page
    assert "REL-03 (MUST)" in page


def test_a_failure_naming_no_exchange_falls_back_to_the_requirement_and_the_last_exchanges(profile):
    record = failed_record(Finding(Verdict.INCONCLUSIVE, "the approval got [('32', [])]", "PAY-10"))
    exchanges = [exchange(n) for n in range(1, 10)]
    opened, why = shown_exchanges(record, exchanges)
    assert [ex.seq for ex in opened] == [4, 5, 6, 7, 8, 9] and "names no exchange" in why
    page = case_detail(record, exchanges, profile)
    assert f"what PAY-10 requires: {profile.requirements['PAY-10'].summary}" in page
    assert "the approval got 32" in page and "[(" not in page
    assert "could not judge" in page


def test_result_codes_a_failure_mentions_are_explained(profile):
    record = failed_record(Finding(Verdict.FAIL, "the gateway answered 271 E0001", "REL-03"))
    page = case_detail(record, [], profile)
    assert f"E0001 ({profile.result_codes['E0001'].meaning.split(' (')[0]})" in page


def test_an_exchange_without_a_response_says_so(profile):
    record = failed_record(Finding(Verdict.FAIL, "no retransmission", "REL-03", evidence=EvidenceKind.WIRE))
    page = case_detail(record, [exchange(1, response_status=None, responded_at=None, connection_closed_at=1.0,
                                         reply_text=None, reply_function=None)], profile)
    assert "the DTS closed the connection before the gateway answered" in page


def test_a_passing_case_lists_its_exchanges_without_opening_them(profile):
    record = CaseRecord("t.p", "t", "p", ["REL-03"])
    record.record(Finding(Verdict.PASS, "fine", "REL-03"))
    record.finish()
    page = case_detail(record, [exchange(1), exchange(2)], profile)
    assert "ecdi-exchange" not in page and "ecdi-problem" not in page and "All 2 exchange(s)" in page


def results(overall: str, **over) -> dict:
    out = {"overall": overall, "summary": {"FAIL": 1, "PASS": 64, "NOT-APPLICABLE": 1},
           "scope": {"executed": 66, "applicable": 66, "missing": []},
           "sut": {"vendor": "Công ty Phần mềm", "vendor_tax_code": "0100000009", "product": "Khai-Báo",
                   "version": "2.3", "build_hash": "abc123", "mutant": None},
           "profile": {"id": "ecdi-1.0", "version": "1.0", "hash": "f" * 64}, "time_scale": 1.0, "seed": 4242,
           "started_at": "2026-12-06T10:00:00+00:00", "finished_at": "2026-12-06T10:30:00+00:00",
           "evidence": {"rows": 12, "head_hash": "e" * 64}, "harness": {"name": "ecdi-conformance", "version": "0"},
           "setup_error": None, "cases": []}
    out.update(over)
    return out


def test_the_header_states_the_overall_verdict_counts_facts_and_links():
    page = run_header(results("NOT CONFORMANT"))
    assert '<h2 class="ecdi-overall">NOT CONFORMANT</h2>' in page
    assert "66 case(s) run of 66 applicable: 1 FAIL, 64 PASS, 1 NOT-APPLICABLE" in page
    for fact in ("Khai-Báo 2.3", "Công ty Phần mềm", "abc123", "ecdi-1.0", "4242", "2026-12-06T10:30:00+00:00"):
        assert fact in page
    for href in ("certificate.html", "results.json", "evidence/"):
        assert f'href="{href}"' in page


def test_a_session_that_never_started_links_no_certificate():
    page = run_header(results("NOT CONFORMANT", setup_error="gateway did not start", profile=None))
    assert "gateway did not start" in page and 'href="certificate.html"' not in page and 'href="results.json"' in page
    assert "NO RESULT" in run_header(None)


def test_an_interrupted_run_with_an_unreadable_log_still_gets_its_header():
    page = run_header(results("INTERRUPTED", evidence={"rows": None, "head_hash": None}, sut=None, profile={},
                              summary=None, scope=None, seed=None, time_scale=None))
    assert '<h2 class="ecdi-overall">INTERRUPTED</h2>' in page and "not readable" in page
