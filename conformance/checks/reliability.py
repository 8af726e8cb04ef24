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

def gap_after_response(earlier, later) -> float:
    """Seconds from the end of an attempt (the gateway's last octet or reset) to the next one's arrival.

    REL-06 counts a backoff "from the end of the failed attempt"; the gateway's ``responded_at`` is no
    later than the DTS's own end of attempt, so the gap never understates the DTS's wait.
    """
    end = earlier.responded_at if earlier.responded_at is not None else earlier.received_at
    return later.received_at - end


def waited_after_response(earlier, later, seconds: float, tolerance: float, what: str) -> Check:
    """A lower bound on the wait between the end of ``earlier`` and the start of ``later``."""
    gap = gap_after_response(earlier, later)
    if gap + tolerance >= seconds:
        return Check(True, f"{what}: waited {gap:.3f} s after request #{earlier.seq} ended "
                           f"(at least {seconds:.3f} s required)", {"gap_s": gap, "required_s": seconds})
    return Check(False, f"{what}: request #{later.seq} came {gap:.3f} s after request #{earlier.seq} ended, "
                        f"at least {seconds:.3f} s required", {"gap_s": gap, "required_s": seconds})


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
        if a.responded_at is None or b.received_at < a.responded_at:
            return Check(False, f"request #{b.seq} started while request #{a.seq} was still in progress")
    return Check(True, f"{len(exchanges)} queries, none overlapping another")


