"""Mutants of the transport cases (see ``mutants.py`` for what a mutant is): one hook override each."""

from __future__ import annotations

from .mutants import MUTANTS, Mutant  # noqa: F401  (register with MUTANTS.update({...}))
