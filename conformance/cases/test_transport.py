"""Transport family (TRN): SOAP 1.1 ``Send`` over HTTPS, framed exactly as §3 says."""

from conformance import checks
from conformance.case import case
from conformance.verdict import EvidenceKind, Verdict


@case(
    "transport.valid-declaration-accepted",
    requirements=["TRN-01", "TRN-03", "TRN-04", "DOC-01", "SIG-01", "REL-13", "RPL-09", "RPL-10"],
    capability="import",
    purpose="A valid import declaration, framed and signed per ECDI, is recorded by the gateway and the DTS "
            "shows the reception number and then the declaration number, polling until the history is complete.",
)
def test_valid_declaration_accepted(ecdi):
    # set-up: the gateway's default scenario (29, then 30, 10, 32, 35 to queries)
    outcome = ecdi.lodge("declaration-import", type="929")
    posted = ecdi.requests()              # every POST to /ecdi/CISService, framed well or not
    ecdi.check(checks.Check(bool(posted), f"{len(posted)} request(s) were POSTed to the gateway's ECDI path"),
               "TRN-01", stop=True)
    ecdi.check(checks.soap_headers(posted[0]), "TRN-03")
    ecdi.check(checks.send_body(posted[0]), "TRN-04")
    lodged = ecdi.requests(type="929", function="8")
    ecdi.check(checks.something_sent(lodged, "the declaration"), "TRN-01", stop=True)
    first = lodged[0]
    ecdi.check(checks.signature_shape(first, ecdi.profile), "SIG-01")
    ecdi.needs_recorded(lodged, "the declaration")      # refused at the signature step: SIG-01's FAIL too
    ecdi.check(checks.content_validates(first, ecdi.profile), "DOC-01")
    receipt = checks.reply_result(first)
    ecdi.check(checks.same_value("reception number", outcome.reception_number,
                                 receipt.reception_number if receipt else None), "RPL-09", evidence=EvidenceKind.DRIVER)
    queries = ecdi.requests(type="929", function="13")
    ecdi.check(checks.Check(bool(queries), f"the DTS polled {len(queries)} time(s) after the receipt"), "REL-13")
    numbered = [checks.reply_result(q) for q in queries if q.reply_function == "30"]
    sent_number = numbered[0].declaration_number if numbered else None
    ecdi.check(checks.same_value("declaration number", outcome.declaration_number, sent_number),
               "RPL-09", evidence=EvidenceKind.DRIVER)          # the data of every entry merged
    finals = [i for i, q in enumerate(queries) if q.reply_function in ecdi.profile.reply_flows[("929", "8")].final]
    ecdi.check(checks.Check(bool(finals) and finals[0] == len(queries) - 1,
                            f"{len(queries)} queries, the final reply to query {finals[0] + 1 if finals else '-'} "
                            "(none after it expected)"), "RPL-10")
    ecdi.check(checks.outcome_state(outcome, {"cleared"}), "RPL-10", evidence=EvidenceKind.DRIVER)


# --------------------------------------------------------------------------------------------
# TLS (TRN-09, TRN-10): the DTS meets the harness's TLS probe instead of the gateway

SHORT_HISTORY = {"history": [{"function": "35"}]}      # one query after the 29 ends the lodge quickly
UNTRUSTED = ("expired", "self-signed", "wrong-host")
REFUSED_TLS = ("tls1.0", "tls1.1", "3des")
MANDATORY_SUITES = {"ecdhe-rsa-aes128-gcm": "ECDHE-RSA-AES128-GCM-SHA256",
                    "ecdhe-ecdsa-aes128-gcm": "ECDHE-ECDSA-AES128-GCM-SHA256"}


@case(
    "transport.refuses-untrusted-tls",
    requirements=["TRN-10", "REL-04"],
    capability="import",
    purpose="Presented an expired, a self-signed and a wrong-host TLS certificate, the DTS sends no HTTP "
            "octet, tells its user of a TLS security error and does not retry.",
)
def test_refuses_untrusted_tls(ecdi):
    for variant in UNTRUSTED:
        ecdi.use_endpoint(variant)
        outcome = ecdi.lodge("declaration-import", type="929")
        connections = ecdi.tls_connections()
        ecdi.check(checks.probe_reached(connections, variant), "TRN-10", severity=Verdict.INCONCLUSIVE)
        ecdi.check(checks.no_http_at_probe(connections, variant), "TRN-10")
        ecdi.check(checks.told_user(outcome, checks.TLS_ERROR_WORDS, f"of a TLS security error ({variant})",
                                    kinds={"security-error"}), "TRN-10", evidence=EvidenceKind.DRIVER)
        ecdi.check(checks.journalled_attempts(ecdi.journal(), 1, variant), "REL-04", evidence=EvidenceKind.FILE)
    ecdi.check(checks.nothing_sent(ecdi.requests(), "behind the TLS probe"), "TRN-10")


@case(
    "transport.tls-versions-and-suites",
    requirements=["TRN-09"],
    capability="import",
    purpose="No session with a server offering only TLS 1.0, only TLS 1.1 or only 3DES; a real lodge over "
            "TLS 1.2 with only ECDHE_RSA_WITH_AES_128_GCM_SHA256, and with only ECDHE_ECDSA_WITH_AES_128_GCM_SHA256.",
)
def test_tls_versions_and_suites(ecdi):
    ecdi.given({"name": "short-history", **SHORT_HISTORY})
    for variant in REFUSED_TLS:
        ecdi.use_endpoint(variant)
        ecdi.lodge("declaration-import", type="929")
        connections = ecdi.tls_connections()
        ecdi.check(checks.no_session(connections, variant), "TRN-09")
        ecdi.check(checks.no_http_at_probe(connections, variant), "TRN-09")
        ecdi.check(checks.no_forbidden_offer(connections, variant), "TRN-09")
    for variant, cipher in MANDATORY_SUITES.items():
        ecdi.use_endpoint(variant)
        outcome = ecdi.lodge("declaration-import", type="929")
        connections = ecdi.tls_connections()
        ecdi.check(checks.session_with(connections, cipher, variant), "TRN-09")
        ecdi.check(checks.no_forbidden_offer(connections, variant), "TRN-09")
        lodged = [r for r in ecdi.requests(type="929", function="8")
                  if r.message_id == outcome.message_id or r.message_id is None]
        ecdi.check(checks.something_sent(lodged, f"{variant}: the declaration"), "TRN-09")
        ecdi.needs_recorded(lodged, f"the declaration over {variant}", outcome=outcome)


@case(
    "transport.https-only",
    requirements=["TRN-10"],
    capability="import",
    purpose="Configured with an http:// cgw_endpoint, the DTS refuses it: nothing is sent, not even a TLS "
            "handshake, and the user is told of a local error.",
)
def test_https_only(ecdi):
    ecdi.use_endpoint("plain")
    outcome = ecdi.lodge("declaration-import", type="929")
    connections = ecdi.tls_connections()
    ecdi.check(checks.Check(not connections, f"{len(connections)} connection(s) to the http:// endpoint",
                            {"connections": connections}), "TRN-10")
    ecdi.check(checks.nothing_sent(ecdi.requests(), "with an http:// endpoint"), "TRN-10")
    ecdi.check(checks.shown_as(outcome, "local-error"), "TRN-10", evidence=EvidenceKind.DRIVER)


# --------------------------------------------------------------------------------------------
# The HTTP request itself (TRN-02, TRN-05, TRN-11, TRN-14)


@case(
    "transport.credentials-only-in-body",
    requirements=["TRN-11"],
    capability="import",
    purpose="UserId and Password travel only in the SOAP body — never in the URL, an Authorization header or "
            "a cookie — and the password, sent as entered, authenticates.",
)
def test_credentials_only_in_body(ecdi):
    ecdi.given({"name": "short-history", **SHORT_HISTORY})
    ecdi.lodge("declaration-import", type="929")
    sent = ecdi.requests()
    ecdi.check(checks.something_sent(sent, "the DTS's requests"), "TRN-11", stop=True)
    for request in sent:
        ecdi.check(checks.credentials_only_in_body(request), "TRN-11")
    ecdi.needs_recorded(sent[:1], "the declaration")    # refused at the credentials step: TRN-11's FAIL


@case(
    "transport.message-text-escaped",
    requirements=["TRN-05", "TRN-14"],
    capability="import",
    purpose="Each request carries one Send whose MessageXML holds the message text as escaped character "
            "data (no CDATA), with at most 4 requests in progress at once.",
)
def test_message_text_escaped(ecdi):
    ecdi.given({"name": "short-history", **SHORT_HISTORY})
    ecdi.lodge("declaration-import", type="929")
    sent = ecdi.requests()
    ecdi.check(checks.something_sent(sent, "the DTS's requests"), "TRN-05", stop=True)
    for request in sent:
        ecdi.check(checks.message_xml_escaped(request), "TRN-05")
        ecdi.check(checks.no_cdata(request), "TRN-05", should=True)
        ecdi.check(checks.one_send_per_request(request), "TRN-14")
    ecdi.check(checks.at_most_concurrent(sent, 4), "TRN-14", should=True)


@case(
    "transport.wsdl-not-needed",
    requirements=["TRN-02"],
    capability="import",
    purpose="With the WSDL URL answering 404, the DTS still lodges: it does not need the WSDL at run time.",
)
def test_wsdl_not_needed(ecdi):
    ecdi.given({"name": "wsdl-absent", "wsdl": "absent", **SHORT_HISTORY})
    outcome = ecdi.lodge("declaration-import", type="929")
    lodged = ecdi.requests(type="929", function="8")
    ecdi.check(checks.something_sent(lodged, "the declaration, although the WSDL answered 404"), "TRN-02", stop=True)
    ecdi.needs_recorded(lodged, "the declaration")
    ecdi.check(checks.outcome_state(outcome, {"accepted", "cleared"}), "TRN-02", evidence=EvidenceKind.DRIVER)


# --------------------------------------------------------------------------------------------
# REL-04: outcomes that end the send operation


FINAL_OUTCOMES = (
    ("HTTP 302 redirect", {"action": "redirect", "status": 302, "location": "/ecdi/moved"}),
    ("HTTP 307 redirect", {"action": "redirect", "status": 307, "location": "/ecdi/moved"}),
    ("HTTP 500 with a soap:Client fault", {"action": "http_error", "status": 500, "fault": "client"}),
    ("HTTP 400", {"action": "http_error", "status": 400}),
    ("HTTP 413", {"action": "http_error", "status": 413}),
    ("a validly signed 271 U0001", {"action": "reply", "function": "271", "errors": [{"code": "U0001"}]}),
)


@case(
    "transport.final-outcomes-not-retransmitted",
    requirements=["REL-04"],
    capability="import",
    purpose="An HTTP 3xx (not followed), a 500 with a soap:Client fault, a 400, a 413 and a validly signed "
            "271 each end the send operation: the message reaches the gateway exactly once.",
)
def test_final_outcomes_not_retransmitted(ecdi):
    for label, action in FINAL_OUTCOMES:
        ecdi.given({"name": label, "rules": [{"when": {"type": "929", "function": "8"}, "then": action}]})
        before = {r.seq for r in ecdi.requests(type="929", function="8")}
        outcome = ecdi.lodge("declaration-import", type="929")
        # this lodge's attempts of its message (an unreadable one has no messageId: it counts too)
        attempts = [r for r in ecdi.requests(type="929", function="8") if r.seq not in before
                    and (outcome.message_id is None or r.message_id in (outcome.message_id, None))]
        ecdi.needs_readable(attempts, f"the declaration answered with {label}")
        t_send = ecdi.pixit_seconds("t_send_s")
        ecdi.check(checks.not_retransmitted(attempts, label, t_send, ecdi.tolerance(t_send)), "REL-04")
    followed = [e for e in ecdi.gateway.exchanges(ecdi.spec.id) if e.path.startswith("/ecdi/moved")]
    ecdi.check(checks.Check(not followed, f"{len(followed)} request(s) at the redirect Location"), "REL-04")
