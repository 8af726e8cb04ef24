"""What the command, HTTP and manual drivers share: they are configured by a ``sut.toml``.

The SUT file gives the capability statement (``describe``) and the ``[driver]`` table, whose keys
each driver names in ``KEYS`` so that a typo is an error naming file and key, not a silent default.
"""

from __future__ import annotations

from ..sut import SutFile
from .base import Environment, SutInfo


class ConfiguredDriver:
    name = ""
    evidence_kind = "driver-action"
    KEYS: frozenset[str] = frozenset()

    def __init__(self, sut: SutFile):
        self.sut = sut
        sut.driver_keys(set(self.KEYS))
        self._env: Environment | None = None
        self._count = 0          # numbers the evidence files of one case: 01-configure, 02-lodge, ...

    def describe(self) -> SutInfo:
        return SutInfo(statement=self.sut.statement, build_hash=self.sut.build_hash)

    def begin(self, env: Environment) -> None:
        """The common part of ``start``: a fresh case, its work folder made."""
        self._env, self._count = env, 0
        env.work_dir.mkdir(parents=True, exist_ok=True)

    def stop(self) -> None:
        self._env = None
