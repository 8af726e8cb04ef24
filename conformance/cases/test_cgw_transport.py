"""CGW transport family (TRN, the gateway's side): the harness plays the DTS and judges the gateway's
HTTP and SOAP answers (§3). Run with ``ecdi run --gateway gateway.toml``."""

from conformance.case import case
from conformance.checks import cgw_transport as wire


@case(
    "cgw-transport.send-over-https",
    requirements=["TRN-01", "TRN-06"],
    party="CGW",
    purpose="A valid Send POSTed over HTTPS to the statement's endpoint (path /ecdi/CISService) is answered "
            "HTTP 200 text/xml; charset=utf-8 with a SendResponse holding a signed reply.",
)
def test_send_over_https(ecdi):
    exchange = ecdi.send(ecdi.message("declaration-import", type="929"))
    ecdi.check(wire.answered(exchange, "a valid Send"), "TRN-01", stop=True)
    ecdi.check(wire.send_answered(exchange, "a valid Send"), "TRN-06", stop=True)
    ecdi.check(wire.reply_signed(exchange, ecdi.statement.cgw_sign_anchor), "TRN-06")
