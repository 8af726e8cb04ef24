"""Retransmission, polling and reply handling (REL, RPL)."""

from __future__ import annotations

from lxml import etree

from ..case import Check
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


# Words by which a user learns that a result is not known yet and must be fetched later (REL-07,
# REL-14), in an English or Vietnamese user interface.
UNKNOWN_OUTCOME_WORDS = ("unknown", "not known", "chưa rõ", "không rõ", "chưa xác định")
FETCH_LATER_WORDS = ("later", "query it", "manual query", "sau", "tra cứu lại", "truy vấn lại")


def told_user(outcome, words, what: str, *, kinds: set[str] | None = None) -> Check:
    """A notification shown to the user contains one of ``words`` (case-insensitive)."""
    shown = [n for n in outcome.notifications if kinds is None or n.kind in kinds]
    for n in shown:
        if any(w.lower() in n.text.lower() for w in words):
            return Check(True, f"the user was told {what}: {n.text!r}")
    texts = [n.text for n in shown][-3:]
    return Check(False, f"the user was not told {what}; last notifications: {texts}")


def no_overlap(exchanges: list) -> Check:
    """REL-13: each query starts only after the previous one's response ended."""
    for a, b in zip(exchanges, exchanges[1:]):
        if a.responded_at is None or b.received_at < a.responded_at:
            return Check(False, f"request #{b.seq} started while request #{a.seq} was still in progress")
    return Check(True, f"{len(exchanges)} queries, none overlapping another")


