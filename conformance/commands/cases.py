"""``ecdi cases``: the case catalogue with requirement IDs."""

from __future__ import annotations


def register(sub) -> None:
    sub.add_parser("cases", help="list the conformance cases").set_defaults(func=_cases)


def _cases(args) -> int:
    from ..catalogue import all_cases

    for spec in all_cases():
        cap = f" [{spec.capability}]" if spec.capability else ""
        print(f"{spec.id}{cap}\n    {', '.join(spec.requirements)}\n    {spec.purpose}")
    return 0
