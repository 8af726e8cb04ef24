"""The DTS journal (SEC-06), kept directly in its export format: JSON Lines per Table 12-1.

One JSON object per event, one per LF-terminated line, appended (and flushed to disk) in time
order. Every event carries the Table 12-1 members in table order; ``kind``, ``code`` and ``text``
only on ``notification`` events, as the table says. SEC-06 also asks that the journal keep each
request and reply *message text* and each attempt's outcome: those travel in the further members
listed in ``EXTRA_MEMBERS`` (the export format allows further members; readers ignore them).

What never enters the journal (SEC-01): the SOAP body (it holds the password), the password
itself, the PKCS#12 password. The journal only ever sees message texts, which carry neither.
"""

from __future__ import annotations

import base64
import json
import os
import threading
from dataclasses import dataclass
from pathlib import Path

from ..codec.envelope import VN_TZ
from .clock import Clock

EVENTS = ("request-stored", "attempt", "attempt-outcome", "reply-received", "reply-discarded", "notification")

# SEC-09: what the user is shown is always one of these kinds, so a local, transport or security
# failure can never be mistaken for a customs result or a customs rejection.
KINDS = ("customs-result", "customs-error", "warning", "transport-error", "security-error", "local-error", "info")

TABLE_12_1 = ("time", "user", "userId", "messageId", "submission", "event")
NOTIFICATION_MEMBERS = ("kind", "code", "text")

# Further members (SEC-06 allows them; readers ignore them):
#   messageText / messageTextBase64 — request-stored, reply-received: the message text itself
#   outcome, detail, status         — attempt-outcome: retryable|final|reply|..., why, HTTP status
#   attempt                         — attempt: 1 for the first transmission, k+1 for retransmission k
#   reason                          — reply-discarded: why the reply was not acted on
EXTRA_MEMBERS = ("messageText", "messageTextBase64", "attempt", "outcome", "detail", "status", "reason")


@dataclass(frozen=True)
class Notification:
    """One thing the DTS showed its user (§1 "the user is told"): journalled as a notification event."""

    kind: str
    code: str | None
    text: str


def message_text_member(text: bytes) -> dict:
    """The message text as a JSON member: as a string when it is UTF-8 (always, for our requests),
    else base64 so that a malformed reply is still kept without loss."""
    try:
        return {"messageText": text.decode("utf-8")}
    except UnicodeDecodeError:
        return {"messageTextBase64": base64.b64encode(text).decode("ascii")}


class Journal:
    """Append-only journal file ``journal.jsonl``; its content *is* the SEC-06 export."""

    def __init__(self, path: Path, *, user: str, user_id: str, clock: Clock):
        self.path = path
        self.user = user
        self.user_id = user_id
        self.clock = clock
        self._lock = threading.Lock()
        path.parent.mkdir(parents=True, exist_ok=True)

    def act_as(self, user: str, user_id: str) -> None:
        """SEC-08: from now on events are attributed to this local user and UserId."""
        self.user, self.user_id = user, user_id

    def record(self, event: str, *, message_id: str | None = None, submission: str | None = None, **extra) -> dict:
        """Append one event. ``extra`` may hold only the documented further members."""
        if event not in EVENTS or event == "notification" and not {"kind", "code", "text"} <= extra.keys():
            raise ValueError(f"not a Table 12-1 event: {event!r}")
        unknown = set(extra) - set(EXTRA_MEMBERS) - (set(NOTIFICATION_MEMBERS) if event == "notification" else set())
        if unknown:
            raise ValueError(f"undocumented journal members {sorted(unknown)}")
        line = {
            "time": self.clock.now().astimezone(VN_TZ).isoformat(timespec="milliseconds"),
            "user": self.user,
            "userId": self.user_id,
            "messageId": message_id,
            "submission": submission,
            "event": event,
        }
        if event == "notification":
            line.update(kind=extra.pop("kind"), code=extra.pop("code"), text=extra.pop("text"))
        line.update(extra)
        data = (json.dumps(line, ensure_ascii=False) + "\n").encode("utf-8")
        with self._lock, open(self.path, "ab") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        return line

    def notify(self, kind: str, code: str | None, text: str, *, message_id: str | None = None,
               submission: str | None = None) -> Notification:
        """Tell the user something: the notification *is* the journal line (§1, SEC-06)."""
        if kind not in KINDS:
            raise ValueError(f"unknown notification kind {kind!r}")
        self.record("notification", message_id=message_id, submission=submission, kind=kind, code=code, text=text)
        return Notification(kind, code, text)

    def export(self, submission: str | None = None) -> str:
        """The SEC-06 export: the whole journal, or the events of one submission."""
        if not self.path.exists():
            return ""
        text = self.path.read_text(encoding="utf-8")
        if submission is None:
            return text
        return "".join(
            line + "\n" for line in text.splitlines() if line and json.loads(line).get("submission") == submission
        )
