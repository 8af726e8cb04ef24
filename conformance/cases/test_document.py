"""Document family (DOC): what the DTS does with the business document before it signs it.

The document a case gives is what the user entered or imported (``ecdi.data.document(sample, ...)``,
varied by the run's seed); only the DTS's own work may change it on the way to the wire.
"""

from conformance import checks, scenarios
from conformance.case import case
from conformance.verdict import EvidenceKind

SAMPLE = "declaration-import"


@case(
    "document.goods-limit",
    requirements=["DOC-02"],
    capability="import",
    purpose="A declaration with N_goods_max + 1 goods lines is never sent and the user is told to split the "
            "shipment into several declarations; one with exactly N_goods_max lines is sent whole.",
)
def test_goods_limit(ecdi):
    ecdi.given(scenarios.cleared_at_first_query())
    limit = int(ecdi.profile.params["N_goods_max"])
    outcome, sent = ecdi.lodge_document_with_requests(ecdi.data.document(SAMPLE, goods=limit + 1))
    ecdi.check(checks.nothing_sent(sent, f"a declaration of {limit + 1} goods items"), "DOC-02")
    ecdi.check(checks.told_user(outcome, checks.SPLIT_WORDS, "to split the shipment into several declarations"),
               "DOC-02", evidence=EvidenceKind.DRIVER)
    outcome, sent = ecdi.lodge_document_with_requests(ecdi.data.document(SAMPLE, goods=limit))
    counts = [checks.goods_count(r) for r in sent]
    ecdi.check(checks.Check(bool(sent) and counts[0] == limit,
                            f"a declaration of exactly {limit} goods items: sent with {counts or 'nothing'} item(s)"),
               "DOC-02")


@case(
    "document.lines-and-totals",
    requirements=["DOC-03"],
    capability="import",
    purpose="The user's lineNo (10, 20, …) and rounded invoice total are replaced by the DTS's own numbering "
            "1, 2, 3… and the exact decimal sum of the line values, which binary floating point or rounding to "
            "cents would get visibly wrong; the gateway finds no S0005.",
)
def test_lines_and_totals(ecdi):
    ecdi.given(scenarios.cleared_at_first_query())
    given = ecdi.data.document(SAMPLE, wrong_numbers=True)
    outcome, sent = ecdi.lodge_document_with_requests(given)
    ecdi.check(checks.something_sent(sent, "the declaration", outcome), "DOC-03", stop=True)
    ecdi.check(checks.line_numbers(sent[0]), "DOC-03")
    ecdi.check(checks.values_unchanged(sent[0], given, ["GoodsItem/value"]), "DOC-03")
    ecdi.check(checks.total_exact(sent[0]), "DOC-03")
    ecdi.needs_recorded(sent, "the declaration")    # the gateway's S0005 to a wrong total is DOC-03's FAIL
