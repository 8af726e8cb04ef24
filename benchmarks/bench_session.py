"""Wall time of a full conformance session against the reference DTS (the README's main job)."""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from conformance.progress import Progress

TARGET_S = 120.0   # issue 6: the whole catalogue against the reference DTS, with the time scale, under two minutes


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--time-scale", default="0.05")
    ap.add_argument("--same-out", action="store_true",
                    help="every run into one --out without --pki-dir, as `tox -e conformance` run again and again "
                         "(earlier outputs moved to out/previous/, the PKI in out/work/pki reused)")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        pki = Path(tmp) / "pki"
        times = []
        with Progress(args.runs, noun="runs", echo=False) as progress:     # on stderr; the figures go to stdout
            for i in range(args.runs):
                out = Path(tmp) / ("out" if args.same_out else f"run{i}")
                progress.start(f"run {i + 1}")
                progress.waiting(f"run {i + 1}", None, "the whole catalogue (ecdi run)")
                start = time.perf_counter()
                proc = subprocess.run([sys.executable, "-m", "conformance.cli", "run", "--sut", "reference",
                                       "--time-scale", args.time_scale, "--out", str(out), "--progress", "off",
                                       *(() if args.same_out else ("--pki-dir", str(pki)))],
                                      capture_output=True, text=True)
                times.append(time.perf_counter() - start)
                progress.finished(f"run {i + 1}", f"exit {proc.returncode}")
                print(f"run {i + 1}: {times[-1]:.1f} s, exit {proc.returncode}", flush=True)
                if proc.returncode != 0:
                    print(proc.stdout[-2000:], proc.stderr[-2000:])
                    return 1
    median = statistics.median(times)
    print(f"median {median:.1f} s over {args.runs} runs (target < {TARGET_S:.0f} s)")
    return 0 if median < TARGET_S else 1


if __name__ == "__main__":
    sys.exit(main())
