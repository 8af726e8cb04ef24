"""Schema family (ENV, DOC, TXT): every message the DTS sends validates against the profile."""

from conformance import checks
from conformance.case import case


@case(
    "schema.requests-validate",
    requirements=["ENV-01", "ENV-03", "DOC-01", "TXT-01", "TXT-03"],
    capability="import",
    purpose="Every request the DTS sends while lodging and following up a declaration validates against the "
            "profile's XSDs and lexical rules (header order and types, UTC offset, NFC, no comments).",
)
def test_requests_validate(ecdi):
    ecdi.lodge("declaration-import", type="929")
    sent = ecdi.requests()
    ecdi.check(checks.Check(bool(sent), f"{len(sent)} request(s) recorded"), "DOC-01", stop=True)
    for exchange in sent:
        result = checks.message_validates(exchange, ecdi.profile)
        ecdi.check(result, "DOC-01" if exchange.function != "13" else "ENV-01")
