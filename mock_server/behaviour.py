"""How the mock gateway behaves where a real gateway could go wrong: one frozen record of knobs.

Every default is the correct behaviour (the spec's), so ``Behaviour()`` is the conforming gateway. The
pipeline (``checks_run``, ``reject``, steps 1, 3, 5, 7, 9, 10, 13, 14, ``finish``, ``_answer_query``), flows and
payments, reply building and signing (``Replies``) and the HTTP side (endpoint, WSDL, TLS suites, reply
timing, capacity, the control API's history) read a knob at a few named seams — ``gw.behaviour.<knob>`` — and none of
them knows which defect, if any, set it. A gateway *defect* (``defects.py``) is data: a name, the
requirements it breaks, the CGW case that must FAIL it and the knob values it sets — the harness's own
gateway mutants (issue 16).
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace
from typing import Any


@dataclass(frozen=True)
class Behaviour:
    # --- Table 7-3 (RPL-05) ---------------------------------------------------------------------
    # the check steps (pipeline.CHECKS names, without "step_") in the order they run; () = Table 7-3
    check_order: tuple[str, ...] = ()
    # steps not run at all, or these named rules within one: "otp_request_reference" (13, ENV-05),
    # "maker_is_user" and "payment_description" (16, PAY-02, PAY-01)
    skipped_checks: frozenset[str] = frozenset()
    # Table 8-2 rows (their G codes) not checked at step 10 (SIG-08, SIG-09, SIG-11)
    skipped_certificate_rows: frozenset[str] = frozenset()
    # refusals answered with another code (a code → the code given instead), e.g. X0001 → X0002
    code_substitutions: tuple[tuple[str, str], ...] = ()
    lexical_rules: bool = True                            # comments/PIs, NFC, control characters (steps 7, 13)
    # step 9: SHA-1 request signatures judged as the message's profile says (None) or as this value of
    # the profile parameter ``SHA1`` ("accept-with-warning": the 1.0 rule, SIG-07)
    sha1_rule: str | None = None
    refused_signature_methods: frozenset[str] = frozenset()   # SignatureMethod URIs answered G0001 (SIG-03)

    # --- REL-10: a messageId already recorded (step 5) ------------------------------------------
    replay_compares_text: bool = True                     # another text with that messageId is E0003
    replay_new_reception_number: bool = False             # a retransmission's 29 gets a new receptionNumber

    # --- credentials (TRN-11, TRN-12) --------------------------------------------------------------
    tells_unknown_user: bool = False                      # an unknown UserId gets its own description
    reads_http_credentials: bool = False                  # an Authorization: Basic header overrides the body's

    # --- transport (TRN-05, TRN-09, REL-02) ---------------------------------------------------------
    accepts_cdata: bool = True                            # MessageXML as one CDATA section (else soap:Client)
    tls12_ciphers: str = "ECDHE+AESGCM:ECDHE+CHACHA20"    # OpenSSL cipher list for TLS 1.2
    reply_delay_t_cgw: float = 0.0                        # each reply held this many × T_cgw (scaled)
    reply_delay_functions: frozenset[str] = frozenset()   # only replies to these Subject/function (empty: all)
    history_omits_refusals: bool = False                  # the processing history (control API) lists no 271 (SEC-07)
    # TRN-08: Send requests evaluated at once; one more arriving meanwhile is answered as an overloaded CGW
    # (None: no limit, today's gateway), in the form ``overload_answer`` names: "503" (Retry-After 1 s),
    # "E9001" (a signed 271, not recorded) or "503-without-retry-after" (TRN-08 broken)
    capacity: int | None = None
    overload_answer: str = "503"

    # --- replies: how a refusal travels (TRN-06, TRN-07, TRN-08) ---------------------------------
    # result codes of 271 refusals answered with an HTTP status and no SOAP body instead (TRN-06)
    http_status_for_codes: tuple[tuple[str, int], ...] = ()
    # result codes of 271 refusals answered with a soap:Client Fault instead (TRN-07)
    fault_for_codes: frozenset[str] = frozenset()
    # 271 refusals with these codes recorded as the submission's entry 1 (never: TRN-08, REL-10)
    recorded_refusals: frozenset[str] = frozenset()

    # --- reply signatures (SIG-14) -----------------------------------------------------------------
    reply_signature: str = "rsa-sha256"                   # "rsa-sha256" | "rsa-sha1" | "none"
    # reply header fields (Table 4-3 paths) written with these values whatever the request (ENV-10)
    reply_header_values: tuple[tuple[str, str], ...] = ()
    result_code_always: str | None = None                 # resultCode written whatever the errors (RPL-01)

    # --- polling (RPL-03) --------------------------------------------------------------------------
    # a query answers the lowest visible entry above afterSequence + this (−1 repeats, +1 loses one)
    query_after_offset: int = 0
    forgets_entry1: bool = False                          # queries no longer see entry 1 (REL-12)
    poll_min_factor: float = 1.0                          # E9002 below this × T_poll_min (REL-15)
    cancellation_closes_history: bool = True              # an accepted cancellation is final for the declaration (RPL-04)

    # --- payments (PAY-04, PAY-07) -----------------------------------------------------------------
    otp_validity_s: float | None = None                   # T_otp in profile seconds (scaled); None: the profile's
    maker_may_approve: bool = False                       # maker = checker is accepted whatever the profile says
    otp_attempt_limit: int | None = None                  # wrong OTPs before it is invalidated; None: N_otp_attempts
    otp_data_in_reply: bool = True                        # otpSender/otpExpiresAt in the 29 to 701 and 702/16 (PAY-03)
    issues_new_otp: bool = True                           # a 702/16 issues and mails a new OTP (PAY-05)

    # --- WSDL (TRN-02) -----------------------------------------------------------------------------
    wsdl_location: str | None = None                      # soap:address location; None: the gateway's endpoint
    endpoint_path: str = "/ecdi/CISService"               # where Send and the WSDL are served (TRN-01)

    def code_for(self, code: str) -> str:
        return dict(self.code_substitutions).get(code, code)

    def reply_delay(self, function: str | None) -> float:
        """How many × T_cgw the reply to a request of ``function`` (its Subject/function) is held (REL-02)."""
        chosen = not self.reply_delay_functions or function in self.reply_delay_functions
        return self.reply_delay_t_cgw if chosen else 0.0

    def status_for(self, code: str) -> int | None:
        return dict(self.http_status_for_codes).get(code)

    def with_knobs(self, knobs: dict[str, Any]) -> "Behaviour":
        """This behaviour with ``knobs`` set (names checked: a typo is a ValueError, never ignored)."""
        known = {f.name for f in fields(self)}
        unknown = sorted(set(knobs) - known)
        if unknown:
            raise ValueError(f"unknown behaviour knob {unknown[0]!r}")
        return replace(self, **knobs)

    def changed(self) -> dict[str, Any]:
        """The knobs that differ from the correct behaviour (for the evidence and the live page)."""
        correct = Behaviour()
        return {f.name: getattr(self, f.name) for f in fields(self) if getattr(self, f.name) != getattr(correct, f.name)}


CORRECT = Behaviour()
