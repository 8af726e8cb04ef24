"""``ecdi mutants --party CGW`` (``commands/mutants.py``): the mock gateway's defects (``mock_server/defects.py``) and their score.

Listing prints each defect with the requirements it breaks and the CGW case that must FAIL it. ``--score``
proves the CGW cases work, as ``ecdi mutants --score`` does for the DTS cases, but from outside: per defect
it starts the mock gateway as a separate process (``ecdi gateway --defect NAME --statement``), runs
``ecdi run --gateway`` with the defect's case against it, and counts the defect caught when that case
FAILs on a requirement the defect breaks. First the correct gateway runs every case the defects name:
each must PASS (a case that fails a correct gateway proves nothing by failing a wrong one).
"""

from __future__ import annotations

import json
import os
import selectors
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from .commands.mutants import Score, judge, printed_in_order

DEFAULT_PROFILE = "ecdi-1.1"
READY_TIMEOUT = 120.0          # a gateway's start (test PKI, worker processes) on a loaded machine


def gateway_mutants(args) -> int:
    from mock_server.defects import DEFECTS

    from .commands import not_a_folder

    if not args.score:
        if args.only:
            print("ecdi: --only is used with --score", file=sys.stderr)
            return 2
        for d in DEFECTS.values():
            print(f"{d.name:<40} caught by {d.caught_by:<44} breaks {', '.join(d.breaks)}"
                  f" (under {d.profile or DEFAULT_PROFILE})\n    {d.summary}")
        return 0
    if args.whole_catalogue or args.case:
        print("ecdi: --whole-catalogue and --case are for the DTS mutants", file=sys.stderr)
        return 2
    unknown = [n for n in args.only or () if n not in DEFECTS]
    if unknown:
        print(f"ecdi: unknown gateway defect {unknown[0]!r}; `ecdi mutants --party CGW` lists: "
              f"{', '.join(sorted(DEFECTS))}", file=sys.stderr)
        return 2
    if not 0 < args.time_scale <= 1:
        print("ecdi: --time-scale must satisfy 0 < s <= 1", file=sys.stderr)
        return 2
    if args.jobs < 1:
        print(f"ecdi: --jobs must be at least 1, got {args.jobs}", file=sys.stderr)
        return 2
    if not_a_folder(out=args.out, pki_dir=args.pki_dir):
        return 2
    chosen = [DEFECTS[n] for n in args.only] if args.only else list(DEFECTS.values())
    with tempfile.TemporaryDirectory(prefix="ecdi-cgw-mutants-") as tmp:
        out = Path(args.out) if args.out else Path(tmp)
        pki = Path(args.pki_dir).resolve() if args.pki_dir else (out / "pki").resolve()
        from .pki import TestPKI

        TestPKI.ensure(pki)                # once, before gateways share it
        correct = correct_gateway_passes(chosen, out / "correct-gateway", pki, time_scale=args.time_scale)
        for line in correct.lines:
            print(line, flush=True)
        with ThreadPoolExecutor(max_workers=args.jobs) as pool:
            scores = printed_in_order(chosen, [pool.submit(score_defect, d, out / d.name, pki,
                                                           time_scale=args.time_scale) for d in chosen])
    caught = sum(s.caught for s in scores)
    print(f"gateway defect score: {caught}/{len(scores)} caught ({100 * caught / len(scores):.0f} %); "
          f"correct gateway: {correct.passed}/{correct.total} cases PASS")
    return 0 if caught == len(scores) and correct.passed == correct.total else 1


# ------------------------------------------------------------------------------------------------


class GatewayProcess:
    """The mock gateway as an external process (``ecdi gateway``), with its statement; a context manager."""

    def __init__(self, folder: Path, pki_dir: Path, *, profile: str, time_scale: float, defect: str | None = None):
        self.folder = folder
        self.statement = folder / "gateway.toml"
        cmd = [sys.executable, "-m", "conformance.cli", "gateway", "--port", "0", "--dir", str(folder),
               "--pki-dir", str(pki_dir), "--profile", profile, "--time-scale", str(time_scale),
               "--statement", str(self.statement)]
        if defect:
            cmd += ["--defect", defect]
        folder.mkdir(parents=True, exist_ok=True)
        self.log = (folder / "gateway.log").open("w+b")
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=self.log, start_new_session=True)
        self.output = self._until_ready()

    def _until_ready(self) -> str:
        """Its stdout up to "ready" (RuntimeError with its last line if it exits or stalls first)."""
        seen = b""
        with selectors.DefaultSelector() as sel:
            sel.register(self.proc.stdout, selectors.EVENT_READ)
            deadline = time.monotonic() + READY_TIMEOUT
            while b"\nready" not in b"\n" + seen:
                left = deadline - time.monotonic()
                if left <= 0 or not sel.select(left):
                    self.stop()
                    raise RuntimeError(f"the gateway was not ready within {READY_TIMEOUT:g} s")
                chunk = os.read(self.proc.stdout.fileno(), 65536)
                if not chunk:
                    self.stop()
                    self.log.seek(0)
                    tail = (self.log.read().decode("utf-8", "replace").strip().splitlines() or ["no output"])[-1]
                    raise RuntimeError(f"the gateway exited ({self.proc.returncode}): {tail}")
                seen += chunk
        return seen.decode("utf-8", "replace")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self.proc.stdout.close()
        self.log.close()

    def __enter__(self) -> "GatewayProcess":
        return self

    def __exit__(self, *exc) -> None:
        self.stop()


def run_against(statement: Path, out: Path, cases: list[str], *, profile: str, time_scale: float) -> dict | str:
    """``ecdi run --gateway`` with ``cases``: its results.json, or a one-line reason it wrote none."""
    if out.exists():
        shutil.rmtree(out)
    cmd = [sys.executable, "-m", "conformance.cli", "run", "--gateway", str(statement), "--out", str(out),
           "--profile", profile, "--time-scale", str(time_scale), "--progress", "off"]
    for case_id in cases:
        cmd += ["--case", case_id]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    try:
        return json.loads((out / "results.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-1:] or ["no output"]
        return f"the run wrote no results (exit {proc.returncode}): {tail[0]}"


def score_defect(defect, out: Path, pki_dir: Path, *, time_scale: float) -> Score:
    """Serve ``defect`` from its own gateway process and run its case against it."""
    started = time.monotonic()
    profile = defect.profile or DEFAULT_PROFILE
    if out.exists():
        shutil.rmtree(out)
    try:
        with GatewayProcess(out / "gateway", pki_dir, profile=profile, time_scale=time_scale,
                            defect=defect.name) as gw:
            results = run_against(gw.statement, out / "run", [defect.caught_by], profile=profile,
                                  time_scale=time_scale)
    except RuntimeError as exc:
        return Score(defect.name, False, str(exc), time.monotonic() - started)
    seconds = time.monotonic() - started
    if isinstance(results, str):
        return Score(defect.name, False, results, seconds)
    caught, reason = judge(defect, results)
    return Score(defect.name, caught, reason, seconds)


@dataclass(frozen=True)
class Correct:
    passed: int
    total: int
    lines: list[str]


def correct_gateway_passes(defects, out: Path, pki_dir: Path, *, time_scale: float) -> Correct:
    """The correct gateway against every case the defects name, per profile: each must PASS."""
    by_profile: dict[str, list[str]] = {}
    for d in defects:
        by_profile.setdefault(d.profile or DEFAULT_PROFILE, [])
        if d.caught_by not in by_profile[d.profile or DEFAULT_PROFILE]:
            by_profile[d.profile or DEFAULT_PROFILE].append(d.caught_by)
    from .catalogue import all_cases

    known = {c.id for c in all_cases() if c.party == "CGW"}
    passed, total, lines = 0, 0, []
    for profile, cases in by_profile.items():
        total += len(cases)
        lines += [f"NOT-PASS correct gateway ({profile}) {case_id}: no such CGW case" for case_id in cases
                  if case_id not in known]
        cases = [case_id for case_id in cases if case_id in known]
        try:
            with GatewayProcess(out / profile / "gateway", pki_dir, profile=profile, time_scale=time_scale) as gw:
                results = run_against(gw.statement, out / profile / "run", cases, profile=profile,
                                      time_scale=time_scale)
        except RuntimeError as exc:
            results = str(exc)
        if isinstance(results, str):
            lines.append(f"correct gateway ({profile}): {results}")
            continue
        verdicts = {c["id"]: c for c in results.get("cases", [])}
        for case_id in cases:
            record = verdicts.get(case_id)
            ok = record is not None and record["verdict"] == "PASS"
            passed += ok
            if not ok:
                got = "did not run" if record is None else f"{record['verdict']}: {record.get('reason', '')}"
                lines.append(f"NOT-PASS correct gateway ({profile}) {case_id}: {got}")
    return Correct(passed, total, lines)
