"""Drivers make the DTS under test act, the way its user would, and report what it showed.

A case never knows which driver it talks to; see ``base.Driver``. Drivers are looked up by the
name a SUT file (or ``--sut``) gives.
"""

from __future__ import annotations

from .base import Action, Driver, DriverError, Environment, Outcome, ReportedError, ShownNotification, SutInfo


def load_driver(sut: str, *, mutant: str | None = None) -> Driver:
    """The driver for ``--sut``. Only the built-in reference DTS exists so far; the command, HTTP and
    manual drivers read a ``sut.toml`` (later issue)."""
    if sut == "reference":
        from .reference import ReferenceDriver

        return ReferenceDriver(mutant=mutant)
    raise DriverError(f"unknown system under test {sut!r}: only 'reference' is available in this version")


__all__ = [
    "Action", "Driver", "DriverError", "Environment", "Outcome", "ReportedError", "ShownNotification", "SutInfo",
    "load_driver",
]
