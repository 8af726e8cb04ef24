"""A submission's history as the harness, playing the DTS, received it: RPL-02/03/04, REL-10/15.

The input is the list of deliveries for one submission — its synchronous reply (``after`` None) and each
query's reply with the ``afterSequence`` it asked for — in the order they arrived. Every check is a pure
function of those octets; the case decides when to stop polling and names the requirement.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..case import Check
from .gateway_replies import Reply, read_reply

TRANSIENT = ("271", "12")


@dataclass(frozen=True)
class Delivery:
    after: int | None          # the query's afterSequence; None for the synchronous reply (entry 1)
    text: bytes | None         # the reply message text
    started: float = 0.0       # when the query was sent (harness clock, seconds)
    request: bytes | None = None   # the query sent (None for the synchronous reply)


def _read(deliveries, profile) -> list[tuple[Delivery, Reply]] | str:
    out = []
    for n, d in enumerate(deliveries, start=1):
        reply = read_reply(d.text, profile)
        if isinstance(reply, str):
            return f"delivery {n}: {reply}"
        out.append((d, reply))
    return out


def is_transient(reply: Reply) -> bool:
    """A 271, a 12, or a 272 E0002: not a history entry (RPL-02)."""
    return reply.function in TRANSIENT or (reply.function == "272" and reply.result.result_code == "E0002")


def entries(deliveries, profile) -> dict[int, bytes]:
    """The history entries received, by sequence (the first delivery of each)."""
    read = _read(deliveries, profile)
    if isinstance(read, str):
        return {}
    seen: dict[int, bytes] = {}
    for d, reply in read:
        if not is_transient(reply):
            seen.setdefault(reply.result.sequence, d.text)
    return seen


def watermark(deliveries, profile) -> int:
    """RPL-09's afterSequence: the highest n with entries 1…n all received."""
    seen, n = entries(deliveries, profile), 0
    while n + 1 in seen:
        n += 1
    return n


def sequences(deliveries, profile) -> Check:
    """RPL-02: entries numbered 1, 2, 3… with no reuse — every delivery of a sequence is the byte-identical
    message text, entries differ in messageId — and every transient reply has sequence 0 and a messageId
    of its own."""
    read = _read(deliveries, profile)
    if isinstance(read, str):
        return Check(False, read)
    first: dict[int, bytes] = {}
    ids: dict[str, str] = {}
    problems = []
    for n, (d, reply) in enumerate(read, start=1):
        seq, mid = reply.result.sequence, reply.header.get("Reference/messageId") or ""
        if is_transient(reply):
            if seq != 0:
                problems.append(f"delivery {n}: transient {reply.summary()} has sequence {seq}, not 0")
            if mid in ids:
                problems.append(f"delivery {n}: transient {reply.summary()} reuses messageId {mid} ({ids[mid]})")
            ids[mid] = f"the {reply.summary()} of delivery {n}"
            continue
        if seq < 1:
            problems.append(f"delivery {n}: history entry {reply.summary()} has sequence {seq}")
        elif seq in first and first[seq] != d.text:
            problems.append(f"delivery {n}: entry {seq} differs from its first delivery (not byte-identical)")
        elif seq not in first:
            if mid in ids:
                problems.append(f"delivery {n}: entry {seq} reuses messageId {mid} ({ids[mid]})")
            ids[mid] = f"entry {seq}"
            first[seq] = d.text
    if problems:
        return Check(False, "; ".join(problems[:4]), {"problems": problems})
    n = watermark(deliveries, profile)
    return Check(True, f"entries 1…{n} numbered without gap or reuse, each redelivered byte-identical; "
                       f"transient replies have sequence 0 and fresh messageIds",
                 {"entries": sorted(first), "deliveries": len(read)})


def query_answers(deliveries, profile) -> Check:
    """RPL-03: a query with afterSequence a gets the visible entry of lowest sequence above a — never one at
    or below a, never a higher one while a lower visible one above a was already delivered — or a 12 when
    none is visible; never E0002 for a recorded submission."""
    read = _read(deliveries, profile)
    if isinstance(read, str):
        return Check(False, read)
    visible: set[int] = set()
    problems = []
    for n, (d, reply) in enumerate(read, start=1):
        if d.after is None:
            if not is_transient(reply):
                visible.add(reply.result.sequence)
            continue
        above = sorted(s for s in visible if s > d.after)
        if reply.function == "272" and reply.result.result_code == "E0002":
            problems.append(f"query {n} (afterSequence {d.after}) answered E0002 for a recorded submission")
        elif reply.function == "12":
            if above:
                problems.append(f"query {n} (afterSequence {d.after}) answered 12 while entry {above[0]} is visible")
        elif reply.function == "271":
            continue            # a message-level refusal is the other checks' (and E9002 REL-15's)
        else:
            seq = reply.result.sequence
            if seq <= d.after:
                problems.append(f"query {n} (afterSequence {d.after}) answered entry {seq}, not above it")
            elif above and seq > above[0]:
                problems.append(f"query {n} (afterSequence {d.after}) answered entry {seq} while the lower "
                                f"entry {above[0]} was already visible")
            visible.add(seq)
    if problems:
        return Check(False, "; ".join(problems[:4]), {"problems": problems})
    queries = sum(1 for d, _ in read if d.after is not None)
    return Check(True, f"each of {queries} queries got the lowest visible entry above its afterSequence, or a 12")


def flow(deliveries, profile, request_type: str, request_function: str) -> Check:
    """RPL-04: entry 1 is a synchronous reply of Table 7-2's row, later entries are its later functions,
    and nothing follows a final reply."""
    read = _read(deliveries, profile)
    if isinstance(read, str):
        return Check(False, read)
    row = profile.reply_flows.get((request_type, request_function))
    if row is None:
        return Check(False, f"Table 7-2 has no row for {request_type}/{request_function}", undecided=True)
    history = {}
    for d, reply in read:
        if not is_transient(reply):
            history.setdefault(reply.result.sequence, reply.function)
    problems = []
    if 1 in history and history[1] not in row.synchronous:
        problems.append(f"entry 1 is {history[1]}, Table 7-2 allows {'/'.join(row.synchronous)}")
    for seq, function in sorted(history.items()):
        if seq > 1 and function not in row.later:
            problems.append(f"entry {seq} is {function}, not a later reply of Table 7-2 ({'/'.join(row.later)})")
    finals = [s for s, f in sorted(history.items()) if f in row.final]
    if finals and any(s > finals[0] for s in history):
        problems.append(f"entries follow the final entry {finals[0]} ({history[finals[0]]})")
    if problems:
        return Check(False, "; ".join(problems), {"history": history})
    walk = " ".join(history[s] for s in sorted(history))
    return Check(True, f"history {walk} follows Table 7-2 for {request_type}/{request_function}"
                       + (f", final at entry {finals[0]}" if finals else ""), {"history": history})


def complete(deliveries, profile, request_type: str, request_function: str) -> bool:
    """A final reply and every lower entry received (the polling may stop)."""
    row = profile.reply_flows.get((request_type, request_function))
    seen, n = entries(deliveries, profile), watermark(deliveries, profile)
    for sequence in range(1, n + 1):
        reply = read_reply(seen[sequence], profile)
        if row is not None and not isinstance(reply, str) and reply.function in row.final:
            return True
    return False


def no_busy_queries(deliveries, profile, t_poll_min: float) -> Check:
    """REL-15: no E9002 to a query started T_poll_min or more after the previous query of the submission,
    nor to its first query (there is no previous one to be too close to)."""
    read = _read(deliveries, profile)
    if isinstance(read, str):
        return Check(False, read)
    previous, problems, queries = None, [], 0
    for n, (d, reply) in enumerate(read, start=1):
        if d.after is None:
            continue
        queries += 1
        gap = None if previous is None else d.started - previous
        if reply.result.result_code == "E9002" and (gap is None or gap >= t_poll_min):
            when = "with no query before it" if gap is None else f"{gap:.1f} s after the previous one"
            problems.append(f"query {n} answered E9002 {when} (T_poll_min {t_poll_min} s)")
        previous = d.started
    if problems:
        return Check(False, "; ".join(problems))
    return Check(True, f"no E9002 to {queries} queries at least T_poll_min ({t_poll_min} s) apart")


def byte_identical(label: str, first: bytes | None, again: bytes | None) -> Check:
    """REL-10/RPL-02: a redelivery is the very same octets (the same messageId, reception number, signature)."""
    if first is not None and first == again:
        return Check(True, f"{label}: byte-identical ({len(first)} octets)")
    if first is None or again is None:
        return Check(False, f"{label}: no reply to compare")
    at = next((i for i, (a, b) in enumerate(zip(first, again)) if a != b), min(len(first), len(again)))
    return Check(False, f"{label}: differs from octet {at} on ({len(first)} vs {len(again)} octets)",
                 {"first_difference": at})
