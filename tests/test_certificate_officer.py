"""What an officer reads first is signed too: the counts, the coverage worded as scope, the case titles."""

from __future__ import annotations

from test_certificate import CASES, certificate, customs, reason, results  # noqa: F401 - customs is a fixture

from conformance.report.certificate import coverage_text, run_coverage
from conformance.titles import case_title

FAILING = [dict(CASES[0], verdict="FAIL"), CASES[1]]


def test_counts_are_in_the_claim_and_an_edited_count_is_caught(customs):
    data = certificate(customs[0], overall="NOT CONFORMANT", cases=FAILING)
    assert b'data-claim="counts.FAIL">1<' in data and b'data-claim="counts.PASS">1<' in data
    forged = data.replace(b'data-claim="counts.FAIL">1<', b'data-claim="counts.FAIL">0<')
    assert "the visible counts.FAIL reads '0' but the signed claim says '1'" in reason(
        forged, customs[1], accept_self_assessment=True)


def test_coverage_of_a_failed_product_cannot_read_as_a_pass():
    coverage = run_coverage(results(overall="NOT CONFORMANT", cases=FAILING))
    text = coverage_text(coverage)
    assert coverage["not_met"] == ["DOC-01", "TRN-01"]
    assert "scope, not a result" in text and "not met: 2 (DOC-01, TRN-01)" in text
    assert coverage_text(run_coverage(results())).endswith("not met: 0")


def test_case_rows_carry_the_bilingual_title_vietnamese_first(customs):
    page = certificate(customs[0]).decode("utf-8")
    title = case_title(CASES[0]["id"])
    assert (f'data-claim="cases.0.title"><b>{title["vi"]}</b><span class="en"> / {title["en"]}</span></span> '
            f'<span class="case-id" data-claim="cases.0.id">{CASES[0]["id"]}<') in page
    forged = page.replace(f'<b>{title["vi"]}</b>', "<b>Tờ khai bị từ chối</b>").encode("utf-8")
    assert "the visible cases.0.title reads 'Tờ khai bị từ chối / " in reason(forged, customs[1])

