"""Octets set aside on disk while their request waits out a scenario ``delay`` (issue 14: held memory).

A delayed request's evidence row is committed after the wait (app.py), so its octets — the request
body, the message text, the response and the reply text, ≈ 20 KB for a small declaration — used to
stay in memory throughout: 100 MB for 5,000 held requests. Past ``SPOOL_DELAY_S`` they wait in a file of
the gateway's private folder instead, and are read back when the wait ends. What is written is what
the evidence will store: the request's octets already redacted (no password or OTP at rest), the
response's as sent. A file lives only while its request waits; a gateway stopped meanwhile reads it
back first (its row says no reply was sent).
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

SPOOL_DELAY_S = 2.0     # shorter waits keep their octets in memory (writing them costs more than it saves)


@dataclass(frozen=True)
class Spooled:
    """Where a set of named octet values waits (one file), and their lengths."""

    path: str
    lengths: tuple[tuple[str, int], ...]


class Spool:
    def __init__(self, folder: Path):
        self.folder = Path(folder)

    def put(self, values: dict[str, bytes | bytearray | None]) -> Spooled:
        """Write ``values`` (None stays None) to a file of their own."""
        self.folder.mkdir(parents=True, exist_ok=True)
        fd, path = tempfile.mkstemp(prefix="held-", dir=self.folder)
        try:
            os.write(fd, b"".join(v for v in values.values() if v))
        finally:
            os.close(fd)
        return Spooled(path, tuple((name, -1 if v is None else len(v)) for name, v in values.items()))

    @staticmethod
    def read(spooled: Spooled) -> dict[str, bytes | None]:
        """The values, as put (the file stays)."""
        data, out, at = Path(spooled.path).read_bytes(), {}, 0
        for name, length in spooled.lengths:
            out[name] = None if length < 0 else data[at:at + length]
            at += max(length, 0)
        return out

    @staticmethod
    def take(spooled: Spooled) -> dict[str, bytes | None]:
        """The values, and the file is removed."""
        out = Spool.read(spooled)
        os.unlink(spooled.path)
        return out
