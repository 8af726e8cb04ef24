"""Envelope family (ENV, CAP-01): the request header fields of Table 4-1 that the DTS chooses.

Every observation is a header the gateway received (wire evidence); the expected values come from the
profile (Table 4-2, parameters), the capability statement and what the harness configured the DTS with.
"""

from conformance import checks
from conformance.case import case, runs_last
from conformance.drivers.base import Action

DECLARATIONS = {"import": ("929", "declaration-import"), "export": ("930", "declaration-export")}


@runs_last
@case(
    "envelope.message-ids-fresh",
    requirements=["ENV-02"],
    capability="import",
    purpose="Every messageId is a random version-4 UUID and none is ever used for two different message texts: "
            "over this case's declarations, automatic and manual queries and a restart of the product, and over "
            "every request of the whole test campaign so far.",
)
def test_message_ids_fresh(ecdi):
    first = ecdi.lodge("declaration-import", type="929")
    ecdi.restart()
    ecdi.lodge("declaration-import", type="929")
    submission = first.message_id or ecdi.requests(type="929", function="8")[0].message_id
    ecdi.driver.perform(Action(kind="query", type="929", submission_id=submission))
    own = ecdi.requests()
    ecdi.needs_readable(own)
    ecdi.check(checks.Check(len({r.message_id for r in own}) >= 3,
                            f"{len(own)} request(s) of this case reached the gateway"), "ENV-02", stop=True)
    ecdi.check(checks.message_ids_random_v4(own, ecdi.profile, "this case"), "ENV-02")
    ecdi.check(checks.message_ids_never_reused(own, ecdi.profile, "this case"), "ENV-02")
    campaign = ecdi.campaign_requests()
    ecdi.check(checks.message_ids_random_v4(campaign, ecdi.profile, "the whole campaign"), "ENV-02")
    ecdi.check(checks.message_ids_never_reused(campaign, ecdi.profile, "the whole campaign"), "ENV-02")


@case(
    "envelope.type-function-rows",
    requirements=["ENV-04"],
    capability="import",
    purpose="Each request's procedureType, Subject/type, Subject/function and Content child form a row of "
            "Table 4-2 (procedureType per Table 4-1): import declarations, export declarations where claimed, "
            "and their queries.",
)
def test_type_function_rows(ecdi):
    lodged = [DECLARATIONS[c] for c in ("import", "export") if c in ecdi.sut.capabilities]
    for type_, sample in lodged:
        ecdi.lodge(sample, type=type_)
    ecdi.needs_readable(ecdi.requests())
    for type_, _ in lodged:
        sent = ecdi.requests(type=type_, function="8")
        ecdi.check(checks.something_sent(sent, f"the {type_}/8 declaration"), "ENV-04",
                   stop=True)
    ecdi.check(checks.table_4_2_rows(ecdi.requests(), ecdi.profile), "ENV-04")


@case(
    "envelope.header-identities",
    requirements=["ENV-06"],
    capability="import",
    purpose="From/identity is the tax code of the declarant the user acts for and To/identity the customs office "
            "of lodgement, in the declaration and in its queries.",
)
def test_header_identities(ecdi):
    ecdi.lodge("declaration-import", type="929")
    sent = ecdi.requests(type="929")
    ecdi.needs_readable(sent)
    ecdi.check(checks.header_values(sent, ecdi.profile, {"From/identity": ecdi.setting("tax_code")},
                                    "the declarant's tax code"), "ENV-06")
    ecdi.check(checks.header_values(sent, ecdi.profile, {"To/identity": ecdi.setting("office")},
                                    "the office of lodgement"), "ENV-06")


@case(
    "envelope.business-references",
    requirements=["ENV-05"],
    capability="import",
    purpose="Each new declaration gets a business reference never used before for that tax code, type and "
            "function — also after the product is restarted — and every query names the queried submission's "
            "messageId (Table 4-2).",
)
def test_business_references(ecdi):
    ecdi.lodge("declaration-import", type="929")
    ecdi.restart()
    ecdi.lodge("declaration-import", type="929")
    sent = ecdi.requests(type="929")
    ecdi.needs_readable(sent)
    ecdi.check(checks.Check(len({r.message_id for r in sent if r.function == "8"}) >= 2,
                            f"{len(sent)} 929 request(s) reached the gateway"), "ENV-05", stop=True)
    ecdi.check(checks.business_references_fresh(sent, ecdi.profile), "ENV-05")
    ecdi.check(checks.subject_references(sent, ecdi.profile), "ENV-05")


@case(
    "envelope.installation-id",
    requirements=["ENV-07"],
    capability="import",
    purpose="Subject/sendApplication is the installation's one UUID, unchanged after the user closes and reopens "
            "the product; Subject/receiveApplication is CGW.",
)
def test_installation_id(ecdi):
    ecdi.lodge("declaration-import", type="929")
    ecdi.restart()
    ecdi.lodge("declaration-import", type="929")
    sent = ecdi.requests()
    ecdi.needs_readable(sent)
    ecdi.check(checks.Check(len({r.message_id for r in sent if r.function == "8"}) >= 2,
                            f"{len(sent)} request(s) before and after the restart"), "ENV-07", stop=True)
    ecdi.check(checks.one_installation_id(sent, ecdi.profile), "ENV-07")
    ecdi.check(checks.header_values(sent, ecdi.profile, {"Subject/receiveApplication": "CGW"}, "the addressee"),
               "ENV-07")


@case(
    "envelope.send-application",
    requirements=["ENV-08"],
    capability="import",
    purpose="SendApplication name, version, companyName and companyIdentity equal the capability statement's "
            "product, version, vendor and vendor_tax_code; certificationId is absent in 1.0 and in 1.1 the "
            "statement's certification_id (ECDI-0000-00000 before certification).",
)
def test_send_application(ecdi):
    ecdi.lodge("declaration-import", type="929")
    ecdi.needs_readable(ecdi.requests())
    st = ecdi.sut.statement
    mandatory = ecdi.profile.params["certification_id"] == "mandatory"
    expected = {"SendApplication/name": st["product"], "SendApplication/version": st["version"],
                "SendApplication/companyName": st["vendor"], "SendApplication/companyIdentity": st["vendor_tax_code"],
                "SendApplication/certificationId": st.get("certification_id", "ECDI-0000-00000") if mandatory else None}
    ecdi.check(checks.header_values(ecdi.requests(), ecdi.profile, expected, "the capability statement"), "ENV-08")


@case(
    "envelope.version-claimed",
    requirements=["CAP-01"],
    capability="import",
    purpose="Reference/version of every request is the profile configured for the environment, and one the "
            "capability statement claims.",
)
def test_version_claimed(ecdi):
    ecdi.lodge("declaration-import", type="929")
    ecdi.needs_readable(ecdi.requests())
    claimed = ecdi.sut.statement.get("profile", [])
    ecdi.check(checks.Check(ecdi.profile.version in claimed,
                            f"the environment's profile {ecdi.profile.version} is among the claimed {claimed}"),
               "CAP-01")
    ecdi.check(checks.header_values(ecdi.requests(), ecdi.profile, {"Reference/version": ecdi.profile.version},
                                    f"the environment's profile {ecdi.profile.id}"), "CAP-01")
