"""Text family (TXT): how typed, pasted and imported text reaches the wire.

The document a case gives is what the user entered or imported (``ecdi.data.document(sample, ...)``,
varied by the run's seed). Where a DTS may either correct the text itself or refuse it locally
(white space at the edges, control characters, a DOCTYPE in an imported file), both conform, provided
nothing wrong is sent and a refusal is a local error (docs/decisions.md, "Document and text cases"; TXT-04/05
demand no particular words of a refusal).
"""

import unicodedata

from conformance import checks, scenarios
from conformance.case import case
from conformance.testdata import EDGE_SPACE_FIELDS
from conformance.verdict import EvidenceKind

SAMPLE = "declaration-import"


def nfc(text):
    return None if text is None else unicodedata.normalize("NFC", text)


@case(
    "text.no-doctype",
    requirements=["TXT-02"],
    capability="import",
    purpose="No message text the DTS sends — declaration or query — has a DOCTYPE, not even when the imported "
            "document file begins with one (then it is dropped, or the import is refused with a local error).",
)
def test_no_doctype(ecdi):
    ecdi.given(scenarios.cleared_at_first_query())
    outcome = ecdi.lodge(SAMPLE, type="929")
    sent = ecdi.requests()
    ecdi.check(checks.something_sent(sent, "the declaration", outcome), "TXT-02", stop=True)
    for exchange in sent:
        ecdi.check(checks.no_doctype(exchange), "TXT-02")
    seen = {r.seq for r in sent}
    outcome = ecdi.lodge_document(ecdi.data.document(SAMPLE, doctype=True), type="929")
    later = [r for r in ecdi.requests() if r.seq not in seen]
    for exchange in later:
        ecdi.check(checks.no_doctype(exchange), "TXT-02")
    if not later:
        ecdi.check(checks.shown_as(outcome, "local-error"), "TXT-02", evidence=EvidenceKind.DRIVER)


@case(
    "text.nfc",
    requirements=["TXT-03"],
    capability="import",
    purpose="A declaration pasted in decomposed form (NFD, e.g. \"Hải\" from a legacy font converter) is "
            "normalised by the DTS: it is sent, and every character data on the wire is in NFC.",
)
def test_nfc(ecdi):
    ecdi.given(scenarios.cleared_at_first_query())
    given = ecdi.data.document(SAMPLE, decomposed=True)
    outcome, sent = ecdi.lodge_document_with_requests(given)
    ecdi.check(checks.something_sent(sent, "the decomposed declaration", outcome), "TXT-03", stop=True)
    for exchange in ecdi.requests():
        ecdi.check(checks.character_data_nfc(exchange), "TXT-03")
    for path in ("Trader/name", "GoodsItem/description"):
        ecdi.check(checks.same_text(path, nfc(checks.document_value(given, path)),
                                    checks.document_value(sent[0], path)), "TXT-03")


@case(
    "text.lengths-in-code-points",
    requirements=["TXT-04"],
    capability="import",
    purpose="A Vietnamese goods description of exactly its maximum length in code points after NFC (more in "
            "UTF-8 octets, and given decomposed) is sent unchanged; one code point more is not sent (a local "
            "refusal).",
)
def test_lengths_in_code_points(ecdi):
    ecdi.given(scenarios.cleared_at_first_query())
    limit = checks.text_maximum(ecdi.profile, "GoodsItem", "description")
    given = ecdi.data.document(SAMPLE, description_length=limit)
    outcome, sent = ecdi.lodge_document_with_requests(given)
    ecdi.check(checks.something_sent(sent, f"a description of {limit} code points", outcome), "TXT-04")
    if sent:
        ecdi.check(checks.same_text("GoodsItem/description", nfc(checks.document_value(given, "GoodsItem/description")),
                                    checks.document_value(sent[0], "GoodsItem/description")), "TXT-04")
    outcome, sent = ecdi.lodge_document_with_requests(ecdi.data.document(SAMPLE, description_length=limit + 1))
    ecdi.check(checks.nothing_sent(sent, f"a description of {limit + 1} code points"), "TXT-04")
    ecdi.check(checks.shown_as(outcome, "local-error"), "TXT-04", evidence=EvidenceKind.DRIVER)   # refused locally


@case(
    "text.no-control-or-edge-space",
    requirements=["TXT-05"],
    capability="import",
    purpose="Notes typed with CR LF are sent with LF; values pasted with white space at their edges, a TAB "
            "or a line break in a one-line field, or a stray control character (U+0096) never reach the wire "
            "so: the DTS cleans them (keeping the user's words) or refuses locally.",
)
def test_no_control_or_edge_space(ecdi):
    ecdi.given(scenarios.cleared_at_first_query())
    given = ecdi.data.document(SAMPLE, line_breaks=True)
    outcome, sent = ecdi.lodge_document_with_requests(given)
    ecdi.check(checks.something_sent(sent, "notes with CR LF (they must become LF, not a refusal)", outcome),
               "TXT-05")
    if sent:
        ecdi.check(checks.line_breaks_kept("notes", checks.document_value(given, "notes"),
                                           checks.document_value(sent[0], "notes")), "TXT-05")

    given = ecdi.data.document(SAMPLE, edge_spaces=True)
    outcome, sent = ecdi.lodge_document_with_requests(given)
    if sent:
        for path in EDGE_SPACE_FIELDS:
            ecdi.check(checks.text_clean(path, nfc(checks.document_value(given, path)),
                                         checks.document_value(sent[0], path)), "TXT-05")
    else:
        ecdi.check(checks.shown_as(outcome, "local-error"), "TXT-05", evidence=EvidenceKind.DRIVER)

    given = ecdi.data.document(SAMPLE, control_character=True)
    outcome, sent = ecdi.lodge_document_with_requests(given)
    if sent:
        path = "GoodsItem/description"
        ecdi.check(checks.text_clean(path, nfc(checks.document_value(given, path)),
                                     checks.document_value(sent[0], path)), "TXT-05")
    else:
        ecdi.check(checks.shown_as(outcome, "local-error"), "TXT-05", evidence=EvidenceKind.DRIVER)


@case(
    "text.locale-independent",
    requirements=["TXT-06"],
    capability="import",
    purpose="Run with a vi-VN user-interface locale, the DTS sends numbers (with thousands and fractions) and "
            "dates in the §4.2 lexical forms — '.' as decimal separator, no grouping — and with the values given.",
)
def test_locale_independent(ecdi):
    ecdi.given(scenarios.cleared_at_first_query())
    given = ecdi.data.document(SAMPLE, large_amounts=True)
    outcome, sent = ecdi.lodge_document_with_requests(given)
    ecdi.check(checks.something_sent(sent, "the declaration", outcome), "TXT-06", stop=True)
    ecdi.check(checks.content_validates(sent[0], ecdi.profile), "TXT-06")
    ecdi.check(checks.envelope_validates(sent[0], ecdi.profile), "TXT-06")
    ecdi.check(checks.values_unchanged(sent[0], given, ["grossMassKg", "Invoice/date", "Invoice/totalValue",
                                                        "GoodsItem/quantity", "GoodsItem/value"]), "TXT-06")
