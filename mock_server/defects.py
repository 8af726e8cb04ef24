"""Gateway defects ("gateway mutants"): the mock gateway made wrong in one named way, as data.

Each defect names the requirement(s) it breaks, the CGW case that must FAIL it (``caught_by``, a case id
of ``conformance/cases/test_cgw_*.py``; only a string here: the gateway never imports cases) and the
behaviour knobs it sets (``behaviour.py``). ``ecdi gateway --defect NAME`` serves one; ``ecdi mutants
--score --party CGW`` runs each defect's case against it. ``profile`` names the profile under which a
defect is a defect (a 1.1 rule a 1.0 gateway would keep), None when it is one under every profile.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .behaviour import Behaviour
from .pipeline import CHECKS


@dataclass(frozen=True)
class GatewayDefect:
    name: str
    breaks: tuple[str, ...]
    caught_by: str
    knobs: dict[str, Any] = field(default_factory=dict, hash=False)
    summary: str = ""
    profile: str | None = None            # the profile its case runs under (default: ecdi-1.1)

    def behaviour(self) -> Behaviour:
        return Behaviour().with_knobs(self.knobs)


def _skip(*steps: str) -> dict:
    return {"skipped_checks": frozenset(steps)}


def _swapped(first: str, second: str) -> dict:
    """Table 7-3 with two steps' places exchanged."""
    order = [step.__name__.removeprefix("step_") for step in CHECKS]
    i, j = order.index(first), order.index(second)
    order[i], order[j] = order[j], order[i]
    return {"check_order": tuple(order)}


def _rows(*codes: str) -> dict:
    return {"skipped_certificate_rows": frozenset(codes)}


DEFECTS_LIST: tuple[GatewayDefect, ...] = (
    # --- replies (SIG-14) ----------------------------------------------------------------------------
    GatewayDefect("unsigned-replies", ("SIG-14",), "cgw-replies.signatures",
                  {"reply_signature": "none"}, "replies carry no ds:Signature"),
    GatewayDefect("sha1-signed-replies", ("SIG-14",), "cgw-replies.signatures",
                  {"reply_signature": "rsa-sha1"}, "replies are signed RSA-SHA1 with SHA-1 digests"),
    # --- Table 7-3 (RPL-05) ----------------------------------------------------------------------------
    GatewayDefect("xml-before-credentials", ("RPL-05",), "cgw-checks.earlier-step-wins",
                  _swapped("credentials", "xml"),
                  "step 4 (XML) runs before step 3 (credentials): a malformed text with a wrong password is X0001"),
    # --- idempotency (REL-10) --------------------------------------------------------------------------
    GatewayDefect("new-reception-number-on-retransmission", ("REL-10", "RPL-02"), "cgw-idempotency.retransmission",
                  {"replay_new_reception_number": True},
                  "a retransmission's 29 is built again with a new receptionNumber, not the stored entry 1"),
    GatewayDefect("changed-text-accepted", ("REL-10",), "cgw-idempotency.changed-text",
                  {"replay_compares_text": False},
                  "another text under a recorded messageId gets the stored entry 1, not E0003"),
    GatewayDefect("u0001-recorded", ("REL-10",), "cgw-idempotency.refused-evaluated-afresh",
                  {"recorded_refusals": frozenset({"U0001"})},
                  "a 271 U0001 is recorded: the same text with the right password gets that 271 again"),
    GatewayDefect("entry1-not-kept", ("REL-12",), "cgw-idempotency.retransmission", {"forgets_entry1": True},
                  "entry 1 is not kept queryable: a query from sequence 0 finds nothing (12)"),
    # --- transport (TRN) -------------------------------------------------------------------------------
    GatewayDefect("http-401-bad-password", ("TRN-06",), "cgw-transport.no-http-auth-errors",
                  {"http_status_for_codes": (("U0001", 401),)}, "a wrong password is answered HTTP 401, no reply"),
    GatewayDefect("schema-error-fault", ("TRN-06", "TRN-07", "RPL-05"), "cgw-checks.each-step-its-code",
                  {"fault_for_codes": frozenset({"X0002"})},
                  "a schema error (X0002) is answered HTTP 500 soap:Client instead of a 271"),
    GatewayDefect("wsdl-wrong-address", ("TRN-02",), "cgw-transport.wsdl",
                  {"wsdl_location": "http://localhost:8080/ecdi/CISService"},
                  "the WSDL's soap:address is a development address, not the deployment's cgw_endpoint"),
    # The E9001 judged is SIG-10's (a stale CRL), re-sent with the CRL current again (REL-10: a request answered
    # 271 is evaluated afresh): a case playing the DTS cannot overload a gateway it does not control.
    GatewayDefect("e9001-recorded", ("TRN-08", "RPL-02", "REL-10"), "cgw-request-signatures.no-current-crl",
                  {"recorded_refusals": frozenset({"E9001"})},
                  "a 271 E9001 is recorded as the submission's entry 1: its retransmission gets it again"),
    GatewayDefect("overload-without-retry-after", ("TRN-08",), "cgw-transport.overload-answers",
                  {"capacity": 1, "overload_answer": "503-without-retry-after"},
                  "evaluating one Send, the gateway answers others arriving meanwhile 503 without Retry-After"),
    GatewayDefect("wrong-password-as-u0002", ("TRN-12",), "cgw-checks.each-step-its-code",
                  {"code_substitutions": (("U0001", "U0002"),)}, "a credentials failure is answered U0002, not U0001"),
    GatewayDefect("unknown-user-told", ("TRN-12",), "cgw-checks.credentials-in-body-only",
                  {"tells_unknown_user": True}, "an unknown UserId's U0001 says so (not the wrong password's text)"),
    GatewayDefect("http-credentials-read", ("TRN-11",), "cgw-checks.credentials-in-body-only",
                  {"reads_http_credentials": True},
                  "an Authorization: Basic header's credentials are used instead of the SOAP body's"),
    GatewayDefect("cdata-refused", ("TRN-05",), "cgw-transport.cdata-accepted", {"accepts_cdata": False},
                  "MessageXML as a CDATA section is answered with a soap:Client fault"),
    GatewayDefect("no-mandatory-tls-suite", ("TRN-09",), "cgw-transport.tls",
                  {"tls12_ciphers": "ECDHE+AES256+AESGCM"},
                  "over TLS 1.2 only AES-256 suites: neither mandatory ECDHE AES-128-GCM suite"),
    GatewayDefect("slow-replies", ("REL-02",), "cgw-replies.timely", {"reply_delay_t_cgw": 1.5},
                  "every reply is held 1.5 × T_cgw instead of E9001 within T_cgw"),
    GatewayDefect("slow-query-replies", ("REL-02",), "cgw-replies.timely",
                  {"reply_delay_t_cgw": 1.5, "reply_delay_functions": frozenset({"13"})},
                  "replies to queries (function 13) are held 1.5 × T_cgw; the others come at once"),
    GatewayDefect("history-without-refusals", ("SEC-07",), "cgw-replies.processing-history",
                  {"history_omits_refusals": True}, "the processing history keeps no request answered 271"),
    GatewayDefect("no-size-limit", ("TRN-13",), "cgw-checks.each-step-its-code", _skip("size"),
                  "a message text over S_max is evaluated (no E0001)"),
    # --- certificates (SIG-08..11) ---------------------------------------------------------------------
    GatewayDefect("revoked-certificate-accepted", ("SIG-08",), "cgw-request-signatures.certificate-matrix",
                  _rows("G0003"), "a revoked signer certificate is accepted (no G0003)"),
    GatewayDefect("expired-certificate-accepted", ("SIG-08",), "cgw-request-signatures.certificate-matrix",
                  _rows("G0002"), "an expired signer certificate is accepted (no G0002)"),
    GatewayDefect("tax-code-not-checked", ("SIG-09",), "cgw-request-signatures.certificate-matrix",
                  _rows("G0006"), "a certificate of another tax code signs for From/identity (no G0006)"),
    GatewayDefect("unregistered-certificate-accepted", ("SIG-11",), "cgw-request-signatures.certificate-matrix",
                  _rows("G0005"), "a certificate not registered with customs is accepted (no G0005)"),
    GatewayDefect("stale-crl-accepted", ("SIG-10",), "cgw-request-signatures.no-current-crl", _rows("E9001"),
                  "a CRL past its nextUpdate is used: the certificate is accepted instead of E9001"),
    GatewayDefect("sha1-accepted-in-1.1", ("SIG-07",), "cgw-request-signatures.sha1-refused",
                  {"sha1_rule": "accept-with-warning"}, "a SHA-1 request signature under 1.1 gets W0001, not G0007"),
    GatewayDefect("sha1-refused-in-1.0", ("SIG-06",), "cgw-request-signatures.sha1-accepted",
                  {"sha1_rule": "refuse"}, "a SHA-1 request signature under 1.0 gets G0007, not W0001",
                  profile="ecdi-1.0"),
    # --- one step of Table 7-3 not run -----------------------------------------------------------------
    GatewayDefect("no-certification-register", ("ENV-08",), "cgw-checks.each-step-its-code", _skip("certification"),
                  "an unknown certificationId is accepted (no X0005)"),
    GatewayDefect("no-issue-time-window", ("ENV-03",), "cgw-checks.each-step-its-code", _skip("issue_time"),
                  "createMessageIssue outside the window is accepted (no X0004)"),
    GatewayDefect("no-user-authorisation", ("ENV-09",), "cgw-checks.each-step-its-code", _skip("authorisation"),
                  "a user not registered for From/identity may send for it (no U0002)"),
    GatewayDefect("no-content-check", ("DOC-01", "TXT-04", "TXT-05"), "cgw-checks.each-step-its-code", _skip("content"),
                  "the Content's structure and lexical rules are not checked (no X0002)"),
    GatewayDefect("no-duplicate-reference", ("REL-11",), "cgw-idempotency.duplicate-reference", _skip("duplicate_reference"),
                  "a receipted business reference is accepted again (no E0074)"),
    GatewayDefect("no-field-values", ("DOC-03", "DOC-01", "ENV-06"), "cgw-checks.each-step-its-code", _skip("field_values"),
                  "Rule-column checks are not made: a wrong invoice total is accepted (no S0005)"),
    GatewayDefect("no-envelope-check", ("ENV-04", "ENV-01"), "cgw-checks.envelope-rules", _skip("envelope"),
                  "step 7 is not run: a type/function outside Table 4-2 or a header attribute gets through"),
    GatewayDefect("no-lexical-rules", ("TXT-03", "ENV-01"), "cgw-checks.text-rules", {"lexical_rules": False},
                  "comments, processing instructions and non-NFC text are not refused (no X0002)"),
    # --- another code for a refusal ------------------------------------------------------------------
    GatewayDefect("xml-errors-as-x0002", ("TXT-01", "TXT-02"), "cgw-checks.text-rules",
                  {"code_substitutions": (("X0001", "X0002"),)},
                  "a text not XML 1.0/UTF-8, with a BOM or a DOCTYPE is answered X0002, not X0001"),
    GatewayDefect("unknown-version-as-x0002", ("CAP-03",), "cgw-checks.each-step-its-code",
                  {"code_substitutions": (("X0003", "X0002"),)}, "an unaccepted version is answered X0002, not X0003"),
    GatewayDefect("broken-signature-as-g0004", ("SIG-05",), "cgw-checks.each-step-its-code",
                  {"code_substitutions": (("G0001", "G0004"),)},
                  "a signature that does not verify is answered G0004 (certificate), not G0001"),
    # --- the reply header (ENV-10) and the endpoint (TRN-01) -------------------------------------------
    GatewayDefect("reply-names-itself", ("ENV-10",), "cgw-replies.headers",
                  {"reply_header_values": (("Subject/sendApplication", "ECDI-CGW"),)},
                  "replies give Subject/sendApplication ECDI-CGW, not CGW (Table 4-3)"),
    GatewayDefect("endpoint-elsewhere", ("TRN-01",), "cgw-transport.send-over-https",
                  {"endpoint_path": "/ecdi/CISService.svc"}, "Send is served at /ecdi/CISService.svc"),
    GatewayDefect("ecdsa-refused", ("SIG-03",), "cgw-request-signatures.algorithms",
                  {"refused_signature_methods": frozenset({"http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha256"})},
                  "ECDSA-SHA256 request signatures are not verified: G0001"),
    GatewayDefect("result-code-zero", ("RPL-01",), "cgw-replies.results", {"result_code_always": "00000"},
                  "every reply's resultCode is 00000, refusals included"),
    # --- flows (DOC-04, RPL-04) ------------------------------------------------------------------------
    GatewayDefect("no-state-check", ("DOC-04",), "cgw-flows.not-permitted", _skip("state"),
                  "step 17 is not run: a cleared or cancelled declaration can still be amended or cancelled"),
    GatewayDefect("cancellation-not-final", ("RPL-04",), "cgw-flows.cancel", {"cancellation_closes_history": False},
                  "the cancelled declaration's history goes on after the 32 to its cancellation"),
    # --- polling (RPL-03) ------------------------------------------------------------------------------
    GatewayDefect("polling-repeats-entry", ("RPL-03",), "cgw-polling.history-walk",
                  {"query_after_offset": -1}, "a query answers the entry at afterSequence again, not the next"),
    GatewayDefect("poll-interval-too-strict", ("REL-15",), "cgw-polling.history-walk",
                  {"poll_min_factor": 3.0}, "queries T_poll_min apart (up to 3 × T_poll_min) get E9002"),
    GatewayDefect("polling-loses-entry", ("RPL-03",), "cgw-polling.history-walk",
                  {"query_after_offset": 1}, "a query skips the lowest entry above afterSequence"),
    # --- payments (PAY-04, PAY-07) ---------------------------------------------------------------------
    GatewayDefect("otp-valid-120s", ("PAY-04",), "cgw-payment.otp-validity",
                  {"otp_validity_s": 120}, "the OTP is valid 120 s (1.0's T_otp) under 1.1 (300 s)"),
    GatewayDefect("maker-not-checked", ("PAY-02",), "cgw-payment.maker-checker", _skip("maker_is_user"),
                  "a payment order whose maker is not the SOAP UserId is accepted (no S0005)"),
    GatewayDefect("description-not-checked", ("PAY-01",), "cgw-payment.description", _skip("payment_description"),
                  "a payment description not in the canonical grammar is accepted (no S0005)"),
    GatewayDefect("otp-data-missing", ("PAY-03",), "cgw-payment.order-and-otp", {"otp_data_in_reply": False},
                  "the 29 to an order carries no otpSender or otpExpiresAt"),
    GatewayDefect("no-new-otp", ("PAY-05",), "cgw-payment.order-and-otp", {"issues_new_otp": False},
                  "a 702/16 is receipted but no new OTP is issued or mailed"),
    GatewayDefect("otp-request-reference-not-checked", ("ENV-05",), "cgw-payment.order-and-otp",
                  _skip("otp_request_reference"),
                  "a 702/16 whose Subject/reference is not its paymentOrderId is accepted (no X0002)"),
    GatewayDefect("otp-attempts-unlimited", ("PAY-06",), "cgw-payment.approval", {"otp_attempt_limit": 1000},
                  "wrong OTP values never invalidate the OTP (N_otp_attempts ignored)"),
    GatewayDefect("maker-may-approve", ("PAY-07",), "cgw-payment.maker-checker",
                  {"maker_may_approve": True}, "the maker may approve their own order under 1.1 (no P0003)"),
)

DEFECTS: dict[str, GatewayDefect] = {d.name: d for d in DEFECTS_LIST}


def behaviour_of(name: str | None) -> Behaviour:
    """The behaviour of defect ``name`` (None: the correct gateway); KeyError naming the known ones."""
    if name is None:
        return Behaviour()
    try:
        return DEFECTS[name].behaviour()
    except KeyError:
        raise KeyError(f"unknown gateway defect {name!r}; `ecdi mutants --party CGW` lists: "
                       f"{', '.join(sorted(DEFECTS))}") from None
