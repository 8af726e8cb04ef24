"""Time for the reference DTS: one injectable object for "now", intervals and waiting.

Everything the DTS times — backoff (REL-06), polling (REL-13/14), ``createMessageIssue``
(ENV-03), journal times (SEC-06) — goes through a ``Clock`` so that unit tests can run the whole
send flow in zero real time and observe the exact waits. The only real-time bound that does not go
through it is the per-attempt network deadline (REL-01), which the transport enforces on the socket.
"""

from __future__ import annotations

import time
from datetime import datetime, timezone
from typing import Protocol


class Clock(Protocol):
    def now(self) -> datetime:
        """Wall-clock time, timezone-aware."""

    def monotonic(self) -> float:
        """Seconds on a clock that never goes back (for intervals)."""

    def sleep(self, seconds: float) -> None:
        """Wait ``seconds`` (no-op for zero or less)."""


class SystemClock:
    """The real clock."""

    def now(self) -> datetime:
        return datetime.now(timezone.utc)

    def monotonic(self) -> float:
        return time.monotonic()

    def sleep(self, seconds: float) -> None:
        if seconds > 0:
            time.sleep(seconds)
