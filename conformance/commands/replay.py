"""``ecdi replay BUNDLE``: re-derive every verdict of a run offline from its evidence bundle.

BUNDLE is a run's output folder or its ``evidence/`` folder. The evidence log's hash chain is
checked first: a broken chain means the recorded exchanges are not what the gateway saw, so no
verdict can be re-derived from them and nothing is replayed (exit 1). Exit 0 when every verdict
and finding comes out as recorded, 1 on any difference or a broken chain, 2 for a bundle that
cannot be read (or a run that never finished).
"""

from __future__ import annotations

import sys
from pathlib import Path


def register(sub) -> None:
    p = sub.add_parser("replay", help="re-derive a run's verdicts offline from its evidence bundle")
    p.add_argument("bundle", help="the run's output folder or its evidence/ folder")
    p.set_defaults(func=_replay)


def _replay(args) -> int:
    from ..report.bundle import EVIDENCE_DB
    from ..report.evidence_db import EvidenceUnreadable, chain_head
    from ..report.outputs import RunNotFinished, check_finished
    from ..report.replay import BundleError, bundle_dir, replay
    from .verify import chain_check

    bundle = bundle_dir(Path(args.bundle))
    try:
        check_finished(bundle)
        chain_head(bundle / EVIDENCE_DB)
        ok, bad = chain_check(bundle / EVIDENCE_DB)
        if not ok:
            print(f"evidence chain: BROKEN at row seq {bad}: the evidence log was altered after the run, so no "
                  f"verdict can be re-derived from it; nothing replayed")
            return 1
        report = replay(bundle)
    except (BundleError, EvidenceUnreadable, RunNotFinished) as exc:
        print(f"ecdi: cannot replay {args.bundle}: {exc}", file=sys.stderr)
        return 2
    print("evidence chain: intact")
    for note in report.notes:
        print(f"note: {note}")
    for c in report.cases:
        if c.differences:
            print(f"  DIFF  {c.case_id}: " + "; ".join(c.differences))
        else:
            print(f"  same  {c.replayed:<15} {c.case_id}")
    print(f"{len(report.cases)} case(s) replayed, {report.differences} with differences")
    return 0 if report.differences == 0 else 1
