"""Drivers make the DTS under test act, the way its user would, and report what it showed.

A case never knows which driver it talks to; see ``base.Driver``. ``--sut reference`` is the
built-in reference DTS; any other ``--sut`` is a ``sut.toml`` whose ``[driver] kind`` picks the
command, HTTP or manual driver (docs/drivers.md).
"""

from __future__ import annotations

from .base import Action, Driver, DriverError, Environment, Outcome, ReportedError, ShownNotification, SutInfo


def load_driver(sut: str, *, mutant: str | None = None) -> Driver:
    """The driver for ``--sut``: ``reference`` or the path of a ``sut.toml``."""
    if sut == "reference":
        from .reference import ReferenceDriver

        return ReferenceDriver(mutant=mutant)
    from ..sut import SutError, load_sut, looks_like_sut_file

    if not looks_like_sut_file(sut):
        raise DriverError(f"unknown system under test {sut!r}: give 'reference' or the path of a sut.toml")
    if mutant is not None:
        raise DriverError("--mutant applies to the built-in reference DTS only, not to a sut.toml")
    try:
        sut_file = load_sut(sut)
        return _DRIVERS[sut_file.driver_kind]()(sut_file)
    except SutError as exc:
        raise DriverError(str(exc)) from None


def _command():
    from .command import CommandDriver
    from .server import ServerDriver

    return lambda sut: (ServerDriver if "server" in sut.driver else CommandDriver)(sut)


def _http():
    from .http import HttpDriver

    return HttpDriver


def _manual():
    from .manual import ManualDriver

    return ManualDriver


_DRIVERS = {"command": _command, "http": _http, "manual": _manual}

__all__ = [
    "Action", "Driver", "DriverError", "Environment", "Outcome", "ReportedError", "ShownNotification", "SutInfo",
    "load_driver",
]
