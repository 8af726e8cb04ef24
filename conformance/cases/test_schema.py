"""Schema family (ENV, DOC, TXT): every message the DTS sends validates against the profile."""

from conformance import checks
from conformance.case import case


@case(
    "schema.requests-validate",
    requirements=["ENV-01", "ENV-03", "DOC-01", "TXT-01"],
    capability="import",
    purpose="Every request the DTS sends while lodging and following up a declaration is UTF-8 XML without "
            "BOM or DOCTYPE, validates against the profile's XSDs and lexical rules (header order and types, "
            "NFC, no comments), and states its signing time with a UTC offset.",
)
def test_requests_validate(ecdi):
    ecdi.lodge("declaration-import", type="929")
    sent = ecdi.requests()
    ecdi.check(checks.something_sent(sent, "the DTS's requests"), "DOC-01", stop=True)
    for exchange in sent:
        ecdi.check(checks.encoding_rules(exchange, ecdi.profile), "TXT-01")
        ecdi.check(checks.envelope_validates(exchange, ecdi.profile), "ENV-01")
        ecdi.check(checks.content_validates(exchange, ecdi.profile), "DOC-01")
        ecdi.check(checks.creation_time(exchange, ecdi.profile, ecdi.tolerance(ecdi.pixit_seconds("t_send_s"))), "ENV-03")
