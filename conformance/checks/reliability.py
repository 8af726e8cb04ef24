"""Retransmission, polling and reply handling (REL, RPL)."""

from __future__ import annotations

from lxml import etree

from ..case import Check
from .core import says
from .signatures import CUSTOMS_KINDS
from ..codec import safexml
from ..codec.envelope import content_child
from ..codec.namespaces import ENV, q


# --- reliability and reply handling (issue 6) ------------------------------------------------------
# Timings are taken where the clauses take them (docs/decisions.md, "Where a timing starts and ends"):
# an attempt starts at connection set-up or reuse (REL-01) — the gateway's accept of a new connection,
# the request's arrival on a reused one — and ends, for REL-06, when the response ended or the connection
# closed, whichever came first (the client giving up on a timed-out attempt closes it). A failed timing
# check carries the windows it measured and by how much it missed (``timing_detail``), so the case context
# can ask whether the harness's own lag could explain the miss (conformance/lag.py).

def attempt_start(ex) -> float:
    """When the attempt carrying ``ex`` started as the gateway saw it (REL-01: connection set-up or reuse)."""
    accepted = getattr(ex, "connection_accepted_at", None)
    if accepted is not None and getattr(ex, "connection_request", None) == 1:
        return accepted
    return ex.received_at


def attempt_end(ex) -> float:
    """When the attempt carrying ``ex`` ended (REL-06): when the gateway sent its response (``responded_at``: the
    row is committed just before the first octet) or reset, or the close of the connection if that came
    first (a timed-out attempt the client gave up)."""
    ends = [t for t in (ex.responded_at, getattr(ex, "connection_closed_at", None)) if t is not None]
    return min(ends) if ends else ex.received_at


def gave_up_before_reply(ex) -> bool:
    """The client closed the attempt's connection before the gateway's reply went out: that reply never
    reached it (a timed-out attempt, REL-03), so a retransmission after it answers no reply."""
    closed = getattr(ex, "connection_closed_at", None)
    return closed is not None and (ex.responded_at is None or closed <= ex.responded_at)


def timed_out(ex, t_send: float, tolerance: float) -> bool:
    """A DTS keeping REL-01 cannot have had ``ex``'s reply: it gave up first, the reply has not gone out (a row
    still in flight), or it went out ``t_send`` (less the tolerance) or more after the attempt started."""
    return (gave_up_before_reply(ex) or ex.responded_at is None
            or ex.responded_at - attempt_start(ex) + tolerance >= t_send)


def reply_in_time(attempts: list, t_send: float, tolerance: float) -> Check:
    """Some attempt's reply went out soon enough to reach a DTS keeping REL-01. When none did (a gateway
    starved past ``t_send`` on every attempt) the DTS never had the reply a case staged, and its outcome is
    unknown (REL-07): nothing to judge of what it did with that reply."""
    late = [ex for ex in attempts if timed_out(ex, t_send, tolerance)]
    if attempts and len(late) == len(attempts):
        return Check(False, f"no reply reached the DTS in time: each of its {len(attempts)} attempt(s) was given up "
                            f"or answered {t_send:.3f} s (its t_send) or more after it started")
    return Check(True, f"{len(attempts) - len(late)} of {len(attempts)} attempt(s) answered within t_send")


def resent_after_reply(sent: list, t_send: float, tolerance: float) -> tuple[str, dict | None]:
    """The attempts of one message (``sent``, in order) retransmitted although their reply left the gateway
    sooner than ``t_send`` after the attempt started (not ``timed_out``): what they were, and the finding's
    detail — per attempt the windows in which it must have started (before the gateway's accept) and its reply
    been read (before the retransmission) for a timeout to be legitimate, and the miss (t_send − tolerance −
    the gateway-measured duration) — so the harness's own lag may explain it (under load the gateway accepts a
    connection, and the DTS reads a reply, later than they happened: conformance/lag.py). ``("", None)`` when
    every retransmission followed a timed-out attempt."""
    reached = [(ex, nxt) for ex, nxt in zip(sent, sent[1:]) if not timed_out(ex, t_send, tolerance)]
    if not reached:
        return "", None
    said = "; ".join(f"request #{ex.seq}'s reply left {attempt_end(ex) - attempt_start(ex):.3f} s after its attempt "
                     f"started (t_send {t_send:.3f} s)" for ex, _ in reached)
    # two windows each, whose lags add (lag.explains): the gateway's accept came late, or the DTS read late
    windows = [w for ex, nxt in reached for w in ([attempt_end(ex) - t_send, attempt_start(ex)],
                                                    [attempt_end(ex), attempt_start(nxt)])]
    shortfall = sum(t_send - tolerance - (attempt_end(ex) - attempt_start(ex)) for ex, _ in reached)
    return said, {"windows": windows, "shortfall_s": shortfall, "required_s": t_send}


def final_reply_once(sent: list, function: str, code: str, t_send: float, tolerance: float) -> Check:
    """RPL-10/RPL-12: a declaration answered ``function`` (271, 272) is not sent again once that reply reached
    the DTS. An attempt may be retransmitted, byte-identical (REL-03, REL-05), when the DTS gave up on it
    before its reply went out, or when that reply went out ``t_send`` or later after the attempt started
    (REL-01, measured where the clause measures it): the DTS timed out (``resent_after_reply``)."""
    answered = [ex.reply_function for ex in sent]
    ids = {ex.message_id for ex in sent}
    early, detail = resent_after_reply(sent, t_send, tolerance)
    abandoned = len(sent) - 1 - len(detail["windows"]) // 2 if detail else len(sent) - 1
    message = (f"{code}: the declaration was sent {len(sent)} time(s), answered {answered} ({function} expected "
               f"once{f'; {abandoned} attempt(s) the DTS gave up on or timed out' if abandoned > 0 else ''}"
               f"{f'; {early}' if early else ''}{'' if len(ids) <= 1 else f'; {len(ids)} different messageIds'})")
    if not sent or answered[-1] != function or len(ids) != 1:
        return Check(False, message)
    return Check(detail is None, message, detail or {})


def timing_detail(t0: float, t1: float, measured: float, bound: float, shortfall: float, **more) -> dict:
    """What a timing check keeps: the measured interval, the bound, and by how much it missed beyond the
    tolerance (``shortfall_s`` > 0 only when the check fails)."""
    return {"gap_s": measured, "required_s": bound, "windows": [[t0, t1]], "shortfall_s": max(0.0, shortfall),
            **more}


def waited(t0: float, t1: float, seconds: float, tolerance: float, what: str, since: str) -> Check:
    """A lower bound on the interval [t0, t1]: at least ``seconds`` less ``tolerance``."""
    gap = t1 - t0
    detail = timing_detail(t0, t1, gap, seconds, seconds - tolerance - gap)
    if gap + tolerance >= seconds:
        return Check(True, f"{what}: {gap:.3f} s {since} (at least {seconds:.3f} s required)", detail)
    return Check(False, f"{what}: only {gap:.3f} s {since}, at least {seconds:.3f} s required", detail)


def gap_after_response(earlier, later) -> float:
    """Seconds from the end of an attempt to the start of the next one (REL-06's wait)."""
    return attempt_start(later) - attempt_end(earlier)


def waited_after_response(earlier, later, seconds: float, tolerance: float, what: str) -> Check:
    """REL-06/REL-13: a lower bound on the wait from the end of ``earlier`` to the start of ``later``."""
    return waited(attempt_end(earlier), attempt_start(later), seconds, tolerance, what,
                  f"from the end of request #{earlier.seq} to the start of request #{later.seq}")


def waited_at_least(earlier, later, seconds: float, tolerance: float, what: str) -> Check:
    """REL-08/REL-13: a lower bound on the time between the starts of two attempts."""
    return waited(attempt_start(earlier), attempt_start(later), seconds, tolerance, what,
                  f"between the starts of requests #{earlier.seq} and #{later.seq}")


def attempt_lasted(ex, seconds: float, tolerance: float, what: str) -> Check:
    """REL-01: the attempt was abandoned no earlier than ``seconds`` after it started."""
    return waited(attempt_start(ex), attempt_end(ex), seconds, tolerance, what,
                  f"from the start of request #{ex.seq}'s attempt to its end")


def schedule_within(pairs: list, promised: float, tolerance: float, what: str) -> Check:
    """CAP-06: the waits between consecutive attempts, added up, are at most +20 % (+ tolerance) of the
    ``promised`` schedule; judged as a whole, with one window per wait."""
    windows = [[attempt_end(a), attempt_start(b)] for a, b in pairs]
    spent = sum(t1 - t0 for t0, t1 in windows)
    bound = 1.2 * promised + tolerance
    detail = {"spent_s": spent, "promised_s": promised, "windows": windows, "shortfall_s": max(0.0, spent - bound)}
    return Check(spent <= bound, f"{what} took {spent:.3f} s; the statement's schedule is {promised:.3f} s "
                                 f"(+20 % and {tolerance:.3f} s tolerated)", detail)


def at_most_after(t0: float, t1: float, seconds: float, tolerance: float, what: str) -> Check:
    """An upper bound on the interval [t0, t1]: at most ``seconds`` plus ``tolerance``."""
    gap = t1 - t0
    detail = timing_detail(t0, t1, gap, seconds, gap - seconds - tolerance)
    return Check(gap <= seconds + tolerance, f"{what}: {gap:.3f} s (at most {seconds:.3f} s, {tolerance:.3f} s "
                                             "tolerated)", detail)


def after_sequences(queries: list) -> list[int | None]:
    """The ``afterSequence`` of each query's message text (None where it cannot be read)."""
    out = []
    for ex in queries:
        try:
            root = etree.fromstring(ex.message_text, safexml.hardened_parser())
            child = content_child(root)
            text = child.findtext(q(ENV, "afterSequence")) if child is not None else None
            out.append(int(text) if text is not None else None)
        except (etree.XMLSyntaxError, ValueError, TypeError):
            out.append(None)
    return out


# Words by which a user learns the meaning a clause names, in an English or Vietnamese user interface.
# REL-07: the outcome is unknown — the message may or may not have been recorded (nothing about querying).
UNKNOWN_OUTCOME_WORDS = ("unknown", "not known", "may or may not", "may have been", "might have been", "uncertain",
                         "chưa rõ", "không rõ", "chưa xác định", "không xác định", "chưa biết", "có thể đã")
# REL-14: the result has not been received and must be fetched later.
FETCH_LATER_WORDS = ("later", "not been received", "not received", "not yet", "query it", "manual query",
                     "fetch", "sau", "chưa nhận", "tra cứu lại", "truy vấn lại", "tra cứu thủ công")


def told_user(outcome, words, what: str, *, kinds: set[str] | None = None, own: bool = False) -> Check:
    """What the DTS showed (its notifications of ``kinds``; ``own``: only those not relaying a customs reply)
    means ``what``: PASS on one of ``words``, FAIL when nothing was shown, INCONCLUSIVE for review otherwise."""
    shown = [n for n in outcome.notifications if (kinds is None or n.kind in kinds)
             and not (own and n.kind in CUSTOMS_KINDS)]
    return says(shown, words, what, f"no notification{' of its own' if own else ''} was shown "
                                    f"(state {outcome.state!r})")


def no_overlap(exchanges: list) -> Check:
    """REL-13: each query starts only after the previous one's response ended."""
    for a, b in zip(exchanges, exchanges[1:]):
        if a.responded_at is None or attempt_start(b) < attempt_end(a):
            return Check(False, f"request #{b.seq} started while request #{a.seq} was still in progress")
    return Check(True, f"{len(exchanges)} queries, none overlapping another")


