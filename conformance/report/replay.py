"""Re-deriving every verdict of a run offline, from its evidence bundle alone.

Each case function runs again, unchanged, inside a ``CaseContext`` whose gateway, driver and test
data answer from the case's tape (``conformance.tape``) and whose exchanges are the raw rows of the
bundle's evidence log. No socket is opened and no DTS runs. A verdict or finding that comes out
differently — or a case that asks for something the recorded one did not — is a difference: either
the bundle was edited, or the case code changed since the run.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass, field, fields
from pathlib import Path
from types import SimpleNamespace

from ..case import CaseFailure, CaseSpec
from ..catalogue import all_cases
from ..party import PARTIES
from ..drivers.base import Outcome, ReportedError, ShownNotification, SutInfo
from ..gateway_control import Exchange
from ..profile import ProfileError, load_profile
from ..scenarios import accept
from ..tape import ReplayMismatch, Tape, action_record, unb64
from ..verdict import CaseRecord, Status
from .bundle import EVIDENCE_DB, case_file
from .evidence_db import EvidenceUnreadable, case_rows

_EXCHANGE_FIELDS = {f.name for f in fields(Exchange)} - {"extra"}
_CHAIN_COLUMNS = {"pos", "prev_hash", "row_hash"}
_NO_RESPONSE = {"response_status": None, "response_headers": {}, "response_body": b"", "reply_text": None,
                "reply_function": None, "reply_codes": [], "responded_at": None}


class BundleError(Exception):
    """The bundle cannot be replayed; the message names the missing or malformed part."""


class _ReplayGateway:
    def __init__(self, tape: Tape, db: Path, case_id: str):
        self._tape, self._db, self._case_id = tape, db, case_id

    def begin_case(self, case_id: str, scenario: dict) -> None:
        self._tape.take("begin_case", case_id=case_id, scenario=scenario)

    def exchanges(self, case_id: str | None = None) -> list[Exchange]:
        return self._rows(self._tape.take("exchanges", case_id=case_id), case_id or self._case_id)

    def campaign_exchanges(self) -> list[Exchange]:
        return self._rows(self._tape.take("campaign_exchanges"), None)

    def _rows(self, event: dict, case_id: str | None) -> list[Exchange]:
        rows = case_rows(self._db, case_id)
        missing = [s for s in event["seqs"] if s not in rows]
        if missing:
            raise ReplayMismatch(f"exchanges {missing} are not in the evidence log")
        out = []
        for seq in event["seqs"]:
            row = {k: v for k, v in rows[seq].items() if k in _EXCHANGE_FIELDS}
            if seq in event.get("in_flight", []):  # as the case saw it: response still held back
                row.update(_NO_RESPONSE)
            extra = {k: v for k, v in rows[seq].items() if k not in _EXCHANGE_FIELDS and k not in _CHAIN_COLUMNS}
            out.append(Exchange(**row, extra=extra))
        return out

    def row(self, seq: int) -> Exchange:
        """One recorded exchange by its ``seq`` (what a CGW case's send returned)."""
        return self._rows({"seqs": [seq]}, None)[0]

    def advance_clock(self, seconds: float) -> None:
        self._tape.take("advance_clock", seconds=seconds)

    def mailbox(self, *, tax_code: str | None = None, payment_order_id: str | None = None) -> list[dict]:
        return self._tape.take("mailbox", tax_code=tax_code, payment_order_id=payment_order_id)["result"]

    def clock(self) -> dict:
        return self._tape.take("clock")["result"]


class _ReplayDriver:
    def __init__(self, tape: Tape):
        self._tape = tape

    def perform(self, action) -> Outcome:
        d = dict(self._tape.take("perform", action=action_record(action))["outcome"])
        d["errors"] = [ReportedError(**e) for e in d.get("errors", [])]
        d["warnings"] = [ReportedError(**e) for e in d.get("warnings", [])]
        d["notifications"] = [ShownNotification(**n) for n in d.get("notifications", [])]
        return Outcome(**d)

    def offers(self, action_name: str) -> bool:
        return self._tape.take("offers", name=action_name)["result"]

    def perform_and_kill(self, action, when, *, timeout: float) -> None:
        while not when():        # the recorded reads of the gateway, in the order the live run made them
            pass
        self._tape.take("perform_and_kill", action=action_record(action))

    def journal(self) -> list[dict]:
        return self._tape.take("journal")["result"]

    def journal_of(self, submission: str):
        return self._tape.take("journal_of", submission=submission)["result"]

    def search_product_files(self, needles) -> dict:
        return self._tape.take("search_product_files")["result"]

    def start(self, env) -> None:
        self._tape.take("start", certificate=env.certificate)

    def stop(self) -> None:
        self._tape.take("stop")


class _ReplaySettings:
    def __init__(self, tape: Tape):
        self._tape = tape

    def get(self, name: str):
        return self._tape.take("setting", name=name)["result"]


class _ReplayProbes:
    """The TLS probes of a live run (``CaseContext.use_endpoint``): what reached them is on the tape."""

    endpoint = "https://tls-probe.replayed.invalid/ecdi/CISService"

    def __init__(self, tape: Tape):
        self._tape = tape

    def tls_probe(self, variant: str) -> "_ReplayProbes":
        return self

    def last_seq(self) -> int:
        return 0

    def rows(self, since: int = 0) -> list[dict]:
        return self._tape.take("tls_connections")["result"]


class _ReplayData:
    def __init__(self, tape: Tape):
        self._tape = tape

    def nonce(self, digits: int = 6) -> str:
        return self._tape.take("data.nonce", digits=digits)["result"]

    def choice(self, items):
        result = self._tape.take("data.choice")["result"]
        if result not in list(items):
            raise ReplayMismatch(f"recorded test-data choice {result!r} is not among {sorted(items)}")
        return result

    def document(self, name: str, **changes) -> bytes:
        expected = {"changes": changes} if changes else {}
        return unb64(self._tape.take("data.document", name=name, **expected)["result"])


@dataclass
class _ReplayHarness:
    """What ``CaseContext`` reads from a harness, answered from the bundle."""

    profile: object
    sut: SutInfo
    time_scale: float
    gateway_control: object
    driver: object
    data: object
    recorded_settings: object = None     # CaseContext.setting answers from the tape
    recorded_probes: object = None       # CaseContext.use_endpoint / tls_connections answer from the tape
    recorded_lag: object = None          # CaseContext.harness_lag answers from the tape

    def case_environment(self, case_id: str, certificate: str | None = None, **_):
        """Only the certificate's name matters offline: the tape says which one the DTS was given."""
        from types import SimpleNamespace

        return SimpleNamespace(certificate=certificate or "declarant")


@dataclass
class CaseReplay:
    case_id: str
    recorded: str | None
    replayed: str | None
    differences: list[str] = field(default_factory=list)


@dataclass
class ReplayReport:
    cases: list[CaseReplay]
    notes: list[str]

    @property
    def differences(self) -> int:
        return sum(1 for c in self.cases if c.differences)


def bundle_dir(path: Path) -> Path:
    path = Path(path)
    return path / "evidence" if (path / "evidence" / "manifest.json").is_file() else path


def _load_json(path: Path, what: str):
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise BundleError(f"{what} missing: {path}") from None
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise BundleError(f"{what} unreadable: {path}: {exc}") from None


def _case_functions() -> dict[str, object]:
    all_cases()  # imports every case module
    return {fn.ecdi_case.id: fn
            for name, mod in list(sys.modules.items()) if name.startswith("conformance.cases.")
            for fn in vars(mod).values() if isinstance(getattr(fn, "ecdi_case", None), CaseSpec)}


def _findings(case: dict) -> list[tuple]:
    return [(f["verdict"], f["requirement"], f["message"]) for f in case.get("findings", [])]


def _recorded_lag(tape: Tape):
    """The harness lag a timing check read (``CaseContext.harness_lag``); a recording made before lag was
    read has none: no lag, as the harness then assumed."""
    def read(windows):
        if tape.unused and tape.events[len(tape.events) - tape.unused]["op"] == "lag":
            return tape.take("lag", windows=windows)["result"]
        return {"gateway_s": [0.0] * len(windows), "process_s": [0.0] * len(windows)}
    return read


def _run_case(fn, spec: CaseSpec, harness: _ReplayHarness, tape: Tape,
              attempt: int = 1) -> tuple[CaseRecord, str | None]:
    from ..plugin import pre_run_finding, unexpected_finding

    record = CaseRecord(spec.id, spec.family_name, spec.purpose, list(spec.requirements))
    decided = pre_run_finding(spec, harness.profile, harness.sut)
    if decided is not None:
        record.record(decided)
        record.finish()
        return record, None
    record.status = Status.RUNNING
    diverged = None
    try:
        ctx = PARTIES[spec.party].context(spec, record, harness, attempt=attempt)   # a CGW case reads its statement
        if spec.party == "DTS":
            ctx.given(accept())
        fn(ctx)
    except CaseFailure:
        pass
    except ReplayMismatch as exc:
        diverged = str(exc)
    except Exception as exc:  # noqa: BLE001 - as in a live run: the case ends in ERROR with the cause
        record.record(unexpected_finding(exc))
    record.finish()
    if diverged is None and tape.unused:
        diverged = f"the replayed case left {tape.unused} recorded input(s) unread"
    return record, diverged


def _replay_one(bundle: Path, db: Path, recorded: dict, spec: CaseSpec, fn, base: dict) -> CaseReplay:
    path = case_file(bundle, spec.id)
    tape = Tape(_load_json(path, f"tape of {spec.id}")["tape"]) if path.is_file() else Tape()
    if spec.party == "CGW":       # the harness played the DTS: its client's exchanges are the bundle's rows
        gateway = _ReplayGateway(tape, db, spec.id)
        harness = SimpleNamespace(statement=None, client=None, evidence=gateway, data=_ReplayData(tape), recording=tape,
                                  exchange=lambda seq: gateway.row(seq), recorded_lag=_recorded_lag(tape), **base)
    else:
        harness = _ReplayHarness(gateway_control=_ReplayGateway(tape, db, spec.id), driver=_ReplayDriver(tape),
                                 data=_ReplayData(tape), recorded_settings=_ReplaySettings(tape),
                                 recorded_probes=_ReplayProbes(tape), recorded_lag=_recorded_lag(tape), **base)
    # a case re-run for harness lag is replayed as its last attempt, under that attempt's gateway case id
    record, diverged = _run_case(fn, spec, harness, tape, attempt=1 + len(recorded.get("disturbed_attempts", [])))
    record.attempts = list(recorded.get("disturbed_attempts", []))
    result = CaseReplay(spec.id, recorded.get("verdict"), record.verdict.value)
    if diverged:
        result.differences.append(f"replay diverged from the recording: {diverged}")
    if result.recorded != result.replayed:
        result.differences.append(f"verdict {result.recorded} recorded, {result.replayed} re-derived "
                                  f"({record.reason})")
    elif _findings(recorded) != _findings(record.as_dict()):
        result.differences.append("same verdict, but the findings differ")
    return result


def replay(path: Path) -> ReplayReport:
    """Replay the bundle at ``path`` (a run's output folder or its ``evidence/`` folder)."""
    bundle = bundle_dir(path)
    manifest = _load_json(bundle / "manifest.json", "bundle manifest")
    results = _load_json(bundle / "results.json", "bundle results")
    db = bundle / EVIDENCE_DB
    if not db.is_file():
        raise BundleError(f"evidence log missing: {db}")
    try:
        profile = load_profile(manifest["profile"]["id"])
        base = {"profile": profile, "time_scale": float(manifest["time_scale"]),
                "sut": SutInfo(statement=manifest["statement"], mutant=manifest["sut"].get("mutant"))}
        recorded_cases = {c["id"]: c for c in results["cases"]}
    except ProfileError as exc:
        raise BundleError(f"the run's profile cannot be loaded: {exc}") from None
    except (KeyError, TypeError, ValueError) as exc:
        raise BundleError(f"bundle manifest or results lack {exc}") from None
    notes = []
    if profile.content_hash() != manifest["profile"].get("hash"):
        notes.append(f"profile {profile.id} data differs from the run's (hash {profile.content_hash()[:12]}… "
                     f"now, {str(manifest['profile'].get('hash'))[:12]}… then): verdicts re-derived with today's data")
    functions = _case_functions()
    report = ReplayReport([], notes)
    for case_id, recorded in recorded_cases.items():
        fn = functions.get(case_id)
        if fn is None:
            report.cases.append(CaseReplay(case_id, recorded.get("verdict"), None,
                                           ["the case no longer exists in this harness version"]))
            continue
        try:
            report.cases.append(_replay_one(bundle, db, recorded, fn.ecdi_case, fn, base))
        except EvidenceUnreadable as exc:
            raise BundleError(str(exc)) from None
    return report


__all__ = ["BundleError", "CaseReplay", "ReplayReport", "replay"]
