"""Reply-handling family (RPL): what the gateway answers reaches the user exactly."""

from conformance import checks, scenarios
from conformance.case import case
from conformance.verdict import EvidenceKind


@case(
    "reply.rejection-shown-verbatim",
    requirements=["RPL-12", "RPL-14", "SEC-09"],
    capability="import",
    purpose="A 271 rejection's Error (code, field and Vietnamese description) reaches the DTS's user verbatim, "
            "as a customs rejection, and the declaration is marked rejected, not recorded.",
)
def test_rejection_shown_verbatim(ecdi):
    code = ecdi.data.choice(ecdi.profile.rejection_codes())
    error = {
        "code": code,
        "field": "/Envelope/Header/From/identity" if ecdi.profile.result_codes[code].field == "path" else "",
        "description": f"{ecdi.profile.result_codes[code].description_vi} (mã tra cứu {ecdi.data.nonce()})",
    }
    ecdi.given(scenarios.reply_first_attempt("929", "8", "271", [error], name=f"reject-{code}"))
    outcome = ecdi.lodge("declaration-import", type="929")
    lodged = ecdi.requests(type="929", function="8")
    ecdi.check(checks.Check(len(lodged) == 1, f"{len(lodged)} request(s) for the rejected declaration "
                                              "(a 271 ends the send operation)"), "RPL-12")
    ecdi.check(checks.outcome_state(outcome, {"rejected"}), "RPL-12", evidence=EvidenceKind.DRIVER)
    ecdi.check(checks.errors_shown_verbatim(outcome, ecdi.journal(), [error]), "RPL-14",
               evidence=EvidenceKind.FILE)
    kinds = {n.kind for n in outcome.notifications if n.code == code}
    ecdi.check(checks.Check(kinds == {"customs-error"}, f"the rejection was shown as {sorted(kinds) or 'nothing'}"),
               "SEC-09", evidence=EvidenceKind.DRIVER)
