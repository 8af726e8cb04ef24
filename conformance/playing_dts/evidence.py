"""The harness-side evidence of a gateway run: every exchange the harness's DTS client makes.

The same file format, hash chain and redaction as the mock gateway's evidence (``mock_server.evidence``,
``mock_server.redaction``: pure modules, reused rather than copied), written into the run's
``evidence/evidence.sqlite3``; so ``ecdi evidence verify``, the bundle and ``ecdi replay`` treat it as
they treat a DTS run's. The gateway under test keeps its own record (SEC-07); this one is the harness's.
"""

from __future__ import annotations

from pathlib import Path

from mock_server.evidence import COLUMNS, EvidenceLog
from mock_server.redaction import redact_row

from ..gateway_control import Exchange


class HarnessEvidence:
    def __init__(self, path: Path, fingerprint, known_secrets=()):
        self.path = Path(path)
        self.fingerprint = fingerprint
        self.known = [s for s in known_secrets if s]
        self.log = EvidenceLog(self.path)

    def record(self, fields: dict, secrets=()) -> Exchange:
        """Commit one exchange (its secrets fingerprinted) and return it as the cases read it."""
        values = [*self.known, *(s for s in secrets if s)]
        row = redact_row(self.fingerprint, {k: fields.get(k) for k in COLUMNS}, values)
        seq = self.log.next_seq()
        self.log.append(seq, **row)
        return Exchange(seq=seq, **{k: _empty(k, v) for k, v in row.items()})

    def exchanges(self, case_id: str | None = None) -> list[Exchange]:
        return [Exchange(**{k: _empty(k, v) for k, v in r.items()}) for r in self.log.rows(case_id)]

    def close(self) -> None:
        self.log.close()


_EMPTY = {"request_body": b"", "response_body": b"", "request_headers": {}, "response_headers": {},
          "reply_codes": [], "gateway_verdict": {}, "attempt": 0, "clock_offset": 0.0}


def _empty(name: str, value):
    return _EMPTY[name] if value is None and name in _EMPTY else value
