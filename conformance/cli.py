"""``ecdi``: the harness's command line.

    ecdi run --sut reference --out DIR [--profile ecdi-1.0] [--time-scale S] [--mutant NAME] [--seed N]
    ecdi cases                  list the conformance cases with their requirement IDs
    ecdi mutants                list the reference DTS's named defects and the case meant to catch each

Exit status of ``run``: 0 only when the product is CONFORMANT; 1 when it is not; 2 for a usage or
set-up problem (named on stderr, never a traceback).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from . import __version__


def _run(args) -> int:
    import pytest

    from .catalogue import CASES_DIR, case_ids
    from .harness import Harness, HarnessOptions, SetupError

    try:
        Harness(HarnessOptions(sut=args.sut, mutant=args.mutant, profile_id=args.profile,
                               time_scale=args.time_scale)).prepare()
    except SetupError as exc:
        print(f"ecdi: {exc}", file=sys.stderr)
        return 2
    unknown = sorted(set(args.case or []) - case_ids())
    if unknown:
        print(f"ecdi: unknown case id(s): {', '.join(unknown)}; see `ecdi cases`", file=sys.stderr)
        return 2
    out = Path(args.out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    results_path = out / "results.json"
    if results_path.exists():
        results_path.unlink()  # never report a previous run's verdicts
    argv = [
        str(CASES_DIR),
        "-c", str(CASES_DIR / "pytest.ini"),
        "--rootdir", str(CASES_DIR),
        "-p", "conformance.plugin",
        "-q",
        f"--html={out / 'report.html'}", "--self-contained-html",
        f"--junitxml={out / 'junit.xml'}",
        f"--ecdi-sut={args.sut}",
        f"--ecdi-profile={args.profile}",
        f"--ecdi-time-scale={args.time_scale}",
        f"--ecdi-out={out}",
    ]
    if args.mutant:
        argv.append(f"--ecdi-mutant={args.mutant}")
    if args.seed is not None:
        argv.append(f"--ecdi-seed={args.seed}")
    if args.pki_dir:
        argv.append(f"--ecdi-pki-dir={args.pki_dir}")
    argv += [f"--ecdi-case={c}" for c in args.case or []]
    pytest.main(argv)
    if not results_path.exists():
        print(f"ecdi: the run wrote no results ({results_path}); see the output above", file=sys.stderr)
        return 2
    results = json.loads(results_path.read_text(encoding="utf-8"))
    if results.get("setup_error"):
        print(f"ecdi: the session could not start: {results['setup_error']}", file=sys.stderr)
        return 2
    print(f"\n{results['overall']}: {results['sut']['product']} {results['sut']['version']} "
          f"on {results['profile']['id']} (time scale {results['time_scale']}, seed {results['seed']})")
    for c in results["cases"]:
        print(f"  {c['verdict']:<15} {c['id']:<42} {' '.join(c['requirements'])}")
    print(f"report: {out / 'report.html'}\ncertificate: {out / 'certificate.html'}")
    return 0 if results["overall"] == "CONFORMANT" else 1


def _cases(args) -> int:
    from .catalogue import all_cases

    for spec in all_cases():
        cap = f" [{spec.capability}]" if spec.capability else ""
        print(f"{spec.id}{cap}\n    {', '.join(spec.requirements)}\n    {spec.purpose}")
    return 0


def _mutants(args) -> int:
    from .reference_dts.mutants import MUTANTS

    for m in MUTANTS.values():
        print(f"{m.name:<30} caught by {m.caught_by:<38} breaks {', '.join(m.breaks)}\n    {m.summary}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="ecdi", description="ECDI conformance harness")
    p.add_argument("--version", action="version", version=f"ecdi-conformance {__version__}")
    sub = p.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="run a conformance session")
    run.add_argument("--sut", default="reference", help="system under test (default: the built-in reference DTS)")
    run.add_argument("--out", required=True, help="output folder (report.html, results.json, junit.xml, certificate.html)")
    run.add_argument("--profile", default="ecdi-1.0")
    run.add_argument("--time-scale", type=float, default=1.0, help="timer scale 0 < s <= 1; s < 1 is a self-test")
    run.add_argument("--mutant", help="reference DTS only: run with this named defect (see `ecdi mutants`)")
    run.add_argument("--seed", type=int, help="test-data seed (recorded in results.json; replays a run)")
    run.add_argument("--case", action="append", help="run only this case id (repeatable)")
    run.add_argument("--pki-dir", help="reuse a generated test PKI folder")
    run.set_defaults(func=_run)
    sub.add_parser("cases", help="list the conformance cases").set_defaults(func=_cases)
    sub.add_parser("mutants", help="list the reference DTS's mutants").set_defaults(func=_mutants)
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except KeyboardInterrupt:
        print("ecdi: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
