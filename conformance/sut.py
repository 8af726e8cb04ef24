"""The harness-side SUT file ``sut.toml``: what the harness needs beyond the vendor's statement.

The capability statement (CAP-05) is the vendor's and has exactly the keys of Table 13-2, so
everything else lives here: which statement to read, which driver makes the product act and its
settings, the CGW accounts the gateway registers, where the product expects the test PKI files,
and optionally the build hash the certificate names. Relative paths are relative to this file so
a vendor can keep the folder anywhere. Unknown keys are errors, as in the statement.
"""

from __future__ import annotations

import re
import shutil
from dataclasses import dataclass, field
from pathlib import Path

from .files import read_toml
from .statement import StatementError, load_statement

DRIVER_KINDS = ("command", "http", "manual")
USER_ID = re.compile(r"[A-Za-z0-9._@-]{1,50}")          # §4.2 UserId
INSTALLABLE = ("tls_ca", "sign_anchor", "ca_trust_list", "p12", "crl")
_TOP_KEYS = {"statement", "build_hash", "driver", "account", "install", "inspect", "crl"}
# SIG-12: how the product reaches the declarant CA's CRL (docs/drivers.md, "Revocation"): it fetches the
# certificate's distribution point, or it is given the CRL ({crl_path}, {crl_url}, [install] crl), or it
# has no way in the test set-up (its revocation findings are then NOT-APPLICABLE).
CRL_ACCESS = ("distribution-point", "given", "none")
DEFAULT_INSPECT = ("{work_dir}",)   # SEC-01/SEC-02: where the product keeps its files, by default


class SutError(Exception):
    """A broken ``sut.toml`` (or the statement it names): the message names file and key."""

    def __init__(self, file: Path, key: str, problem: str):
        self.file, self.key, self.problem = Path(file), key, problem
        super().__init__(f"{file}: {key + ': ' if key else ''}{problem}")


@dataclass(frozen=True)
class SutFile:
    path: Path
    statement_path: Path
    statement: dict
    driver_kind: str
    driver: dict                      # the [driver] table less ``kind``; each driver checks its keys
    accounts: tuple[str, ...] = ("nguyenvana",)
    install: dict[str, Path] = field(default_factory=dict)
    build_hash: str | None = None
    # ``[inspect] paths``: files and folders holding the product's files (settings, journal, logs, key store),
    # searched for clear-text secrets (SEC-01, SEC-02); placeholders as in the driver's commands.
    inspect: tuple[str, ...] = DEFAULT_INSPECT
    crl: str = "none"                 # CRL_ACCESS; absent: "given" with an [install] crl, else "none"
    # ``[driver] instances``: how many instances of the product may run at once, each with its own state
    # and accounts (``ecdi run --jobs``, conformance/lanes.py); 1 when absent
    instances: int = 1

    @property
    def folder(self) -> Path:
        return self.path.parent

    def resolve(self, relative: str) -> Path:
        return (self.folder / relative).resolve()

    def error(self, key: str, problem: str) -> SutError:
        return SutError(self.path, key, problem)

    # --- helpers for the drivers, which check their own [driver] keys -------------------------
    def driver_keys(self, known: set[str]) -> None:
        for key in self.driver:
            if key not in known:
                raise self.error(f"driver.{key}", f"unknown key for the {self.driver_kind} driver "
                                                  f"(known: {', '.join(sorted(known))})")

    def driver_table(self, key: str) -> dict:
        value = self.driver.get(key, {})
        if not isinstance(value, dict):
            raise self.error(f"driver.{key}", "must be a table")
        return value

    def seconds(self, key: str, value) -> float:
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
            raise self.error(key, f"must be a positive number of seconds, found {value!r}")
        return float(value)

    def timeouts(self, default: float) -> tuple[float, dict[str, float]]:
        """``driver.timeout_s`` (every action) and ``[driver.timeouts]`` (per action)."""
        return (self.seconds("driver.timeout_s", self.driver.get("timeout_s", default)),
                {k: self.seconds(f"driver.timeouts.{k}", v) for k, v in self.driver_table("timeouts").items()})

    def install_pki(self, files: dict[str, Path]) -> None:
        """Copy the session's test PKI files where the product reads them (``[install]``), CAP-07."""
        for name, target in self.install.items():
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(files[name], target)


def looks_like_sut_file(sut: str) -> bool:
    """``--sut`` names a SUT file rather than a built-in SUT."""
    return sut.endswith(".toml") or "/" in sut or "\\" in sut


def load_sut(path: Path | str) -> SutFile:
    path = Path(path).resolve()
    data = read_toml(path, SutError)
    for key in data:
        if key not in _TOP_KEYS:
            raise SutError(path, key, f"unknown key (known: {', '.join(sorted(_TOP_KEYS))})")
    statement_path = (path.parent / _string(path, data, "statement")).resolve()
    try:
        statement = load_statement(statement_path)
    except StatementError as exc:
        raise SutError(path, "statement", f"the capability statement is invalid: {exc}") from None
    driver = data.get("driver")
    if not isinstance(driver, dict):
        raise SutError(path, "driver", "missing: a [driver] table with kind = command, http or manual")
    kind = driver.get("kind")
    if kind not in DRIVER_KINDS:
        raise SutError(path, "driver.kind", f"{kind!r} is not one of {', '.join(DRIVER_KINDS)}")
    build_hash = data.get("build_hash")
    if build_hash is not None:
        _string(path, data, "build_hash")
    install = _install(path, data.get("install", {}))
    crl = data.get("crl", "given" if "crl" in install else "none")
    if crl not in CRL_ACCESS:
        raise SutError(path, "crl", f"{crl!r} is not one of {', '.join(CRL_ACCESS)}")
    return SutFile(path, statement_path, statement, kind,
                   {k: v for k, v in driver.items() if k not in ("kind", "instances")},
                   _accounts(path, data.get("account")), install, build_hash,
                   _inspect(path, data.get("inspect", {})), crl, _instances(path, kind, driver.get("instances", 1)))


def _instances(path: Path, kind: str, value) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise SutError(path, "driver.instances", f"must be a whole number of at least 1, found {value!r}")
    if value > 1 and kind != "command":
        raise SutError(path, "driver.instances", f"the {kind} driver runs one instance of the product (found {value})")
    return value


def _string(path: Path, data: dict, key: str) -> str:
    value = data.get(key)
    if not isinstance(value, str) or not value.strip():
        raise SutError(path, key, f"must be a non-empty string, found {value!r}")
    return value


def _accounts(path: Path, value) -> tuple[str, ...]:
    """``[[account]]`` entries: the CGW UserIds the gateway registers; the first is the acting user."""
    if value is None:
        return SutFile.__dataclass_fields__["accounts"].default
    if not isinstance(value, list) or not value or not all(isinstance(a, dict) for a in value):
        raise SutError(path, "account", "must be one or more [[account]] tables")
    users = []
    for i, entry in enumerate(value):
        for key in entry:
            if key != "user_id":
                raise SutError(path, f"account[{i}].{key}", "unknown key (known: user_id)")
        user = entry.get("user_id")
        if not isinstance(user, str) or not USER_ID.fullmatch(user):
            raise SutError(path, f"account[{i}].user_id", f"{user!r} is not a UserId ([A-Za-z0-9._@-]{{1,50}})")
        users.append(user)
    if len(set(users)) != len(users):
        raise SutError(path, "account", "repeats a user_id")
    return tuple(users)


def _inspect(path: Path, value) -> tuple[str, ...]:
    """``[inspect] paths = ["{work_dir}", "~/.vendor/product"]``: where the product's files are (SEC-01/02)."""
    if not isinstance(value, dict):
        raise SutError(path, "inspect", "must be a table with paths = [...]")
    for key in value:
        if key != "paths":
            raise SutError(path, f"inspect.{key}", "unknown key (known: paths)")
    paths = value.get("paths", list(DEFAULT_INSPECT))
    if not isinstance(paths, list) or not paths or not all(isinstance(p, str) and p.strip() for p in paths):
        raise SutError(path, "inspect.paths", f"must be a non-empty list of paths, found {paths!r}")
    return tuple(paths)


def _install(path: Path, value) -> dict[str, Path]:
    if not isinstance(value, dict):
        raise SutError(path, "install", "must be a table")
    out = {}
    for key, target in value.items():
        if key not in INSTALLABLE:
            raise SutError(path, f"install.{key}", f"unknown key (known: {', '.join(INSTALLABLE)})")
        if not isinstance(target, str) or not target.strip():
            raise SutError(path, f"install.{key}", f"must be a file path, found {target!r}")
        out[key] = (path.parent / target).resolve()
    return out
