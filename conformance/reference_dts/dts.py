"""The reference DTS: a declarant terminal that does what ECDI says, in the order it says it.

Read ``lodge`` top to bottom to see a conforming send flow:

    prepare the document (TXT-03/05, DOC-02, DOC-03) → check it (DOC-01) → header (Table 4-1, ENV-02..08)
    → check the certificate (SIG-12) → sign (SIG-01/04) → store (REL-09) → send (REL-03..07)
    → verify and correlate the reply (RPL-06) → act on it (RPL-08..15) → poll after a 29 (REL-13/14)

Everything the user sees is a journalled ``Notification`` (§1, SEC-06) of a kind that keeps local,
transport and security errors apart from customs results (SEC-09); no exception reaches the user.

The hooks (``hooks.py``, ``ReferenceHooks``) are the narrow seams the mutants in ``mutants*.py``
override, one defect each. The reference behaviour of every hook is the one the spec requires.
"""

from __future__ import annotations

import copy
import random
import traceback
from dataclasses import dataclass, field

from lxml import etree

from ..codec.envelope import ErrorEntry, Header, build_envelope, format_datetime, parse_datetime
from ..codec.namespaces import DEC, ENV, q
from ..codec.safexml import XmlRefused, parse_message_text
from .clock import Clock, SystemClock
from .config import DtsConfig
from .documents import DocumentRefused, normalise_text, prepare_content
from .hooks import DECLARATION_TYPES, ReferenceHooks, _Stop
from .journal import Journal, Notification, message_text_member
from .payments import PaymentFlows
from .replies import Expectation, Reply, ReplyReader
from .sender import DISCARDED, ENDED, GOT_REPLY, SECURITY, TLS_REFUSED, UNKNOWN, Operation, Sender, SendResult
from .signing import CertificateUnfit, SigningKey, SigningUnavailable
from .store import (NOT_RECORDED, NOT_SENT, RECORDED, REJECTED, STORED, HistoryEntry, Store, Submission)
from .store import UNKNOWN as PHASE_UNKNOWN
from .transport import Transport

CHANNELS = {"1": "green: no inspection", "2": "yellow: document check", "3": "red: physical inspection"}
UNSETTLED = (STORED, PHASE_UNKNOWN, NOT_SENT)   # REL-08: nothing new before a query settles these


@dataclass
class SubmissionReport:
    """What the DTS shows its user after ``lodge`` or ``query`` (contract: docs/contracts.md)."""

    message_id: str | None
    state: str   # accepted | cleared | rejected | business-error | refused | unknown | not-recorded |
                 # security-error | transport-error | local-error
    status_function: str | None = None
    reception_number: str | None = None
    declaration_number: str | None = None
    channel: str | None = None
    errors: list[ErrorEntry] = field(default_factory=list)
    warnings: list[ErrorEntry] = field(default_factory=list)
    notifications: list[Notification] = field(default_factory=list)
    payment_order_id: str | None = None     # PAY-08: shown after pay-create / request-otp / approve
    otp_expires_at: str | None = None       # PAY-08: the OTP expiry shown, local time with its offset


@dataclass
class Draft:
    """A request before signing: its header fields (Table 4-1) and its Content child."""

    fields: dict[str, str]
    content: etree._Element
    issued: str | None = None   # createMessageIssue of the latest signature (set by compose)

    @property
    def message_id(self) -> str:
        return self.fields["Reference/messageId"]




class _Shown:
    """What one user action showed: the notifications, errors and warnings for its report."""

    def __init__(self) -> None:
        self.notifications: list[Notification] = []
        self.errors: list[ErrorEntry] = []
        self.warnings: list[ErrorEntry] = []


class _Guarded:
    """``inner`` with every method call passed through ``guard`` (``ReferenceDTS.attach_fuse``)."""

    def __init__(self, inner, guard):
        self._inner, self._guard = inner, guard

    def __getattr__(self, name):
        value = getattr(self._inner, name)
        return self._guard(value) if callable(value) else value


class ReferenceDTS(ReferenceHooks, PaymentFlows):
    """A conforming declarant terminal (capabilities ``import``, ``export`` and ``payment``; payments and
    local users, SEC-08, in ``payments.py``)."""

    _guard = None   # see attach_fuse

    def __init__(self, config: DtsConfig, *, clock: Clock | None = None, rng: random.Random | None = None):
        problems = config.problems()
        if problems:
            raise ValueError("the reference DTS cannot start with this configuration: " + "; ".join(problems))
        self.config = config
        self.profile = config.profile
        self.statement = config.statement
        self.timings = config.timings()
        self.clock = clock or SystemClock()
        self.rng = rng or random.Random()
        self.store = Store(config.state_dir)
        self.user = config.users[0]                                              # SEC-08: who acts
        self.user_name = self.user.name
        self.journal = Journal(config.state_dir / "journal.jsonl", user=self.user.name,
                               user_id=self.user.user_id, clock=self.clock)
        self.installation_id = self.installation_identifier()                   # ENV-07
        self.key = SigningKey(config.p12, config.p12_password, trust_list_pem=config.ca_trust_list_pem,
                              crl_dir=config.crl_dir)
        self.reader = ReplyReader(self.profile, config.sign_anchor_pem, authenticate=self.verify_reply_signature,
                                  certificate_problem=self.reply_certificate_problem,
                                  correlate=self.reply_correlation_problem, limits=self.reply_parse_limits)
        self._sender: Sender | None = None
        self._shown = _Shown()
        self.persist_settings()                                                  # SEC-01, SEC-02

    # ============================================================================================
    # User actions

    def lodge(self, content: etree._Element | bytes, *, type: str, function: str = "8",
              business_ref: str | None = None) -> SubmissionReport:
        """Lodge a business document (function 8, 5 or 1) and follow it until its history is complete."""
        return self._act(lambda: self._lodge(content, type, function, business_ref))

    def query(self, submission_id: str) -> SubmissionReport:
        """One manual query (REL-14); for a submission whose outcome is unknown, the REL-08 query."""
        return self._act(lambda: self._query(submission_id))

    def resume(self) -> list[SubmissionReport]:
        """After a restart (REL-09): finish unfinished send operations by retransmitting the stored
        text (never a new messageId), and resume polling of incomplete histories."""
        return [self._act(lambda sub=sub: self._resume(sub)) for sub in self.unfinished_sends()]

    def configure(self) -> SubmissionReport:
        """The settings in force (CAP-07): the user is shown which environment is active."""
        def show() -> SubmissionReport:
            self._tell("info", "CAP-07", self.environment_notice())
            return self._finish(SubmissionReport(None, "accepted"))
        return self._act(show)

    def attach_fuse(self, guard) -> None:
        """For a bench that kills the DTS mid-action (REL-09's test): from now on every call on its store,
        journal and transport goes through ``guard``, which can stop a killed instance from doing any
        further I/O. Not a hook: it changes no behaviour of a live DTS."""
        self._guard = guard
        self.store = _Guarded(self.store, guard)
        self.journal = _Guarded(self.journal, guard)
        if self._sender is not None:
            self._sender.store, self._sender.journal = self.store, self.journal
            self._sender.transport = _Guarded(self._sender.transport, guard)

    def journal_export(self, submission: str | None = None) -> str:
        """SEC-06: the journal as JSON Lines (Table 12-1: UTF-8, one object per LF-terminated line, in time
        order, every event — requests, attempts, replies, notifications), whole or for one submission."""
        return self.journal.export(submission)

    # ============================================================================================
    # The send flow

    def _lodge(self, content, type_: str, function: str, business_ref: str | None) -> SubmissionReport:
        self._sender_for_use()                                                   # TRN-10: https only
        self._refuse_unclaimed(type_, function)                                  # CAP-04
        document = self._prepare(content)                                        # TXT-03/05, DOC-02/03
        ref = self._business_reference(type_, function, business_ref)            # ENV-05, REL-08
        draft = self._draft(type_, function, ref, document, self.new_message_id())   # Table 4-1
        self._check_content(draft)                                               # DOC-01
        text = self.compose(draft)                                               # SIG-12, SIG-01/04
        sub = self._store_request(draft, text)                                   # REL-09
        result = self._send(Operation(sub.message_id, sub.message_id, text, self._expect(sub), is_query=False,
                                      draft=draft))                              # REL-03..07
        state = self._conclude(sub, result)                                      # RPL-06..15
        if self._should_poll(sub):
            self._poll(sub)                                                      # REL-13, REL-14
        return self._report(sub, state)

    def _query(self, submission_id: str) -> SubmissionReport:
        try:
            sub = self.store.load(submission_id)
        except KeyError:
            raise _Stop("local-error", "local-error", "DTS-UNKNOWN-SUBMISSION",
                        f"This DTS has no submission {submission_id!r}.") from None
        unsettled = sub.phase in UNSETTLED
        if unsettled and sub.last_attempt_start is not None:                     # REL-08: T_send after the
            self._wait_until(sub.last_attempt_start + self.unknown_outcome_query_delay())   # last attempt's start
        state = self._query_once(sub)
        if unsettled and sub.phase == NOT_RECORDED:                              # REL-08: E0002 → send the
            state = self._retransmit_original(sub)                               # original text again
        if unsettled and self._should_poll(sub):
            self._poll(sub)                                                      # REL-13 after a late 29
        return self._report(sub, state)

    def _resume(self, sub: Submission) -> SubmissionReport:
        state = None
        if sub.phase == STORED:
            state = self._retransmit_original(sub, check_age=False)
        if self._should_poll(sub):
            self._poll(sub)
        return self._report(sub, state)

    # -- preparing a request -----------------------------------------------------------------------

    def _refuse_unclaimed(self, type_: str, function: str) -> None:
        """ENV-04: a row of Table 4-2 (queries are made by the DTS itself); CAP-04: a claimed capability."""
        permitted = self.profile.permitted_requests.get((type_, function))
        if permitted is None or function == "13":
            raise _Stop("refused", "local-error", "ENV-04",
                        f"Type {type_} with function {function} is not a request ECDI allows here (Table 4-2).")
        if permitted.capability not in self.statement.get("capabilities", []):
            raise _Stop("refused", "local-error", "CAP-04",
                        f"This DTS does not offer '{permitted.capability}' ({type_}/{function}); nothing was sent.")

    def _prepare(self, content) -> etree._Element:
        if isinstance(content, (bytes, str)):
            try:
                content = parse_message_text(content.encode("utf-8") if isinstance(content, str) else content)
            except XmlRefused as exc:
                raise _Stop("refused", "local-error", "DOC-01", f"The document cannot be read: {exc.reason}") from None
        try:
            return prepare_content(content, n_goods_max=int(self.profile.params["N_goods_max"]), rules=self,
                                   xsd_dir=self.profile.directory / "xsd")
        except DocumentRefused as exc:
            raise _Stop("refused", "local-error", exc.requirement, exc.text) from None

    def _business_reference(self, type_: str, function: str, given: str | None) -> str:
        """ENV-05: a reference never used before for this tax code, type and function — except that a
        corrected document after 271, or after 272/273 as entry 1, keeps its reference. REL-08: while an
        earlier message with this reference has an unknown outcome, nothing new is created."""
        if given is None:
            return self.new_business_reference(type_, function)
        for earlier in self.store.with_reference(self.config.tax_code, type_, function, given):
            if earlier.phase in UNSETTLED:
                raise _Stop("refused", "local-error", "REL-08",
                            f"The earlier message {earlier.message_id} with reference {given} has an unknown "
                            "outcome. Query it first; nothing new was created or sent.")
            first = earlier.entries.get(1)
            if earlier.phase == RECORDED and (first is None or first.function not in ("272", "273")):
                number = earlier.merged.reception_number or "?"
                raise _Stop("refused", "local-error", "ENV-05",
                            f"Reference {given} was already recorded by customs (reception number {number}). "
                            "Give this document a new business reference; nothing was sent.")
        return given

    def _draft(self, type_: str, function: str, reference: str, content: etree._Element, message_id: str,
               *, to: tuple[str, str] | None = None, version: str | None = None) -> Draft:
        """The header of Table 4-1, in its order, from the configuration and the capability statement."""
        to_identity, to_name = to or self.addressee(type_)                       # ENV-06
        fields = {
            "procedureType": self.procedure_type(type_, function),               # ENV-04
            "Reference/version": version or self.reference_version(),            # CAP-01
            "Reference/messageId": message_id,                                   # ENV-02
            **self.send_application_fields(),                                    # ENV-08
            # SendApplication/createMessageIssue: set at signing (ENV-03), see compose()
            "From/name": self.config.declarant_name,
            "From/identity": self.acting_for(),                                  # ENV-06
            "To/name": to_name,
            "To/identity": to_identity,
            "Subject/type": type_,
            "Subject/function": function,
            "Subject/reference": reference,                                      # ENV-05
            "Subject/sendApplication": self.installation_id,                     # ENV-07
            "Subject/receiveApplication": "CGW",
        }
        fields = {path: normalise_text(value) for path, value in fields.items()}  # TXT-03
        return Draft(fields, content)

    def _check_content(self, draft: Draft) -> None:
        """DOC-01: the document must follow Tables 6-1…6-4; the user learns of a mistake before signing."""
        unsigned = build_envelope(Header(dict(draft.fields, **{
            "SendApplication/createMessageIssue": format_datetime(self.clock.now())})), copy.deepcopy(draft.content))
        issues = self.profile.validate_content(unsigned)
        if issues:
            listed = "; ".join(f"{i.path}: {i.reason}" for i in issues[:10])
            raise _Stop("refused", "local-error", "DOC-01",
                        f"The document is not valid and was not sent: {listed}")

    def compose(self, draft: Draft) -> bytes:
        """Check the certificate (SIG-12), stamp createMessageIssue (ENV-03) and sign (SIG-01, SIG-04).

        The returned octets are the message text: stored, sent and retransmitted as they are (SIG-02).
        """
        now = self.clock.now()
        fields = dict(draft.fields)
        fields["SendApplication/createMessageIssue"] = draft.issued = self.creation_time_text(now)
        root = build_envelope(Header(fields), copy.deepcopy(draft.content))
        try:
            self.check_certificate(now)
            method, digest = self.signature_methods()
            return self.transmitted_text(self.signed_text(root, method, digest))
        except CertificateUnfit as exc:
            return self.certificate_refused(root, exc)
        except SigningUnavailable as exc:
            return self.signing_failed(root, exc)

    def _store_request(self, draft: Draft, text: bytes) -> Submission:
        """REL-09: the message text is on disk before its first transmission."""
        f = draft.fields
        sub = Submission(
            message_id=draft.message_id, type=f["Subject/type"], function=f["Subject/function"],
            business_ref=f["Subject/reference"], version=f["Reference/version"], from_identity=f["From/identity"],
            to_identity=f["To/identity"], to_name=f["To/name"], created=draft.issued,
            final_functions=self.final_replies(f["Subject/type"], f["Subject/function"]),
            target_declaration=draft.content.findtext(q(DEC, "declarationNumber")))
        self.store.create(sub, text)
        self.journal.record("request-stored", message_id=sub.message_id, submission=sub.message_id,
                            **message_text_member(text))
        return sub

    # -- sending and concluding --------------------------------------------------------------------

    def _sender_for_use(self) -> Sender:
        """Built on first use, so that a bad endpoint or TLS anchor is told to the user as a local error."""
        if self._sender is None:
            endpoint = self.usable_endpoint(self.config.endpoint)                # TRN-10: https only
            self.service_description()                                           # TRN-02: no WSDL needed
            try:
                transport = Transport(endpoint, self.config.tls_ca_pem, t_send=self.attempt_deadline(),
                                      user_agent=f"{self.statement['product']}/{self.statement['version']}",
                                      now=self.clock.now, tls=self.tls_settings(), classify=self.response_outcome)
            except (OSError, ValueError) as exc:
                raise _Stop("local-error", "local-error", "CAP-07",
                            f"The TLS trust anchor {self.config.tls_ca_pem} cannot be used: {exc}. Nothing was sent.") from None
            if self._guard is not None:
                transport = _Guarded(transport, self._guard)                    # see attach_fuse
            self._sender = Sender(
                transport=transport, reader=self.reader, journal=self.journal, store=self.store,
                timings=self.timings, clock=self.clock, rng=self.rng, user_id=self.user.user_id,
                password=self.user.password, headers=self.soap_headers, should_retransmit=self.should_retransmit,
                retryable_codes=frozenset(c for c, r in self.profile.result_codes.items() if r.retryable),
                retransmission_text=self.retransmission_text, wait=self.retransmission_wait, body=self.send_body)
        return self._sender

    def _send(self, op: Operation) -> SendResult:
        return self._sender_for_use().send(op)

    def _expect(self, sub: Submission) -> Expectation:
        """"The request" of ENV-10 for every reply about this submission (SEC-04)."""
        return Expectation(reference=sub.message_id, to_identity=sub.from_identity, type=sub.type, version=sub.version)

    def _conclude(self, sub: Submission, result: SendResult) -> str | None:
        """The end of a submission's send operation: act on its reply, or tell the user what happened.
        Returns the report state of a non-customs ending, None when a reply decides it."""
        if result.last_attempt_start is not None:
            sub.last_attempt_start = result.last_attempt_start
        state = None
        if result.state == GOT_REPLY:
            self._act_on_reply(sub, result.reply, to_query=False)
            if sub.phase == STORED:              # a transient reply other than 271 to a submission: odd,
                sub.phase = PHASE_UNKNOWN        # so the outcome stays unknown (REL-08 applies)
        elif result.state == TLS_REFUSED:
            sub.phase = NOT_SENT if sub.phase == STORED else sub.phase
            state = self._tell_stop("security-error", "security-error", "TRN-10",
                                    f"TLS security error: {result.outcome.detail}. Nothing was sent and it will not be "
                                    "retried automatically; check the gateway address and the TLS trust anchor.", sub)
        elif result.state == SECURITY:
            sub.phase = PHASE_UNKNOWN if sub.phase == STORED else sub.phase
            state, kind, text = self.security_notice(result.refusal.reason)
            state = self._tell_stop(state, kind, result.refusal.requirement, text, sub)
        elif result.state == ENDED:
            sub.phase = PHASE_UNKNOWN if sub.phase == STORED else sub.phase
            state = self._tell_stop("transport-error", "transport-error", "REL-04",
                                    f"Transport error: {result.outcome.detail}. The message was not retransmitted; "
                                    "its outcome is unknown — query it later.", sub)
        else:  # UNKNOWN (REL-07): attempts exhausted — neither "rejected" nor "not sent"
            sub.phase = PHASE_UNKNOWN if sub.phase == STORED else sub.phase
            last = result.outcome.detail if result.outcome else "no attempt"
            state, text = self.exhausted_notice(len(result.attempt_starts), last)
            state = self._tell_stop(state, "transport-error", "REL-07", text, sub)
        self.store.save(sub)
        return state

    def _retransmit_original(self, sub: Submission, *, check_age: bool = True) -> str | None:
        """REL-08 / REL-09: send the stored, byte-identical message text again (new send operation)."""
        if check_age and self.clock.now().timestamp() - parse_datetime(sub.created).timestamp() > self.timings.age_max:
            self._tell("info", "REL-08", "Customs does not have this message and it is too old to be sent again; "
                       "lodge the document again as a new message (same business reference).", sub)
            return "not-recorded"
        text = self.store.message_text(sub.message_id)
        sub.phase = STORED
        self.store.save(sub)
        return self._conclude(sub, self._send(Operation(sub.message_id, sub.message_id, text, self._expect(sub),
                                                        is_query=False)))

    # -- polling (REL-13, REL-14) ---------------------------------------------------------------

    def _should_poll(self, sub: Submission) -> bool:
        first = sub.entries.get(1)
        return (sub.type in DECLARATION_TYPES and sub.phase == RECORDED and first is not None
                and first.function == "29" and not sub.complete and not sub.polling_expired)

    def _poll(self, sub: Submission) -> None:
        """Query with function 13 — first T_poll_min after the 29, then every poll_interval between query
        starts, one at a time — until the history is complete or poll_max_total after the 29 (REL-13/14)."""
        t = self.timings
        give_up_at = sub.receipt_at + t.poll_max_total
        next_start = sub.receipt_at + self.first_poll_delay()
        if sub.last_query_start is not None:
            next_start = max(next_start, sub.last_query_start + t.poll_interval)
        while self._should_poll(sub):
            if next_start > give_up_at:
                sub.polling_expired = True
                self.store.save(sub)
                self.polling_stopped_notice(sub)
                return
            self._wait_until(next_start)
            started = self.clock.now().timestamp()
            if self._query_once(sub, automatic=True) == "stop":
                return
            next_start = max(started, sub.last_query_start or started) + t.poll_interval

    def _query_once(self, sub: Submission, *, automatic: bool = False) -> str | None:
        """One query (function 13, afterSequence = the RPL-09 watermark) as a send operation of its own."""
        if sub.last_query_start is not None:                                     # REL-14: T_poll_min too
            self._wait_until(sub.last_query_start + self.timings.poll_min)
        query = etree.Element(q(ENV, "Query"), nsmap={None: ENV})
        etree.SubElement(query, q(ENV, "afterSequence")).text = str(self.query_after_sequence(sub))
        draft = self._draft(sub.type, "13", sub.message_id, query, self.new_message_id(),
                            to=(sub.to_identity, sub.to_name), version=sub.version)
        try:
            text = self.compose(draft)
        except _Stop as stop:
            self._tell(stop.kind, stop.code, stop.text, sub)
            return "stop" if automatic else stop.state
        self.store.store_query(sub.message_id, draft.message_id, text)
        self.journal.record("request-stored", message_id=draft.message_id, submission=sub.message_id,
                            **message_text_member(text))
        sub.last_query_start = self.clock.now().timestamp()
        sub.queries.append(draft.message_id)
        self.store.save(sub)
        result = self._send(Operation(draft.message_id, sub.message_id, text, self._expect(sub), is_query=True,
                                      draft=draft))
        if result.last_attempt_start is not None:            # REL-13/REL-15: a retransmitted query's last
            sub.last_query_start = result.last_attempt_start  # attempt is the latest query start
        if result.state == GOT_REPLY:
            self._act_on_reply(sub, result.reply, to_query=True)
            return None
        if result.state == DISCARDED:                       # RPL-07: journalled; polling simply continues
            return None
        if result.state == TLS_REFUSED:                     # TRN-10: no automatic retry of any kind
            self._tell("security-error", "TRN-10", f"TLS security error while querying: {result.outcome.detail}. "
                       "Automatic polling stopped; check the gateway address and TLS trust anchor.", sub)
            return "stop" if automatic else "security-error"
        if result.state == SECURITY:
            self._tell("security-error", result.refusal.requirement,
                       f"Security error: a reply to a status query was not acted on ({result.refusal.reason}).", sub)
            return None if automatic else "security-error"
        detail = result.outcome.detail if result.outcome else "no attempt"
        self._tell("transport-error", "REL-07" if result.state == UNKNOWN else "REL-04",
                   f"A status query got no usable answer ({detail}); nothing changed.", sub)
        return None if automatic else "transport-error"

    def _wait_until(self, epoch: float) -> None:
        self.clock.sleep(epoch - self.clock.now().timestamp())

    # -- acting on a verified reply (RPL-08..15) ---------------------------------------------------

    def _act_on_reply(self, sub: Submission, reply: Reply, *, to_query: bool) -> None:
        if self.already_processed(reply):                                            # RPL-08
            self.journal.record("reply-discarded", message_id=reply.message_id, submission=sub.message_id,
                                reason="reply messageId already processed (RPL-08)")
            return
        if reply.transient:
            self._act_on_transient(sub, reply, to_query)
        else:
            entry = HistoryEntry(reply.sequence, reply.function, reply.message_id, reply.result)
            if not sub.add_entry(entry):                                             # RPL-09: never replaced
                self.journal.record("reply-discarded", message_id=reply.message_id, submission=sub.message_id,
                                    reason=f"sequence {reply.sequence} is already held by another reply")
            else:
                if reply.sequence == 1 and reply.function == "29" and sub.receipt_at is None:
                    sub.receipt_at = self.clock.now().timestamp()                    # REL-13/14 count from here
                self._show_entry(sub, reply)
                self.complete_cancelled(sub, entry)                                  # RPL-10
        self.show_warnings(sub, reply)                                               # RPL-15
        self.store.save(sub)
        self.store.mark_processed(reply.message_id)

    def _act_on_transient(self, sub: Submission, reply: Reply, to_query: bool) -> None:
        """RPL-12, RPL-13: transient replies change nothing, except a 271 to the request itself and E0002."""
        if reply.function == "12":
            self.pending_reply(sub, reply)                                           # RPL-13: never a failure
            return
        if reply.function == "271" and not to_query:
            self.message_rejected(sub, reply)
            return
        if reply.has_code("E0002"):
            sub.phase = NOT_RECORDED
            self._show_errors(sub, reply, "E0002", "Customs has no record of this submission (not recorded by "
                              "the gateway).")
            return
        self._show_errors(sub, reply, reply.function, f"Customs answered {reply.function} to the status query; "
                          "the submission's state is unchanged.")

    def _show_entry(self, sub: Submission, reply: Reply) -> None:
        """A history entry: a customs result, or for 272/273 a customs error with every Error shown."""
        r, f = reply.result, reply.function
        if f in ("272", "273"):
            what = "Business error" if f == "272" else "Approval refused"
            self._show_errors(sub, reply, f, f"{what} from customs (status {f}).")
            return
        texts = {
            "29": f"Customs recorded the submission: reception number {r.reception_number}.",
            "30": f"Declaration number {r.declaration_number} issued.",
            "10": f"Channel {r.channel} assigned ({CHANNELS.get(r.channel or '', 'unknown channel')}).",
            "33": "Tax notice: " + ", ".join(f"{t.tax_type} {t.amount_vnd} VND" for t in r.taxes)
                  + f"; total {r.taxes_total_vnd} VND, due {r.taxes_due_date}.",
            "31": "Awaiting approval by a customs officer.",
            "32": "Accepted by customs.",
            "35": f"Cleared by customs at {r.cleared_at}.",
        }
        self._tell("customs-result", f, texts.get(f, f"status {f}"), sub, reply.message_id)   # RPL-11: unknown

    def _show_errors(self, sub: Submission, reply: Reply, code: str, summary: str) -> None:
        """RPL-14: every Error shown verbatim (through ``render_error``), after a one-line summary."""
        self._tell("customs-error", code, summary, sub, reply.message_id)
        for entry in reply.errors:
            self._shown.errors.append(entry)
            self._tell("customs-error", entry.code, self.render_error(entry), sub, reply.message_id)

    def complete_cancelled(self, sub: Submission, entry: HistoryEntry) -> None:
        """RPL-10: a processed 32 to a cancellation also completes the cancelled declaration's history."""
        if sub.function != "1" or entry.function != "32" or not sub.target_declaration:
            return
        for cancelled in self.store.with_declaration_number(sub.from_identity, sub.type, sub.target_declaration):
            cancelled.cancelled = True
            self.store.save(cancelled)
            self._tell("customs-result", "32", f"Declaration {sub.target_declaration} is cancelled.", cancelled)

    # -- telling the user --------------------------------------------------------------------------

    def _tell(self, kind: str, code: str | None, text: str, sub: Submission | None = None,
              message_id: str | None = None) -> None:
        submission = sub.message_id if sub else None
        self._shown.notifications.append(self.journal.notify(kind, code, text, message_id=message_id or submission,
                                                              submission=submission))

    def _tell_stop(self, state: str, kind: str, code: str, text: str, sub: Submission) -> str:
        self._tell(kind, code, text, sub)
        return state

    def _act(self, action) -> SubmissionReport:
        """Run one user action; whatever happens, the user gets a report and no traceback."""
        self._shown = _Shown()
        try:
            return action()
        except _Stop as stop:
            self._tell(stop.kind, stop.code, stop.text)
            return self._finish(SubmissionReport(None, stop.state))
        except Exception as exc:  # noqa: BLE001 — the last line of defence (SEC-09: a local error)
            detail = "".join(traceback.format_exception_only(type(exc), exc)).strip()
            try:
                self._tell("local-error", "DTS-INTERNAL", f"Internal error of the DTS: {detail}")
            except Exception:  # noqa: BLE001 — even the journal failed; still no traceback
                self._shown.notifications.append(Notification("local-error", "DTS-INTERNAL", detail))
            return self._finish(SubmissionReport(None, "local-error"))

    def _report(self, sub: Submission, state: str | None) -> SubmissionReport:
        merged = sub.merged
        return self._finish(SubmissionReport(
            message_id=sub.message_id, state=state or self._state_of(sub), status_function=sub.status_function,
            reception_number=merged.reception_number, declaration_number=merged.declaration_number,
            channel=merged.channel))

    def _finish(self, report: SubmissionReport) -> SubmissionReport:
        report.notifications = list(self._shown.notifications)
        report.errors = list(self._shown.errors)
        report.warnings = list(self._shown.warnings)
        return report

    @staticmethod
    def _state_of(sub: Submission) -> str:
        """The submission as the user sees it, from what customs said (RPL-09: highest sequence)."""
        if sub.phase == REJECTED:
            return "rejected"
        if sub.phase == NOT_RECORDED:
            return "not-recorded"
        if sub.phase != RECORDED:
            return "unknown"
        if any(e.function in ("272", "273") for e in sub.entries.values()):
            return "business-error"
        return "cleared" if sub.status_function == "35" else "accepted"
