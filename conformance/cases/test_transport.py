"""Transport family (TRN): SOAP 1.1 ``Send`` over HTTPS, framed exactly as §3 says."""

from conformance import checks
from conformance.case import case
from conformance.verdict import EvidenceKind


@case(
    "transport.valid-declaration-accepted",
    requirements=["TRN-01", "TRN-03", "TRN-04", "DOC-01", "SIG-01", "REL-13", "RPL-10"],
    capability="import",
    purpose="A valid import declaration, framed and signed per ECDI, is recorded by the gateway and the DTS "
            "shows the reception number and then the declaration number until the history is complete.",
)
def test_valid_declaration_accepted(ecdi):
    # set-up: the gateway's default scenario (29, then 30, 10, 32, 35 to queries)
    outcome = ecdi.lodge("declaration-import", type="929")
    lodged = ecdi.requests(type="929", function="8")
    ecdi.check(checks.Check(bool(lodged), f"{len(lodged)} declaration request(s) reached the gateway"),
               "TRN-01", stop=True)
    first = lodged[0]
    ecdi.check(checks.soap_headers(first), "TRN-03")
    ecdi.check(checks.send_body(first), "TRN-04")
    ecdi.check(checks.gateway_accepted(first), "SIG-01", stop=True)
    receipt = checks.reply_result(first)
    ecdi.check(checks.same_value("reception number", outcome.reception_number, receipt.reception_number),
               "DOC-01", evidence=EvidenceKind.DRIVER)
    queries = ecdi.requests(type="929", function="13")
    ecdi.check(checks.Check(bool(queries), f"the DTS polled {len(queries)} time(s) after the receipt"), "REL-13")
    numbered = [checks.reply_result(q) for q in queries if q.reply_function == "30"]
    sent_number = numbered[0].declaration_number if numbered else None
    ecdi.check(checks.same_value("declaration number", outcome.declaration_number, sent_number),
               "RPL-10", evidence=EvidenceKind.DRIVER)
    ecdi.check(checks.outcome_state(outcome, {"cleared"}), "RPL-10", evidence=EvidenceKind.DRIVER)
