"""``ecdi mutants``: the reference DTS's named defects and the case meant to catch each."""

from __future__ import annotations


def register(sub) -> None:
    sub.add_parser("mutants", help="list the reference DTS's mutants").set_defaults(func=_mutants)


def _mutants(args) -> int:
    from ..reference_dts.mutants import MUTANTS

    for m in MUTANTS.values():
        print(f"{m.name:<30} caught by {m.caught_by:<38} breaks {', '.join(m.breaks)}\n    {m.summary}")
    return 0
