"""Durable per-submission state (REL-09, RPL-08..10) and the installation identifier (ENV-07).

Layout of ``state_dir``::

    installation-id                      ENV-07: a UUID made once, on first start, never changed
    processed-replies.txt                RPL-08: reply messageIds already processed, one per line
    replies/<reply messageId>.xml        REL-09: every reply, stored before the DTS acts on it
    submissions/<messageId>/request.xml  REL-09: the signed message text, stored before it is sent
    submissions/<messageId>/queries/<queryId>.xml   the queries about it (also message texts)
    submissions/<messageId>/state.json   what the DTS knows: phase, history entries by sequence

Every write goes to a temporary file, is fsync'ed and renamed over the old one, so a crash leaves
either the old or the new state, never a torn one. Nothing here ever holds a password (SEC-01).
"""

from __future__ import annotations

import json
import os
import uuid
from dataclasses import asdict, dataclass, field
from pathlib import Path

from ..codec.envelope import ErrorEntry, Result, Tax

# Phases of a submission's send operation, as far as the DTS knows.
STORED = "stored"              # message text stored; send operation not finished (resume: REL-09)
NOT_SENT = "not-sent"          # no octet left the DTS (TLS verification failed before any HTTP data)
UNKNOWN = "unknown"            # outcome unknown (REL-07): query before anything new (REL-08)
REJECTED = "rejected"          # answered 271: not recorded (RPL-12)
NOT_RECORDED = "not-recorded"  # a query found nothing (E0002, RPL-12)
RECORDED = "recorded"          # history entry 1 processed; history follows (RPL-09)


def write_durably(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` so that it survives a crash right after this returns (REL-09)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


@dataclass
class HistoryEntry:
    """One processed history entry (sequence ≥ 1) of a submission."""

    sequence: int
    function: str
    reply_id: str
    result: Result

    def to_json(self) -> dict:
        return {"sequence": self.sequence, "function": self.function, "replyId": self.reply_id,
                "result": asdict(self.result)}

    @classmethod
    def from_json(cls, data: dict) -> "HistoryEntry":
        res = dict(data["result"])
        res["taxes"] = [Tax(**t) for t in res.get("taxes", [])]
        res["errors"] = [ErrorEntry(**e) for e in res.get("errors", [])]
        return cls(data["sequence"], data["function"], data["replyId"], Result(**res))


@dataclass
class Merged:
    """Data of all processed entries merged in sequence order (RPL-09): a later-*sequence* value wins,
    whatever the order of arrival."""

    reception_number: str | None = None
    declaration_number: str | None = None
    channel: str | None = None
    taxes: list[Tax] = field(default_factory=list)
    taxes_total_vnd: str | None = None
    taxes_due_date: str | None = None
    cleared_at: str | None = None
    payment_order_id: str | None = None


@dataclass
class Submission:
    """What the DTS knows about one request it lodged (function 8, 5, 1 or 16)."""

    message_id: str
    type: str
    function: str
    business_ref: str
    version: str
    from_identity: str
    to_identity: str
    to_name: str
    created: str                           # createMessageIssue as sent
    final_functions: list[str]             # Table 7-2 "Final replies" for this type and function
    phase: str = STORED
    entries: dict[int, HistoryEntry] = field(default_factory=dict)
    target_declaration: str | None = None  # declarationNumber amended/cancelled (functions 5 and 1)
    cancelled: bool = False                # an accepted cancellation completed this history (RPL-10)
    last_attempt_start: float | None = None   # epoch seconds: REL-08 waits T_send from it
    receipt_at: float | None = None        # epoch seconds of the 29: REL-13/14 count from it
    last_query_start: float | None = None  # epoch seconds: queries at least T_poll_min apart
    polling_expired: bool = False          # REL-14: automatic polling gave up; manual query offered
    queries: list[str] = field(default_factory=list)

    # -- RPL-09 / RPL-10 -------------------------------------------------------------------------
    @property
    def watermark(self) -> int:
        """``afterSequence``: the highest n such that entries 1…n have all been processed (RPL-09)."""
        n = 0
        while n + 1 in self.entries:
            n += 1
        return n

    @property
    def status_function(self) -> str | None:
        """The displayed status: the function of the highest-sequence entry processed (RPL-09)."""
        return self.entries[max(self.entries)].function if self.entries else None

    @property
    def complete(self) -> bool:
        """Complete history: a final reply and every lower sequence processed (RPL-10), or the
        declaration cancelled by an accepted cancellation (RPL-04)."""
        if self.cancelled:
            return True
        return any(e.function in self.final_functions and e.sequence <= self.watermark
                   for e in self.entries.values())

    @property
    def merged(self) -> Merged:
        out = Merged()
        for seq in sorted(self.entries):
            r = self.entries[seq].result
            for name in ("reception_number", "declaration_number", "channel", "taxes_total_vnd",
                         "taxes_due_date", "cleared_at", "payment_order_id"):
                if getattr(r, name) is not None:
                    setattr(out, name, getattr(r, name))
            if r.taxes:
                out.taxes = list(r.taxes)
        return out

    def add_entry(self, entry: HistoryEntry) -> bool:
        """Record an entry; False if that sequence is already held (never replaced: RPL-02, RPL-09)."""
        if entry.sequence in self.entries:
            return False
        self.entries[entry.sequence] = entry
        if self.phase != RECORDED:
            self.phase = RECORDED
        return True

    # -- persistence ------------------------------------------------------------------------------
    def to_json(self) -> dict:
        data = asdict(self)
        data["entries"] = [e.to_json() for _, e in sorted(self.entries.items())]
        return data

    @classmethod
    def from_json(cls, data: dict) -> "Submission":
        data = dict(data)
        entries = [HistoryEntry.from_json(e) for e in data.pop("entries", [])]
        sub = cls(**data)
        sub.entries = {e.sequence: e for e in entries}
        return sub


class Store:
    """The state directory (see the module docstring)."""

    def __init__(self, state_dir: Path):
        self.root = Path(state_dir)
        self.root.mkdir(parents=True, exist_ok=True)
        self._processed_file = self.root / "processed-replies.txt"
        self._processed = set(self._processed_file.read_text("ascii").split()) if self._processed_file.exists() else set()

    # ENV-07 ---------------------------------------------------------------------------------------
    def installation_id(self) -> str:
        """The installation identifier: generated once, when the DTS first starts, then kept (ENV-07)."""
        path = self.root / "installation-id"
        if not path.exists():
            write_durably(path, str(uuid.uuid4()).encode("ascii"))
        return path.read_text("ascii").strip()

    # REL-09 ---------------------------------------------------------------------------------------
    def _dir(self, message_id: str) -> Path:
        if not _is_guid_like(message_id):
            raise KeyError(f"not a messageId: {message_id!r}")
        return self.root / "submissions" / message_id

    def create(self, sub: Submission, message_text: bytes) -> None:
        """Store the signed message text and the submission before its first transmission."""
        write_durably(self._dir(sub.message_id) / "request.xml", message_text)
        self.save(sub)

    def save(self, sub: Submission) -> None:
        write_durably(self._dir(sub.message_id) / "state.json",
                      json.dumps(sub.to_json(), ensure_ascii=False, indent=1).encode("utf-8"))

    def load(self, message_id: str) -> Submission:
        path = self._dir(message_id) / "state.json"
        if not path.exists():
            raise KeyError(f"no submission {message_id!r} in this DTS")
        return Submission.from_json(json.loads(path.read_text("utf-8")))

    def all(self) -> list[Submission]:
        base = self.root / "submissions"
        if not base.exists():
            return []
        return [self.load(p.name) for p in sorted(base.iterdir()) if (p / "state.json").exists()]

    def message_text(self, message_id: str) -> bytes:
        """The octets that were signed and sent: every retransmission sends exactly these (REL-05)."""
        return (self._dir(message_id) / "request.xml").read_bytes()

    def store_query(self, submission_id: str, query_id: str, text: bytes) -> None:
        write_durably(self._dir(submission_id) / "queries" / f"{query_id}.xml", text)

    def store_reply(self, text: bytes, reply_id: str | None) -> None:
        """Keep a reply before acting on it (REL-09). One without a readable messageId is kept under
        a local name; it will not be acted on anyway (RPL-07)."""
        name = reply_id if reply_id and _is_guid_like(reply_id) else f"unreadable-{uuid.uuid4()}"
        write_durably(self.root / "replies" / f"{name}.xml", text)

    # RPL-08 ---------------------------------------------------------------------------------------
    def processed(self, reply_id: str) -> bool:
        return reply_id in self._processed

    def mark_processed(self, reply_id: str) -> None:
        with open(self._processed_file, "a", encoding="ascii") as fh:
            fh.write(reply_id + "\n")
            fh.flush()
            os.fsync(fh.fileno())
        self._processed.add(reply_id)

    # ENV-05, REL-08, RPL-10 -----------------------------------------------------------------------
    def with_reference(self, tax_code: str, type_: str, function: str, business_ref: str) -> list[Submission]:
        return [s for s in self.all() if (s.from_identity, s.type, s.function, s.business_ref)
                == (tax_code, type_, function, business_ref)]

    def with_declaration_number(self, tax_code: str, type_: str, number: str) -> list[Submission]:
        return [s for s in self.all() if s.from_identity == tax_code and s.type == type_
                and s.function == "8" and s.merged.declaration_number == number]


def _is_guid_like(value: str) -> bool:
    """A path component we created ourselves (a lower-case GUID); refuses anything path-like."""
    try:
        return str(uuid.UUID(value)) == value
    except ValueError:
        return False
