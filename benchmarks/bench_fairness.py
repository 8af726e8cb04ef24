"""Fairness of the timing cases (issue 12): each correct product — the reference DTS and ``cold-connections``
(a new connection per attempt whose set-up, inside the attempt, takes 0.25 s and 0.01 s in turn) — runs
the timing cases R times; target: every case PASS in every run (25 out of 25 by default). A run of some cases
only is INCOMPLETE overall by design (exit 3), so a run counts by its cases' verdicts."""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

from bench_hog import run_verdicts

from conformance.progress import Progress

TIMING_CASES = ["reliability.resend-after-timeout", "reliability.honours-retry-after", "reliability.exponential-backoff",
                "reliability.polling-pace", "reliability.query-settles-unknown-outcome"]
PRODUCTS = {"reference": [], "cold-connections": ["--mutant", "cold-connections"]}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--runs", type=int, default=25)
    ap.add_argument("--time-scale", default="0.05")
    ap.add_argument("--case", action="append", help="only these timing cases (default: all five)")
    args = ap.parse_args()
    cases = [a for c in args.case or TIMING_CASES for a in ("--case", c)]
    passed = {}
    with tempfile.TemporaryDirectory() as tmp, Progress(args.runs * len(PRODUCTS), noun="runs", echo=False) as progress:
        for product, extra in PRODUCTS.items():
            passed[product] = 0
            for i in range(args.runs):
                progress.start(f"{product} run {i + 1}")
                overall, others, _ = run_verdicts(Path(tmp) / f"{product}{i}", Path(tmp) / "pki", args.time_scale,
                                                  *extra, *cases)
                failed = {case: verdict for case, verdict in others.items() if not case.startswith("(")}
                fair = overall in ("CONFORMANT", "INCOMPLETE") and not failed
                progress.finished(f"{product} run {i + 1}", "all PASS" if fair else overall)
                passed[product] += fair
                if others:
                    print(f"{product} run {i + 1}: {overall} {others}", flush=True)
            print(f"{product:<18} every case PASS in {passed[product]}/{args.runs} runs", flush=True)
    return 0 if all(n == args.runs for n in passed.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
