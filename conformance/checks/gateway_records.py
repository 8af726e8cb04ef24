"""SEC-07: the gateway's processing history holds, for every request the harness sent, what ECDI lists —
reception time, UserId, From/identity, messageId, type, function, reply messageId, function and codes, signer
issuer and serial, client address. Pure: the harness's own exchanges against the rows the gateway exports
(the ``processing_history`` facility, rows in the evidence format of ``mock_server.evidence``).
"""

from __future__ import annotations

from ..case import Check
from ..codec import safexml
from ..codec.envelope import read_header

CLOCK_SLACK_S = 60.0            # ENV-03: the clocks of the two parties SHOULD be within 60 s of UTC


def _header(text: bytes | None):
    if not text:
        return None
    try:
        return read_header(safexml.parse_message_text(text))
    except safexml.XmlRefused:
        return None


def _row_problems(sent, row) -> list[str]:
    asked, answered, row_asked = _header(sent.message_text), _header(sent.reply_text), _header(row.message_text)
    problems = []
    if not (sent.received_at - CLOCK_SLACK_S <= (row.received_at or 0) <= sent.responded_at + CLOCK_SLACK_S):
        problems.append(f"reception time {row.received_at} is not when the request was sent ({sent.received_at})")
    if row.user_id != sent.user_id:
        problems.append(f"UserId {row.user_id!r}, sent {sent.user_id!r}")
    if row_asked is None or row_asked.get("From/identity") != asked.get("From/identity"):
        problems.append("no From/identity of the request")
    for name, want, got in (("type", asked.get("Subject/type"), row.type),
                            ("function", asked.get("Subject/function"), row.function),
                            ("reply function", sent.reply_function, row.reply_function)):
        if got != want:
            problems.append(f"{name} {got!r}, expected {want!r}")
    if list(row.reply_codes or []) != list(sent.reply_codes or []):
        problems.append(f"reply codes {row.reply_codes}, the reply carried {sent.reply_codes}")
    replied = _header(row.reply_text)
    if answered is not None and (replied is None or replied.get("Reference/messageId")
                                 != answered.get("Reference/messageId")):
        problems.append("no reply messageId of the reply sent")
    signer = (row.gateway_verdict or {}).get("certificate") or {}
    if sent.reply_function not in ("271",) and not (signer.get("issuer") and signer.get("serial")):
        problems.append("no signer issuer and serial")
    if not row.client:
        problems.append("no client address")
    return problems


def processing_history(sent: list, rows: list) -> Check:
    """SEC-07 for each of ``sent`` (the harness's exchanges carrying a message text) against ``rows``."""
    judged, problems = 0, []
    for exchange in sent:
        asked = _header(exchange.message_text)
        if asked is None or not asked.get("Reference/messageId"):
            continue
        judged += 1
        mine = [r for r in rows if r.message_id == asked.get("Reference/messageId")]
        if not mine:
            problems.append(f"request #{exchange.seq} ({asked.get('Reference/messageId')}) is not in the history")
            continue
        faults = min((_row_problems(exchange, r) for r in mine), key=len)
        if faults:
            problems.append(f"request #{exchange.seq}: " + "; ".join(faults))
    if not judged:
        return Check(False, "no request to look up in the processing history", undecided=True)
    if problems:
        return Check(False, f"{len(problems)} of {judged} requests not recorded as SEC-07 lists: "
                            + " | ".join(problems[:3]), {"problems": problems})
    return Check(True, f"each of {judged} requests is in the processing history with its reception time, UserId, "
                       "From/identity, messageId, type, function, reply, signer and client address")
