"""The case catalogue, read from the case modules' declarations (no pytest run needed)."""

from __future__ import annotations

import importlib
import pkgutil
from pathlib import Path

from . import cases as cases_pkg
from .case import CaseSpec

CASES_DIR = Path(cases_pkg.__file__).parent


def all_cases() -> list[CaseSpec]:
    specs = []
    for mod in sorted(pkgutil.iter_modules([str(CASES_DIR)]), key=lambda m: m.name):
        if not mod.name.startswith("test_"):
            continue
        module = importlib.import_module(f"{cases_pkg.__name__}.{mod.name}")
        for name in sorted(vars(module)):
            spec = getattr(getattr(module, name), "ecdi_case", None)
            if isinstance(spec, CaseSpec):
                specs.append(spec)
    return specs


def case_ids(party: str | None = None) -> set[str]:
    """Every case id, or those of the cases judging ``party`` ("DTS", "CGW": ``CaseSpec.party``)."""
    return {c.id for c in all_cases() if party is None or c.party == party}


def case_ids_by_test() -> dict[str, str]:
    """``{"test_<family>.py::test_name": case id}``: a pytest node id (as a case run reports it) to its case."""
    out = {}
    for mod in pkgutil.iter_modules([str(CASES_DIR)]):
        if mod.name.startswith("test_"):
            module = importlib.import_module(f"{cases_pkg.__name__}.{mod.name}")
            out.update({f"{mod.name}.py::{name}": fn.ecdi_case.id for name, fn in vars(module).items()
                        if isinstance(getattr(fn, "ecdi_case", None), CaseSpec)})
    return out
