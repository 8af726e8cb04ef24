"""The reference DTS's hooks: the narrow seams through which it does what a requirement names.

Each method is the reference (conforming) behaviour, with the requirement it implements; every mutant in
``mutants*.py`` overrides exactly one of them (``HOOKS``). ``ReferenceDTS`` (dts.py) inherits them and
calls them from its send flow, so reading this file shows every place a defect can be injected.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from cryptography.hazmat.primitives.asymmetric import ec
from lxml import etree

from ..codec import soap, xmlsig
from ..codec.envelope import ErrorEntry, Header, format_datetime, new_message_id
from .config import STATEMENT_FILE
from . import documents
from .payments import PAYMENT_HOOKS
from .replies import MAX_DEPTH, Expectation, Reply, correlation_problem, gateway_certificate_problem
from .sender import Operation, backoff_wait
from .signing import CertificateUnfit, SigningUnavailable
from .store import RECORDED, REJECTED, STORED, Submission
from .transport import AttemptOutcome, TlsSettings, classify_response, endpoint_problem

DECLARATION_TYPES = ("929", "930")


class _Stop(Exception):
    """Ends the current action with one notification (the user is told why) and a report state."""

    def __init__(self, state: str, kind: str, code: str | None, text: str):
        super().__init__(text)
        self.state, self.kind, self.code, self.text = state, kind, code, text


class ReferenceHooks:
    """The hooks of ``ReferenceDTS``: behaviour only, on the state ``ReferenceDTS`` sets up."""

    HOOKS = frozenset({"attempt_deadline", "security_notice", "message_rejected",
                       "retransmission_wait", "exhausted_notice", "first_poll_delay", "pending_reply",
                       "query_after_sequence", "polling_stopped_notice", "final_replies",
                       "unknown_outcome_query_delay",
                       "soap_headers", "creation_time_text", "signature_methods", "render_error",
                       "retransmission_text", "should_retransmit", "check_certificate",
                       "verify_reply_signature", "signed_text", "signing_failed", "certificate_refused",
                       "reply_certificate_problem", "reply_correlation_problem", "reply_parse_limits",
                       "transmitted_text", "journal_export", "persist_settings", "acting_for"})
    HOOKS = HOOKS | PAYMENT_HOOKS          # payments and local users (issue 6): payments.py
    # Restart, duplicates, warnings, capabilities (issue 6)
    HOOKS = HOOKS | {"unfinished_sends", "already_processed", "show_warnings", "environment_notice",
                     "shipped_statement", "complete_cancelled"}
    # Envelope header (issue 6): ENV-02, ENV-04..ENV-08, CAP-01
    HOOKS = HOOKS | {"new_message_id", "new_business_reference", "procedure_type", "addressee",
                     "installation_identifier", "send_application_fields", "reference_version"}

    # Transport (issue 6): TRN-02, TRN-05, TRN-09, TRN-10, TRN-11, REL-04
    HOOKS = HOOKS | {"tls_settings", "usable_endpoint", "send_body", "service_description", "response_outcome"}

    def tls_settings(self) -> TlsSettings:
        """TRN-09, TRN-10: TLS 1.2 or 1.3 with AEAD suites only; the server chain verified to the configured
        TLS anchor and the endpoint's host name checked against the certificate — never switched off."""
        return TlsSettings()

    def usable_endpoint(self, endpoint: str) -> str:
        """TRN-10: a ``cgw_endpoint`` that does not start with ``https://`` is refused (nothing is sent,
        the user is told); there is no plain-HTTP fallback and no silent upgrade."""
        problem = endpoint_problem(endpoint)
        if problem:
            raise _Stop("local-error", "local-error", "TRN-10", problem + " Nothing was sent.")
        return endpoint

    def attempt_deadline(self) -> float:
        """REL-01: an attempt is abandoned as timed out ``pixit.t_send_s`` (× s) after it started — not
        earlier, not later."""
        return self.timings.t_send

    def security_notice(self, reason: str) -> tuple[str, str, str]:
        """SEC-09: a reply refused for a security reason is told as a security error — never as a customs
        rejection or result — and the submission's outcome stays unknown: (report state, notification
        kind, text)."""
        return ("security-error", "security-error",
                f"Security error: the reply was not acted on ({reason}). The outcome is unknown; query this "
                "submission later.")

    def message_rejected(self, sub: Submission, reply: Reply) -> None:
        """RPL-12: a 271 answering the request itself ends the send operation: the message was NOT
        recorded (no retransmission, no polling) and every Error is shown as a customs rejection."""
        sub.phase = REJECTED
        self._show_errors(sub, reply, "271", "Rejected by customs at message level: the message was NOT "
                          "recorded. Correct the credentials and send the same message again, or correct the "
                          "document and lodge it as a new message.")

    def send_body(self, text: bytes, user_id: str, password: str) -> bytes:
        """TRN-04, TRN-05, TRN-11: one ``svc:Send`` whose MessageXML holds the message text as escaped
        character data (no CDATA, no child elements) and whose UserId and Password — the only place the
        credentials travel — are exactly as entered."""
        return soap.send_request_body(text, user_id, password)

    def service_description(self) -> None:
        """TRN-02: the DTS does not need the WSDL at run time; it fetches nothing before sending."""
        return None

    def response_outcome(self, status: int, headers, body: bytes, now: datetime) -> AttemptOutcome:
        """REL-03, REL-04: a complete HTTP response's meaning — HTTP 3xx (never followed), a 500 with a
        ``soap:Client`` fault and every other 4xx (413 included) end the send operation."""
        return classify_response(status, headers, body, now)

    def soap_headers(self) -> dict[str, str]:
        """TRN-03: exactly these two headers, the SOAPAction value *with* its double quotes."""
        return {"Content-Type": soap.CONTENT_TYPE, "SOAPAction": soap.SOAP_ACTION}

    def creation_time_text(self, moment: datetime) -> str:
        """ENV-03: the clock time at signing, as §4.2 DateTime *with* its UTC offset (+07:00)."""
        return format_datetime(moment)

    def signature_methods(self) -> tuple[str, str]:
        """SIG-04: SHA-256 for signature and digest in every profile (never SHA-1, SEC-03); ECDSA P-256
        with SHA-256 when the installed key is an EC key (capability ``ecdsa``, Table 8-1)."""
        if isinstance(self.key.signer().key, ec.EllipticCurvePrivateKey):
            return xmlsig.ECDSA_SHA256, xmlsig.SHA256
        return xmlsig.RSA_SHA256, xmlsig.SHA256

    def reply_certificate_problem(self, signer, intermediates, anchors, issued: datetime) -> str | None:
        """SIG-15: a reply's certificate must be valid at the reply's createMessageIssue and issued under
        cgw_sign_anchor — any certificate of that anchor, so a renewed gateway certificate is accepted."""
        return gateway_certificate_problem(signer, intermediates, anchors, issued)

    def reply_correlation_problem(self, header: Header, expect: Expectation) -> str | None:
        """SEC-04: Subject/reference names the message sent or queried; To/identity, Subject/type and
        Reference/version are those of "the request" (ENV-10); 271 placeholders are not checked."""
        return correlation_problem(header, expect, version_placeholders=self.reader._version_placeholders)

    def reply_parse_limits(self) -> tuple[int | None, int | None]:
        """SEC-05: replies larger than S_max or nested deeper than 64 elements are refused (RPL-07)."""
        return int(self.profile.params["S_max"]), MAX_DEPTH

    def acting_for(self) -> str:
        """ENV-06: From/identity is the tax code of the declarant the user acts for — a branch's own code
        (NNNNNNNNNN-NNN) when acting for a branch, even though it signs with its parent's certificate (SIG-09)."""
        return self.config.tax_code

    def persist_settings(self) -> None:
        """SEC-01, SEC-02: nothing the DTS writes holds a password, the PKCS#12 password or the private key.
        The reference DTS is given its settings at start and keeps the secrets in memory only; the key stays
        in the encrypted PKCS#12 file. So it writes no settings file at all."""
        return None

    def transmitted_text(self, signed: bytes) -> bytes:
        """SIG-02: the octets transmitted are exactly the octets signed — no re-indentation, re-encoding,
        namespace or prefix change after signing."""
        return signed

    def render_error(self, entry: ErrorEntry) -> str:
        """RPL-14: code, field and the Vietnamese description exactly as received."""
        where = f" — {entry.field}" if entry.field else ""
        return f"{entry.code}{where}: {entry.description}"

    def retransmission_text(self, op: Operation, k: int) -> bytes:
        """REL-05, SIG-02: the k-th retransmission is the byte-identical stored text — same messageId,
        createMessageIssue and signature; never re-signed, never re-serialised."""
        return op.text

    def check_certificate(self, now: datetime) -> None:
        """SIG-12: the certificate is fit for From/identity before anything is signed."""
        self.key.check(self.acting_for(), now)

    def verify_reply_signature(self, text: bytes) -> etree._Element:
        """SIG-15, RPL-06: before anything in a reply is believed, its signature (Table 8-1, RSA-SHA256)
        and its certificate under cgw_sign_anchor are verified; only the signed tree is returned."""
        return self.reader.authenticated_root(text)

    def signed_text(self, root: etree._Element, signature_method: str, digest_method: str) -> bytes:
        """SIG-01, Table 8-1: one enveloped signature over the whole envelope (Reference URI=""), the
        certificate chain in KeyInfo/X509Data; the returned octets are the message text (SIG-02)."""
        return self.key.sign(root, signature_method=signature_method, digest_method=digest_method)

    def signing_failed(self, unsigned: etree._Element, problem: SigningUnavailable) -> bytes:
        """SIG-13, SEC-03: when signing fails nothing is sent and the user is told the cause; there is no
        unsigned fallback, so this never returns a message text."""
        raise _Stop("local-error", "local-error", "SIG-13",
                    f"The message could not be signed: {problem}. Nothing was sent.")

    def certificate_refused(self, unsigned: etree._Element, problem: CertificateUnfit) -> bytes:
        """SIG-12, SEC-03: a certificate unfit for use (expired, revoked, ...) stops the send before
        signing and the user is told the cause and remedy; no unsigned fallback: never a message text."""
        raise _Stop("refused", "local-error", "SIG-12",
                    f"The signing certificate cannot be used: {problem.cause} ({problem.detail}). "
                    f"Remedy: {problem.remedy}. Nothing was sent.")

    def should_retransmit(self, outcome: AttemptOutcome) -> bool:
        """REL-03: every retryable outcome (timeout included) is retransmitted while attempts remain."""
        return outcome.retryable

    def retransmission_wait(self, k: int, outcome: AttemptOutcome) -> float:
        """REL-06: before the k-th retransmission, the PIXIT backoff (never below the profile's floor),
        at least a 503/429's Retry-After (not scaled) and T_poll_min after an E9002; +0…10 % jitter."""
        return backoff_wait(k, self.timings, self.rng, retry_after=outcome.retry_after,
                            after_e9002=outcome.cause == "E9002")

    def exhausted_notice(self, attempts: int, last: str) -> tuple[str, str]:
        """REL-07: retransmissions exhausted — the outcome is unknown, never "rejected" or "not sent"."""
        return "unknown", (f"Outcome unknown: no usable answer after {attempts} attempt(s) ({last}). The message may "
                           "have been recorded; it is not rejected. Query it later — the DTS queries before sending "
                           "anything new for this document.")

    def first_poll_delay(self) -> float:
        """REL-13: the first query starts no earlier than T_poll_min after the 29."""
        return self.timings.poll_min

    def pending_reply(self, sub: Submission, reply: Reply) -> None:
        """RPL-13: a 12 ("not yet processed") is never a failure: nothing changes and polling goes on."""
        return None

    def query_after_sequence(self, sub: Submission) -> int:
        """RPL-09: afterSequence is the highest n such that entries 1…n have all been processed."""
        return sub.watermark

    def unknown_outcome_query_delay(self) -> float:
        """REL-08: the query settling an unknown outcome starts no earlier than T_send after the last attempt."""
        return self.timings.profile_t_send

    def final_replies(self, type_: str, function: str) -> list[str]:
        """RPL-10, Table 7-2: the reply functions after which a submission's history is complete."""
        return sorted(self.profile.reply_flows[(type_, function)].final)

    def unfinished_sends(self) -> list[Submission]:
        """REL-09: after a restart, the submissions whose send operation was not finished (their stored
        text is retransmitted, same messageId) and those whose history is still being polled."""
        return [sub for sub in self.store.all()
                if sub.phase == STORED or (sub.phase == RECORDED and self._should_poll(sub))]

    def already_processed(self, reply: Reply) -> bool:
        """RPL-08: a reply whose messageId was already processed is discarded: no state change, no
        second notification."""
        return self.store.processed(reply.message_id)

    def show_warnings(self, sub: Submission, reply: Reply) -> None:
        """RPL-15: every W code is shown to the user (verbatim, as a warning); it never makes the reply a
        failure — the entry is processed like one without warnings."""
        for warning in reply.warnings:
            self._shown.warnings.append(warning)
            self._tell("warning", warning.code, self.render_error(warning), sub, reply.message_id)

    def environment_notice(self) -> str:
        """CAP-07: the user sees which environment (production or test) is active, and where it points."""
        kind = "PRODUCTION" if self.config.environment == "production" else "TEST"
        return (f"Active environment: {kind} ({self.config.environment}) — gateway {self.config.endpoint}, "
                f"profile {self.profile.id}, time scale {self.config.effective_scale:g}.")

    @staticmethod
    def shipped_statement() -> str:
        """CAP-05, CAP-04: the capability statement the vendor ships with the product, ``ecdi-conformance.toml``
        (exactly the keys of Table 13-2), claiming every capability the product exercises. The DTS itself
        is configured from its own settings (``DtsConfig.statement``), as a product's code is built
        independently of the file its vendor hands in."""
        return STATEMENT_FILE.read_text(encoding="utf-8")

    def polling_stopped_notice(self, sub: Submission) -> None:
        """REL-14: automatic polling gave up at poll_max_total: the user learns to fetch the result later."""
        self._tell("info", "REL-14", "The customs result has not been received yet and must be fetched "
                   "later: use the manual query for this submission.", sub)

    def new_message_id(self) -> str:
        """ENV-02: a fresh random (version 4) UUID for every new message, queries included — from the
        operating system's CSPRNG, so no two installations or restarts ever repeat one."""
        return new_message_id()

    def new_business_reference(self, type_: str, function: str) -> str:
        """ENV-05: a business reference this DTS has never used for its tax code, type and function (the
        store is durable, so a restart cannot bring an old one back)."""
        while True:
            ref = f"R{self.clock.now().strftime('%Y%m%d')}-{new_message_id()[:13].replace('-', '')}"
            if not self.store.with_reference(self.config.tax_code, type_, function, ref):
                return ref

    def procedure_type(self, type_: str, function: str) -> str:
        """ENV-04: procedureType per Table 4-1 for the Table 4-2 row (1 for 929/930, 2 for 701/702)."""
        return self.profile.permitted_requests[(type_, function)].procedure_type

    def addressee(self, type_: str) -> tuple[str, str]:
        """ENV-06: To/identity and To/name — the office of lodgement for declarations, ``central_office``
        for payments."""
        if type_ in DECLARATION_TYPES:
            return self.config.office, self.config.office_name
        central = self.profile.deployment["central_office"]
        return central, self.profile.offices.get(central, central)

    def installation_identifier(self) -> str:
        """ENV-07: the installation identifier, a UUID generated once when the DTS is first started in its
        state folder and kept there, unchanged by restarts."""
        return self.store.installation_id()

    def send_application_fields(self) -> dict[str, str]:
        """ENV-08: SendApplication name, version, companyName, companyIdentity from the capability statement
        (CAP-05); certificationId only where the profile makes it mandatory (1.1), the statement's
        ``certification_id`` or ECDI-0000-00000 before certification; absent in 1.0."""
        st = self.statement
        fields = {"SendApplication/name": st["product"], "SendApplication/version": st["version"],
                  "SendApplication/companyName": st["vendor"], "SendApplication/companyIdentity": st["vendor_tax_code"]}
        if self.profile.params.get("certification_id") == "mandatory":
            fields["SendApplication/certificationId"] = st.get("certification_id", "ECDI-0000-00000")
        return fields

    def reference_version(self) -> str:
        """CAP-01: Reference/version is the profile configured for the environment, one the statement claims."""
        return self.config.version

    # -- Hooks of document preparation (DOC-02, DOC-03, TXT-03..06; see documents.py) ---------------
    HOOKS = HOOKS | frozenset({"normalise_text", "clean_text", "text_length", "goods_limit", "line_numbers",
                               "sum_amounts", "number_text"})

    def normalise_text(self, value: str | None) -> str | None:
        """TXT-03: every character data in Unicode NFC (typed, pasted or imported text, e.g. decomposed "Hải"
        from a TCVN3/VNI converter) before signing; TXT-05: CR LF becomes LF."""
        return documents.normalise_text(value)

    def clean_text(self, value: str, *, lf_allowed: bool, where: str) -> str:
        """TXT-05: a Text(n) value without white space at its edges and without control characters; LF kept
        only where "LF allowed" is stated (elsewhere a line break becomes a space); other controls refused."""
        return documents.clean_text(value, lf_allowed=lf_allowed, where=where)

    def text_length(self, value: str) -> int:
        """TXT-04: lengths are counted in Unicode code points after NFC — not octets, not UTF-16 units."""
        return len(value)

    def goods_limit(self, items: list, n_goods_max: int) -> list:
        """DOC-02: more than N_goods_max goods items is never sent; the user is told to split the shipment."""
        if len(items) > n_goods_max:
            raise documents.goods_limit_refusal(len(items), n_goods_max)
        return items

    def line_numbers(self, given: list[str | None]) -> list[str]:
        """DOC-03: the DTS numbers lineNo itself, 1, 2, 3… in document order, whatever the user wrote."""
        return [str(n) for n in range(1, len(given) + 1)]

    def sum_amounts(self, values: list[str | None]) -> Decimal | None:
        """DOC-03: totals are the exact decimal sums of their lines — no binary floating point, no rounding."""
        return documents.exact_sum(values)

    def number_text(self, value: Decimal) -> str:
        """TXT-06: a number the DTS writes has the §4.2 lexical form whatever the user-interface locale
        (config.ui_locale): "." as decimal separator, no grouping, no exponent, no sign."""
        return documents.decimal_text(value)

