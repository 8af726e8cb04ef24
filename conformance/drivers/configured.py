"""What the command, HTTP and manual drivers share: they are configured by a ``sut.toml``.

The SUT file gives the capability statement (``describe``) and the ``[driver]`` table, whose keys
each driver names in ``KEYS`` so that a typo is an error naming file and key, not a silent default.
"""

from __future__ import annotations

from pathlib import Path

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
        # a restart on the same state folder (CaseContext.restart) goes on numbering the evidence files
        self._env, self._count = env, len({p.name[:2] for p in env.work_dir.glob("driver/[0-9][0-9]-*")})
        env.work_dir.mkdir(parents=True, exist_ok=True)

    def product_files(self) -> list[Path]:
        """SEC-01/SEC-02: the product's files per ``[inspect] paths`` (default ``{work_dir}``), placeholders
        expanded like the driver's own (secrets never: a path holds none)."""
        from .command import expand
        from .protocol import environment_fields

        if self._env is None:
            return []
        values = {**environment_fields(self._env, secrets=False), "sut_dir": str(self.sut.folder)}
        return [Path(p).expanduser() for p in expand(list(self.sut.inspect), values, "inspect.paths")]

    def stop(self) -> None:
        self._env = None
