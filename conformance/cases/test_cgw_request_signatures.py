"""CGW request-signatures family (§8: SIG-03, SIG-05 … SIG-11): what a gateway does with the signature and the
signer certificate of a request.

Each negative certificate of ``pki_matrix`` that the gateway statement names (``[certificates.<entry>]``:
declarant pairs customs registered for the first account's tax code, or deliberately not) must get the G-code
of its Table 8-2 row; one the statement does not name cannot be judged (INCONCLUSIVE, saying which). The
untrusted issuer needs no statement: the harness signs with a CA of its own making.
"""

from datetime import timedelta

from conformance import cgw_play as play
from conformance import evaluation_order as order
from conformance import pki_matrix

from conformance.case import case, runs_last
from conformance.checks import gateway_histories as gh
from conformance.checks import gateway_replies as gr
from conformance.codec import xmlsig

ROW_REQUIREMENT = {"G0005": "SIG-11", "G0006": "SIG-09"}     # the other rows of Table 8-2: SIG-08


@case(
    "cgw-request-signatures.certificate-matrix", party="CGW", requirements=["SIG-08", "SIG-09", "SIG-11"],
    purpose="A request signed with each negative certificate of the matrix (expired, not yet valid, revoked, "
            "untrusted issuer, no UID=MST:, another tax code, keyEncipherment only, RSA-1024, unregistered) gets "
            "271 with the code of its Table 8-2 row and only that code. A gateway that accepts one, or checks "
            "the rows in another order (G0005 before G0002, ...), FAILs.",
)
def test_certificate_matrix(ecdi):
    for entry in pki_matrix.MATRIX:
        if entry.expected_code is None:
            continue
        rid = ROW_REQUIREMENT.get(entry.expected_code, "SIG-08")
        text = play.signed_by(ecdi, entry.name)
        if not text:
            ecdi.inconclusive(f"the gateway statement names no [certificates.{entry.name}] ({entry.purpose}): "
                              f"its {entry.expected_code} cannot be tried", rid)
            continue
        ecdi.check(gr.answered(play.send(ecdi, text), ecdi.profile, "271", entry.expected_code,
                               why=f"signed with {entry.purpose}"), rid)


@case(
    "cgw-request-signatures.algorithms", party="CGW", requirements=["SIG-03", "SIG-05"],
    purpose="RSA-SHA256 and ECDSA-P256-SHA256 (r‖s) signatures are both verified and accepted in every profile, "
            "and white space inside base64 values is accepted. A gateway that refuses ECDSA, expects DER "
            "signature values, or chokes on a line break in a SignatureValue FAILs.",
)
def test_algorithms(ecdi):
    ecdi.check(gr.accepted(play.send(ecdi, ecdi.message()), ecdi.profile, why="RSA-SHA256"), "SIG-03")
    text = play.signed_by(ecdi, "ecdsa-p256", signature_method=xmlsig.ECDSA_SHA256)
    if not text:
        ecdi.inconclusive("the gateway statement names no [certificates.ecdsa-p256]: ECDSA cannot be tried", "SIG-03")
    else:
        ecdi.check(gr.accepted(play.send(ecdi, text), ecdi.profile, why="ECDSA P-256 (r‖s)"), "SIG-03")
    wrapped = order.base64_line_breaks(play.signed_by(ecdi))
    ecdi.check(gr.accepted(play.send(ecdi, wrapped), ecdi.profile, why="line breaks inside the base64 values"),
               "SIG-05")


@case(
    "cgw-request-signatures.wrapping", party="CGW", requirements=["SIG-05"],
    purpose="Signature-wrapping attempts — altered content under a copied signature, a second signature, the "
            "signed original hidden in a ds:Object, the signature before the Header, an extra Reference — are "
            "271 G0001. A gateway that verifies one element and acts on another FAILs.",
)
def test_wrapping(ecdi):
    for attack in order.WRAPPINGS:
        text = attack.make(play.signed_by(ecdi))
        ecdi.check(gr.answered(play.send(ecdi, text), ecdi.profile, "271", "G0001", why=attack.what), "SIG-05")


@case(
    "cgw-request-signatures.sha1-accepted", party="CGW", requirements=["SIG-06"],
    purpose="In profile 1.0 an rsa-sha1 signature with a sha1 digest is accepted with W0001 in the reply. A 1.0 "
            "gateway that refuses SHA-1, or accepts it silently, FAILs.",
)
def test_sha1_accepted(ecdi):
    text = play.signed_by(ecdi, signature_method=xmlsig.RSA_SHA1, digest_method=xmlsig.SHA1)
    reply = play.send(ecdi, text)
    ecdi.check(gr.accepted(reply, ecdi.profile, why="rsa-sha1 in 1.0"), "SIG-06")
    ecdi.check(gr.warned(reply, ecdi.profile, "W0001"), "SIG-06")


@case(
    "cgw-request-signatures.sha1-refused", party="CGW", requirements=["SIG-07"],
    purpose="In profile 1.1 a signature using rsa-sha1, a sha1 digest, or both is 271 G0007. A gateway still "
            "configured as 1.0 (W0001) FAILs.",
)
def test_sha1_refused(ecdi):
    for method, digest, what in ((xmlsig.RSA_SHA1, xmlsig.SHA1, "rsa-sha1 and a sha1 digest"),
                                 (xmlsig.RSA_SHA256, xmlsig.SHA1, "a sha1 digest"),
                                 (xmlsig.RSA_SHA1, xmlsig.SHA256, "rsa-sha1")):
        text = play.signed_by(ecdi, signature_method=method, digest_method=digest)
        ecdi.check(gr.answered(play.send(ecdi, text), ecdi.profile, "271", "G0007", why=what), "SIG-07")


@runs_last      # it moves the gateway's clock a month ahead: alone, after every other case
@case(
    "cgw-request-signatures.no-current-crl", party="CGW", requirements=["SIG-10", "RPL-02", "REL-10"],
    purpose="A request is receipted while the signer's CRL is current; with the gateway's clock past that CRL's "
            "nextUpdate (through the statement's test clock, put back when the case ends) the gateway has no "
            "usable CRL and answers 271 E9001 — neither accepting nor refusing the certificate. That E9001 is "
            "transient (sequence 0, not recorded): with the clock back, the same message text under the same "
            "messageId is evaluated afresh and receipted as entry 1. A gateway that accepts on a stale CRL, "
            "refuses with G0003, or records the E9001 and replays it FAILs; without a test clock the case is "
            "NOT-APPLICABLE.",
)
def test_no_current_crl(ecdi):
    ecdi.facility("test_clock")
    ecdi.alone()
    before = play.send_exchange(ecdi, ecdi.message())
    ecdi.check(gr.accepted(before.reply_text, ecdi.profile, why="a current CRL: the request is receipted"), "SIG-10")
    next_update = play.crl_next_update(ecdi)
    if isinstance(next_update, str):
        ecdi.setup_failed(next_update, "the signer's CRL")
    text = ecdi.message()       # issued before the clock moves: its createMessageIssue is current once it is back
    ahead = round(next_update.timestamp() - before.received_at + timedelta(days=1).total_seconds())
    ecdi.advance_clock(ahead)
    busy = play.send(ecdi, text, retry_busy=False)
    ecdi.check(gr.answered(busy, ecdi.profile, "271", "E9001",
                           why=f"the gateway clock {ahead / 86400:.1f} days ahead, past the CRL's nextUpdate"),
               "SIG-10")
    ecdi.advance_clock(-ahead)
    again = play.send(ecdi, text)
    ecdi.check(gr.accepted(again, ecdi.profile, why="the same text with the CRL current again: a 271 is not "
                                                    "recorded and is evaluated afresh"), "REL-10")
    ecdi.check(gh.sequences([gh.Delivery(None, busy), gh.Delivery(None, again)], ecdi.profile), "RPL-02")
