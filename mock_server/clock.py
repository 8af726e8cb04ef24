"""The gateway's clock (spec §2.1): real time plus an offset the tester can advance.

A test CGW may let the tester set its clock for cases on certificate validity, ``T_age_max`` and
``T_otp``; it must then use that clock for *every* time it checks, issues or reports. So nothing in
the gateway calls ``time.time()`` or ``datetime.now()`` for a protocol time: it asks this object.
Evidence timestamps are the one exception — they record when bytes really moved, so that cases can
measure a DTS's timeouts and backoff even across a clock jump (the offset is logged beside them).
"""

from __future__ import annotations

import threading
import time
from datetime import datetime, timezone
from typing import Callable


class Clock:
    def __init__(self, source: Callable[[], float] = time.time, offset: float = 0.0):
        self._source = source
        self._offset = float(offset)
        self._lock = threading.Lock()

    @property
    def offset(self) -> float:
        """Seconds the gateway's clock runs ahead of real time."""
        return self._offset

    def advance(self, seconds: float) -> float:
        """Move the clock forward (or back, with a negative value); returns the new offset."""
        with self._lock:
            self._offset += float(seconds)
            return self._offset

    def set_offset(self, offset: float) -> None:
        """Take the offset another gateway process set (shared_sessions.py)."""
        with self._lock:
            self._offset = float(offset)

    def time(self) -> float:
        """Gateway time as epoch seconds."""
        return self._source() + self._offset

    def now(self) -> datetime:
        """Gateway time as an aware UTC datetime."""
        return datetime.fromtimestamp(self.time(), timezone.utc)
