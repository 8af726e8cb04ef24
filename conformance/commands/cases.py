"""``ecdi cases``: the case catalogue with requirement IDs; ``--coverage`` maps requirements to cases."""

from __future__ import annotations

import sys


def register(sub) -> None:
    p = sub.add_parser("cases", help="list the conformance cases (or, with --coverage, requirements coverage)")
    p.add_argument("--coverage", action="store_true",
                   help="print every requirement of the profile binding each party (DTS, then CGW) with the "
                        "cases that cover it")
    p.add_argument("--profile", default="ecdi-1.0", help="ECDI profile whose requirements --coverage lists")
    p.set_defaults(func=_cases)


def _cases(args) -> int:
    from ..catalogue import all_cases

    specs = all_cases()
    if not args.coverage:
        for spec in specs:
            cap = f" [{spec.capability}]" if spec.capability else ""
            print(f"{spec.id}{cap}\n    {', '.join(spec.requirements)}\n    {spec.purpose}")
        return 0
    from ..coverage import coverage
    from ..profile import ProfileError, load_profile

    try:
        profile = load_profile(args.profile)
    except ProfileError as exc:
        print(f"ecdi: {exc}", file=sys.stderr)
        return 2
    for party in ("DTS", "CGW"):
        if party == "CGW":
            print(f"\n# requirements binding the CGW (cases cgw-*)")
        cov = coverage(profile, specs, party)
        for row in cov.rows:
            cap = f"[{row.capability}]" if row.capability else ""
            print(f"{row.requirement:<8} {row.level or '-':<6} {cap:<10} {', '.join(row.cases) or row.harness or '— not covered'}")
        for level in ("MUST", "SHOULD"):
            covered, total = cov.level_figures(level)
            print(f"{level} requirements binding the {party} covered by a case: {covered}/{total}")
        label = "MUST coverage" if party == "DTS" else "CGW MUST coverage"
        print(f"{label}: {cov.must_percent:.0f}% ({profile.id})")
    return 0
