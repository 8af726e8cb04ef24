"""``ecdi mutants``: the reference DTS's named defects and the case meant to catch each.

``ecdi mutants --score`` proves the cases work: each mutant runs its own case alone, exactly as the
self-test does (``ecdi run --mutant NAME --case CASE`` in a separate process), and is *caught* when
that case FAILs on a requirement the mutant breaks — not when it errors or fails on something else.
The score is caught / mutants run; exit 0 only at 100 %.

``--whole-catalogue`` is the long self-test: each mutant runs the whole catalogue (or the ``--case`` ids
given, its own case always included), is caught as above, and no case may end in ERROR except through the
driver ("driver error: …"): whatever a product does, a case judges it or says why it cannot — it never crashes.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path


def register(sub) -> None:
    p = sub.add_parser("mutants", help="list the reference DTS's mutants; --score runs each against its case")
    p.add_argument("--score", action="store_true",
                   help="run each mutant's case against it and print caught/missed and the mutant score")
    p.add_argument("--only", action="append", metavar="NAME", help="with --score: only this mutant (repeatable)")
    p.add_argument("--time-scale", type=float, default=0.05,
                   help="with --score: timer scale of the runs (default 0.05, as the self-test)")
    p.add_argument("--seed", type=int, default=20261123, help="with --score: test-data seed of the runs")
    p.add_argument("--out", help="with --score: keep each run's outputs in OUT/<mutant> (default: a temporary folder)")
    p.add_argument("--pki-dir", help="with --score: reuse a generated test PKI folder (default: one for all runs)")
    p.add_argument("--whole-catalogue", action="store_true",
                   help="with --score: run every case against each mutant (slow: about a full run per mutant) and "
                        "also fail when a case ends in ERROR other than a driver error")
    p.add_argument("--case", action="append", metavar="CASE",
                   help="with --whole-catalogue: only these cases (repeatable; the mutant's own case is added)")
    p.add_argument("--jobs", type=int, default=1,
                   help="with --score: mutants scored at once, each in a run of its own (default 1: a timing "
                        "mutant's defect can be smaller than what other runs beside it cost the machine)")
    p.add_argument("--party", choices=("DTS", "CGW"), default="DTS", type=str.upper,
                   help="DTS: the reference DTS's mutants (default); CGW: the mock gateway's defects, scored "
                        "against the CGW cases (`ecdi gateway --defect NAME`, `ecdi run --gateway`)")
    p.set_defaults(func=_mutants)


def _mutants(args) -> int:
    if args.party == "CGW":
        from ..gateway_mutants import gateway_mutants

        return gateway_mutants(args)
    from ..progress import Progress
    from ..reference_dts.mutants import MUTANTS
    from . import not_a_folder

    if not args.score:
        if args.only:
            print("ecdi: --only is used with --score", file=sys.stderr)
            return 2
        from ..reference_dts.mutants_payment import CONFIGURATIONS

        for m in MUTANTS.values():
            under = f" (under {m.profile})" if getattr(m, "profile", None) else ""
            print(f"{m.name:<30} caught by {m.caught_by:<38} breaks {', '.join(m.breaks)}{under}\n    {m.summary}")
        print("\nConfigurations (several hooks at once: not mutants, not scored; `ecdi run --mutant NAME`):")
        for c in CONFIGURATIONS.values():
            print(f"{c.name:<30} differs on {', '.join(c.breaks)}\n    {c.summary}")
        return 0
    if (args.whole_catalogue or args.case) and not args.score:
        print("ecdi: --whole-catalogue and --case are used with --score", file=sys.stderr)
        return 2
    if args.case and not args.whole_catalogue:
        print("ecdi: --case is used with --whole-catalogue", file=sys.stderr)
        return 2
    unknown = [n for n in args.only or () if n not in MUTANTS]
    if unknown:
        print(f"ecdi: unknown mutant {unknown[0]!r}; `ecdi mutants` lists: {', '.join(sorted(MUTANTS))}",
              file=sys.stderr)
        return 2
    if not 0 < args.time_scale <= 1:
        print("ecdi: --time-scale must satisfy 0 < s <= 1", file=sys.stderr)
        return 2
    if not_a_folder(out=args.out, pki_dir=args.pki_dir):
        return 2
    if args.jobs < 1:
        print(f"ecdi: --jobs must be at least 1, got {args.jobs}", file=sys.stderr)
        return 2
    chosen = [MUTANTS[n] for n in args.only] if args.only else list(MUTANTS.values())
    with tempfile.TemporaryDirectory(prefix="ecdi-mutants-") as tmp:
        out = Path(args.out) if args.out else Path(tmp)
        pki = Path(args.pki_dir) if args.pki_dir else out / "pki"
        catalogue = (args.case or []) if args.whole_catalogue else None
        with Progress(len(chosen), noun="mutants", echo=False) as progress, \
                ThreadPoolExecutor(max_workers=args.jobs) as pool:   # printed in order, as each is known
            def scored(m):
                progress.start(m.name)
                progress.waiting(m.name, None, f"its run: ecdi run --mutant {m.name} --case {m.caught_by}")
                score = score_mutant(m, out / m.name, pki, time_scale=args.time_scale, seed=args.seed,
                                     catalogue=catalogue)
                progress.finished(m.name, "caught" if score.caught else "MISSED")
                return score

            scores = printed_in_order(chosen, [pool.submit(scored, m) for m in chosen])
    caught = sum(s.caught for s in scores)
    print(f"mutant score: {caught}/{len(scores)} caught ({100 * caught / len(scores):.0f} %)")
    return 0 if caught == len(scores) else 1


def printed_in_order(chosen, runs) -> list:
    """Each run's ``Score``, printed in the list's order as each is known (mutants of either party)."""
    scores = []
    for m, run in zip(chosen, runs):
        score = run.result()
        scores.append(score)
        print(f"{'caught' if score.caught else 'MISSED':<7} {m.name:<32} by {m.caught_by:<42} "
              f"({score.seconds:.1f} s) {score.reason}", flush=True)
    return scores


@dataclass(frozen=True)
class Score:
    mutant: str
    caught: bool
    reason: str
    seconds: float


def score_mutant(mutant, out: Path, pki_dir: Path, *, time_scale: float, seed: int,
                 catalogue: list[str] | None = None) -> Score:
    """Run ``mutant``'s case against it alone and judge as the self-test does. ``catalogue``: [] runs the whole
    catalogue, a list those cases and the mutant's own; then a case ending in a non-driver ERROR is a miss too."""
    cmd = [sys.executable, "-m", "conformance.cli", "run", "--sut", "reference", "--mutant", mutant.name,
           "--out", str(out), "--time-scale", str(time_scale), "--seed", str(seed), "--pki-dir", str(pki_dir),
           "--progress", "off"]
    chosen = [mutant.caught_by] if catalogue is None else (
        list(dict.fromkeys([*catalogue, mutant.caught_by])) if catalogue else [])
    for case_id in chosen:
        cmd += ["--case", case_id]
    if getattr(mutant, "profile", None):     # a defect that only counts under one profile (CAP-02: SHOULDs)
        cmd += ["--profile", mutant.profile]
    if out.exists():       # a reused output folder would mix an earlier run's evidence into this one
        shutil.rmtree(out)
    started = time.monotonic()
    proc = subprocess.run(cmd, capture_output=True, text=True)
    seconds = time.monotonic() - started
    try:
        results = json.loads((out / "results.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-1:] or ["no output"]
        return Score(mutant.name, False, f"the run wrote no results (exit {proc.returncode}): {tail[0]}", seconds)
    caught, reason = judge(mutant, results)
    crashed = crashes(results) if catalogue is not None else []
    if crashed:
        return Score(mutant.name, False, f"{reason}; but {len(crashed)} case(s) ended in ERROR: {'; '.join(crashed)}",
                     seconds)
    return Score(mutant.name, caught, reason, seconds)


def crashes(results: dict) -> list[str]:
    """Cases that ended in ERROR for any cause but the driver's (a case must never crash on a product)."""
    return [f"{c['id']}: {c.get('reason', '')}" for c in results.get("cases", [])
            if c.get("verdict") == "ERROR" and not c.get("reason", "").startswith("driver error:")]


def judge(mutant, results: dict) -> tuple[bool, str]:
    """Caught = the mutant's case ran alone and FAILed through a check of a requirement it breaks."""
    cases = {c["id"]: c for c in results.get("cases", [])}
    record = cases.get(mutant.caught_by)
    if record is None:
        return False, f"{mutant.caught_by} did not run"
    if record["verdict"] != "FAIL":
        return False, f"{mutant.caught_by} gave {record['verdict']}: {record.get('reason', '')}"
    failed_on = sorted({f["requirement"] for f in record.get("findings", []) if f["verdict"] == "FAIL"})
    hits = [r for r in failed_on if r in mutant.breaks]
    if not hits:
        return False, f"FAIL on {', '.join(failed_on) or 'nothing'}, but the mutant breaks {', '.join(mutant.breaks)}"
    return True, f"FAIL on {', '.join(hits)}"
