"""The send operation (§1): one message text, transmitted until a usable reply or a final outcome,
with at most ``pixit.n_retry`` retransmissions (REL-03..07).

The message text was stored durably before this runs (REL-09, ``store.Store.create``). Every
retransmission sends the byte-identical text (REL-05): the sender asks the DTS's
``retransmission_text`` hook, which in the reference DTS returns the stored octets unchanged.

Between attempts the sender waits (REL-06), from the end of the failed attempt::

    wait_k = max(min(backoff_max, backoff_base · 2^(k−1)),        pixit values (× s)
                 min(T_backoff_max, T_backoff_base · 2^(k−1)),    profile floor (× s): 2, 4, 8, 16, 32
                 Retry-After of a 503/429,                        never scaled (§2.1)
                 T_poll_min after an E9002)
            × (1 + jitter),  jitter uniform in [0, 0.10] from a seedable RNG

and a query's retransmission moreover starts at least ``T_poll_min`` after the previous attempt
started (REL-13, REL-15).
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Callable

from ..codec import soap
from .clock import Clock
from .config import Timings
from .journal import Journal, message_text_member
from .replies import Expectation, Reply, ReplyReader, ReplyRefused
from .store import Store
from .transport import FINAL, REPLY, RETRYABLE, TLS_FAILURE, AttemptOutcome, Transport

JITTER = 0.10  # REL-6 allows up to +20 %, CAP-06 tolerates 0…+20 % (+1 s): +10 % stays well inside

# Final states of a send operation
GOT_REPLY = "reply"            # a verified, correlated reply: the caller acts on it
ENDED = "ended"                # a final outcome (REL-04): HTTP 3xx/4xx, soap:Client fault, ...
TLS_REFUSED = "tls"            # TRN-10: server certificate did not verify; nothing was sent
SECURITY = "security"          # the reply failed SIG-15 or SEC-04 (REL-04): not acted on
DISCARDED = "discarded"        # a query's malformed reply (RPL-07): polling simply continues
UNKNOWN = "unknown"            # REL-07: retransmissions exhausted (or Retry-After too long)


def backoff_wait(k: int, timings: Timings, rng: random.Random, *, retry_after: float | None = None,
                 after_e9002: bool = False) -> float:
    """Seconds to wait before the k-th retransmission (k = 1, 2, …), REL-06."""
    computed = min(timings.backoff_max, timings.backoff_base * 2 ** (k - 1))
    floor = min(timings.min_backoff_max, timings.min_backoff_base * 2 ** (k - 1))
    wait = max(computed, floor)
    if retry_after is not None:
        wait = max(wait, retry_after)
    if after_e9002:
        wait = max(wait, timings.poll_min)
    return wait * (1 + rng.uniform(0, JITTER))


@dataclass
class SendResult:
    state: str
    outcome: AttemptOutcome | None = None          # the last attempt's outcome
    reply: Reply | None = None                     # state GOT_REPLY
    refusal: ReplyRefused | None = None            # state SECURITY / DISCARDED
    attempt_starts: list[float] = field(default_factory=list)   # epoch seconds, for REL-08

    @property
    def last_attempt_start(self) -> float | None:
        return self.attempt_starts[-1] if self.attempt_starts else None


@dataclass
class Operation:
    """One send operation: which message, about which submission, and how to judge its replies."""

    message_id: str
    submission: str
    text: bytes
    expect: Expectation
    is_query: bool
    draft: object = None   # the unsigned request (dts.Draft), for hooks that would rebuild it


class Sender:
    def __init__(self, *, transport: Transport, reader: ReplyReader, journal: Journal, store: Store,
                 timings: Timings, clock: Clock, rng: random.Random, user_id: str, password: str,
                 retryable_codes: frozenset[str],
                 headers: Callable[[], dict[str, str]],
                 should_retransmit: Callable[[AttemptOutcome], bool],
                 retransmission_text: Callable[[Operation, int], bytes],
                 wait: Callable[[int, AttemptOutcome], float] | None = None,
                 body: Callable[[bytes, str, str], bytes] | None = None):
        self.transport, self.reader, self.journal, self.store = transport, reader, journal, store
        self.timings, self.clock, self.rng = timings, clock, rng
        self._user_id, self._password = user_id, password
        self.retryable_codes = retryable_codes      # E9001, E9002 (REL-03), from the profile's code list
        self.headers, self.should_retransmit, self.retransmission_text = headers, should_retransmit, retransmission_text
        self.wait = wait        # the DTS's ``retransmission_wait`` hook (REL-06); None: ``backoff_wait`` itself
        self.body = body or soap.send_request_body   # the DTS's ``send_body`` hook (TRN-04/05/11)

    def send(self, op: Operation) -> SendResult:
        result = SendResult(UNKNOWN)
        retransmissions = 0
        while True:
            text = op.text if retransmissions == 0 else self.retransmission_text(op, retransmissions)
            started_mono = self.clock.monotonic()
            result.attempt_starts.append(self.clock.now().timestamp())
            self.journal.record("attempt", message_id=op.message_id, submission=op.submission,
                                attempt=retransmissions + 1)
            outcome = self.transport.post(self.body(text, self._user_id, self._password), self.headers())
            outcome, reply, refusal = self._judge(op, outcome)
            result.outcome, result.reply, result.refusal = outcome, reply, refusal
            self.journal.record("attempt-outcome", message_id=op.message_id, submission=op.submission,
                                outcome=outcome.category, detail=outcome.detail, status=outcome.status)
            if reply is not None:
                result.state = GOT_REPLY
                return result
            if outcome.category == TLS_FAILURE:
                result.state = TLS_REFUSED
                return result
            if outcome.category == FINAL or not self.should_retransmit(outcome):
                result.state = SECURITY if refusal and refusal.kind == "security" else (
                    DISCARDED if refusal else ENDED)
                return result
            if retransmissions >= self.timings.n_retry:
                result.state = UNKNOWN                          # REL-07
                return result
            if outcome.retry_after is not None and outcome.retry_after > self.timings.retry_after_max:
                result.state = UNKNOWN                          # REL-06: MAY end instead of waiting > 300 s
                return result
            retransmissions += 1
            wait = (self.wait(retransmissions, outcome) if self.wait is not None else
                    backoff_wait(retransmissions, self.timings, self.rng, retry_after=outcome.retry_after,
                                 after_e9002=outcome.cause == "E9002"))
            if op.is_query:  # a query's retransmission starts ≥ T_poll_min after the previous start
                elapsed = self.clock.monotonic() - started_mono
                wait = max(wait, self.timings.poll_min - elapsed)
            self.clock.sleep(wait)

    def _judge(self, op: Operation, outcome: AttemptOutcome) -> tuple[AttemptOutcome, Reply | None, ReplyRefused | None]:
        """Turn a ``SendResponse`` into an accepted reply, or into a retryable / final outcome (REL-03/04)."""
        if outcome.category != REPLY:
            return outcome, None, None
        text = outcome.reply_text or b""
        try:
            reply = self.reader.read(text, op.expect)
        except ReplyRefused as refusal:
            self.store.store_reply(text, None)
            self.journal.record("reply-received", submission=op.submission, **message_text_member(text))
            self.journal.record("reply-discarded", submission=op.submission, reason=refusal.reason)
            if refusal.kind == "malformed" and not op.is_query:
                return AttemptOutcome(RETRYABLE, "malformed-reply", refusal.reason, outcome.status), None, refusal
            return AttemptOutcome(FINAL, f"reply-{refusal.kind}", refusal.reason, outcome.status), None, refusal
        self.store.store_reply(text, reply.message_id)               # REL-09: before acting on it
        self.journal.record("reply-received", message_id=reply.message_id, submission=op.submission,
                            **message_text_member(text))
        busy = [e.code for e in reply.errors if e.code in self.retryable_codes]
        if reply.function == "271" and busy:
            return AttemptOutcome(RETRYABLE, busy[0], f"271 {busy[0]}: not recorded, to be retransmitted (REL-03)",
                                  outcome.status), None, None
        return outcome, reply, None
