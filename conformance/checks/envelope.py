"""The envelope header: ENV-02, ENV-04..ENV-08, CAP-01."""

from __future__ import annotations

import re
import uuid

from lxml import etree

from ..case import Check
from ..codec.envelope import content_child, read_header
from ..codec.namespaces import q
from .core import _parse


# --- envelope header (issue 6): ENV-02, ENV-04..ENV-08, CAP-01 ----------------------------------------

_GUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
_BUSINESS_REF = re.compile(r"[A-Za-z0-9][A-Za-z0-9._/-]{0,34}")
NEW_DOCUMENT_FUNCTIONS = ("8", "5", "1")      # ENV-05: functions whose reference is a business reference


def request_header(exchange, profile):
    """The header fields a request carried (``Header``), or None where its message text cannot be read."""
    root, _ = _parse(exchange.message_text, profile)
    return read_header(root) if root is not None else None


def _headers(exchanges, profile) -> list[tuple]:
    """(exchange, header) of every request whose message text can be read."""
    out = []
    for ex in exchanges:
        header = request_header(ex, profile)
        if header is not None:
            out.append((ex, header))
    return out


def message_ids_random_v4(exchanges, profile, what: str) -> Check:
    """ENV-02: every messageId is a random (version 4, RFC 9562 variant) UUID in the GUID form of §4.2."""
    bad = []
    for ex, header in _headers(exchanges, profile):
        mid = header.get("Reference/messageId") or ""
        ok = bool(_GUID.fullmatch(mid)) and mid[14] == "4" and mid[19] in "89ab"
        if not ok:
            bad.append(f"#{ex.seq}: {mid!r}")
    if bad:
        return Check(False, f"{what}: messageId not a version-4 UUID in request(s) {', '.join(bad[:5])}",
                     {"offenders": bad[:50]})
    return Check(True, f"{what}: every messageId is a version-4 UUID ({len(exchanges)} request(s))")


def message_ids_never_reused(exchanges, profile, what: str) -> Check:
    """ENV-02: no messageId was used for two different message texts (a retransmission repeats the octets)."""
    texts: dict[str, dict[bytes, int]] = {}
    for ex, header in _headers(exchanges, profile):
        mid = header.get("Reference/messageId")
        if mid:
            texts.setdefault(mid, {}).setdefault(ex.message_text, ex.seq)
    reused = {mid: sorted(seen.values()) for mid, seen in texts.items() if len(seen) > 1}
    if reused:
        mid, seqs = next(iter(reused.items()))
        return Check(False, f"{what}: messageId {mid} was used for {len(seqs)} different message texts "
                            f"(requests #{', #'.join(map(str, seqs))})",
                     {"reused": {k: v for k, v in list(reused.items())[:20]}})
    return Check(True, f"{what}: {len(texts)} messageId(s) over {len(exchanges)} request(s), none used for "
                       f"two different message texts", {"message_ids": len(texts), "requests": len(exchanges)})


def table_4_2_rows(exchanges, profile) -> Check:
    """ENV-04: procedureType, Subject/type, Subject/function and the Content child form a row of Table 4-2,
    with procedureType per Table 4-1."""
    problems = []
    for ex in exchanges:
        root, problem = _parse(ex.message_text, profile)
        if problem:
            problems.append(f"#{ex.seq}: {problem}")
            continue
        header = read_header(root)
        type_, function = header.get("Subject/type"), header.get("Subject/function")
        row = profile.permitted_requests.get((type_, function))
        child = content_child(root)
        if row is None:
            problems.append(f"#{ex.seq}: {type_}/{function} is no row of Table 4-2")
        elif header.get("procedureType") != row.procedure_type:
            problems.append(f"#{ex.seq}: procedureType {header.get('procedureType')!r} with {type_}/{function}, "
                            f"Table 4-1 requires {row.procedure_type}")
        elif child is None or child.tag != row.content:
            found = etree.QName(child).localname if child is not None else "no single child"
            problems.append(f"#{ex.seq}: Content holds {found} with {type_}/{function}, Table 4-2 requires "
                            f"{etree.QName(row.content).localname}")
    if problems:
        return Check(False, "requests not forming a row of Table 4-2: " + "; ".join(problems[:3]),
                     {"problems": problems[:50]})
    rows = sorted({f"{ex.type}/{ex.function}" for ex in exchanges})
    return Check(True, f"{len(exchanges)} request(s) form rows of Table 4-2 ({', '.join(rows)})")


def header_values(exchanges, profile, expected: dict, what: str) -> Check:
    """Every request carries ``expected[path]`` at each header path (None: the element is absent)."""
    problems = []
    for ex, header in _headers(exchanges, profile):
        for path, value in expected.items():
            sent = header.get(path)
            if sent != value:
                shown = "absent" if sent is None else repr(sent)
                problems.append(f"#{ex.seq}: {path} {shown}, expected " + ("absent" if value is None else repr(value)))
    if not exchanges:
        return Check(False, f"{what}: no request to inspect")
    if problems:
        return Check(False, f"{what}: " + "; ".join(problems[:3]), {"problems": problems[:50]})
    shown = ", ".join(f"{p} {'absent' if v is None else v}" for p, v in expected.items())
    return Check(True, f"{what}: {len(exchanges)} request(s) carry {shown}")


def one_installation_id(exchanges, profile) -> Check:
    """ENV-07: Subject/sendApplication is one UUID in every request (restarts included)."""
    seen: dict[str, int] = {}
    for ex, header in _headers(exchanges, profile):
        seen.setdefault(header.get("Subject/sendApplication") or "", ex.seq)
    if len(seen) != 1:
        listed = ", ".join(f"{v!r} (first #{s})" for v, s in seen.items())
        return Check(False, f"Subject/sendApplication changed: {listed or 'none readable'}", {"values": list(seen)})
    value = next(iter(seen))
    try:
        is_uuid = len(value) == 36 and str(uuid.UUID(value)) == value.lower()
    except ValueError:
        is_uuid = False
    if not is_uuid:
        return Check(False, f"Subject/sendApplication {value!r} is not a UUID")
    return Check(True, f"Subject/sendApplication is the same UUID {value} in all {len(exchanges)} request(s)")


def business_references_fresh(exchanges, profile) -> Check:
    """ENV-05: each new business document (functions 8, 5, 1: a new messageId) has a reference not used
    before for its From/identity, type and function. A corrected document may keep the reference of one
    answered 271, or 272/273 as entry 1 (the synchronous reply)."""
    first: dict[str, tuple] = {}          # messageId -> (exchange, header), first reception
    refused: set[str] = set()             # messageIds answered 271, 272 or 273 synchronously
    for ex, header in _headers(exchanges, profile):
        if header.get("Subject/function") not in NEW_DOCUMENT_FUNCTIONS:
            continue
        mid = header.get("Reference/messageId")
        first.setdefault(mid, (ex, header))
        if ex.reply_function in ("271", "272", "273"):
            refused.add(mid)
    used: dict[tuple, list[str]] = {}
    problems = []
    for mid, (ex, header) in first.items():
        key = (header.get("From/identity"), header.get("Subject/type"), header.get("Subject/function"),
               header.get("Subject/reference"))
        earlier = used.setdefault(key, [])
        standing = [(m, seq) for m, seq in earlier if m not in refused]
        if standing:
            problems.append(f"#{ex.seq}: reference {key[3]!r} ({key[1]}/{key[2]}) already used by request "
                            f"#{standing[0][1]} (messageId {standing[0][0]})")
        earlier.append((mid, ex.seq))
    if not first:
        return Check(False, "no new business document (function 8, 5 or 1) was sent")
    if problems:
        return Check(False, "business reference reused for a new document: " + "; ".join(problems[:3]),
                     {"problems": problems})
    return Check(True, f"{len(first)} new document(s), each with a business reference not used before "
                       f"({', '.join(sorted(k[3] or '' for k in used))})")


def subject_references(exchanges, profile) -> Check:
    """ENV-05 first sentence, Table 4-2: a BusinessRef for functions 8, 5, 1; for a query (13) the messageId of
    a submission of the same type sent before it; for 16 the OtpRequest's paymentOrderId."""
    sent: dict[str, str] = {}            # messageId -> type of the submissions seen so far
    problems = []
    for ex in exchanges:
        root, problem = _parse(ex.message_text, profile)
        if problem:
            continue
        header = read_header(root)
        type_, function, ref = header.get("Subject/type"), header.get("Subject/function"), header.get("Subject/reference")
        if function in NEW_DOCUMENT_FUNCTIONS and not _BUSINESS_REF.fullmatch(ref or ""):
            problems.append(f"#{ex.seq}: {type_}/{function} reference {ref!r} is not a BusinessRef")
        elif function == "13" and sent.get(ref) != type_:
            problems.append(f"#{ex.seq}: query reference {ref!r} is no {type_} submission sent before it")
        elif function == "16":
            from ..codec.namespaces import PAY
            child = content_child(root)
            order = child.findtext(q(PAY, "paymentOrderId")) if child is not None else None
            if ref != order:
                problems.append(f"#{ex.seq}: 702/16 reference {ref!r} differs from paymentOrderId {order!r}")
        if function != "13":
            sent.setdefault(header.get("Reference/messageId"), type_)
    if problems:
        return Check(False, "Subject/reference not as Table 4-2: " + "; ".join(problems[:3]), {"problems": problems})
    return Check(True, f"Subject/reference as Table 4-2 in {len(exchanges)} request(s)")


