"""The gateway statement ``gateway.toml``: what customs IT states about the CGW under test (issue 16).

The DTS side reads a vendor's capability statement (``statement.py``); the CGW side reads this one: the
endpoint and the anchors to trust, the deployment's published parameters (§2.1, Table 13-2's CGW rows),
the test accounts with the declarant signing pairs registered with the gateway (SIG-11, out of band),
and the test facilities it offers (a test clock, §2.1; an OTP mailbox, PAY-04). A statement that is only
almost right stops the session with one line naming the file and the key, never a run with a guess.
Relative file paths are read from the statement's folder. It holds passwords: keep it private (0600).

    [gateway]
    name = "..."; vendor = "..."; build = "..."
    endpoint = "https://127.0.0.1:8443/ecdi/CISService"
    profiles = ["ecdi-1.0", "ecdi-1.1"]          # the profiles it serves
    tls_anchor = "pki/tls-ca.pem"
    cgw_sign_anchor = "pki/sign-anchor.pem"
    [parameters]                                 # accepted_versions, mc_required, central_office, offices, s_max, otp_sender
    [[accounts]]                                 # user, password | password_file, tax_code, certificate, key
    [facilities.test_clock]                      # optional: url, token_file (the control API)
    [facilities.otp_mailbox]                     # optional: url, token_file
    [facilities.processing_history]              # optional: url, token_file (SEC-07's record, read-only)
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from .files import read_toml
from .statement import TAX_CODE

USER_ID = re.compile(r"[A-Za-z0-9._@-]{1,50}")      # §4.2 UserId
_GATEWAY_KEYS = {"name": str, "vendor": str, "build": str, "endpoint": str, "profiles": list,
                 "tls_anchor": str, "cgw_sign_anchor": str}
_PARAMETER_KEYS = {"accepted_versions": list, "mc_required": bool, "central_office": str, "offices": list,
                   "s_max": int, "otp_sender": str, "time_scale": float}
_OPTIONAL_PARAMETERS = {"time_scale": 1.0}      # §2.1: the s the gateway applies to its timers
_ACCOUNT_KEYS = {"user", "password", "password_file", "tax_code", "certificate", "key"}
# processing_history: the gateway's own record of each request (SEC-07), read as the control API's
# GET /exchanges?all=1 rows (docs/decisions.md, "CGW cases beyond transport")
FACILITIES = ("test_clock", "otp_mailbox", "processing_history")


class GatewayStatementError(Exception):
    """The statement is unreadable or invalid: one line naming the file and the key."""

    def __init__(self, file: Path, key: str, problem: str):
        self.file, self.key, self.problem = Path(file), key, problem
        super().__init__(f"{file}: {key}: {problem}" if key else f"{file}: {problem}")


@dataclass(frozen=True)
class GatewayAccount:
    user: str
    password: str = field(repr=False)
    tax_code: str
    certificate: Path          # PEM: the declarant's certificate, then its intermediates (KeyInfo order)
    key: Path                  # PEM private key of that certificate


@dataclass(frozen=True)
class Facility:
    url: str
    token: str = field(repr=False)


@dataclass(frozen=True)
class GatewayStatement:
    file: Path
    name: str
    vendor: str
    build: str
    endpoint: str
    profiles: tuple[str, ...]
    tls_anchor: Path
    cgw_sign_anchor: Path
    parameters: dict
    accounts: tuple[GatewayAccount, ...]
    facilities: dict[str, Facility]
    # [certificates.<name>]: further declarant pairs customs registered for the first account's tax code (or
    # deliberately not), named as the entries of ``pki_matrix`` (expired, revoked, ...): the request-signatures
    # cases sign with them; one not stated makes its check NOT-APPLICABLE.
    certificates: dict[str, GatewayAccount] = field(default_factory=dict)

    @property
    def base_url(self) -> str:
        """``https://host:port`` of the endpoint."""
        parts = urlsplit(self.endpoint)
        return f"{parts.scheme}://{parts.netloc}"

    def facility(self, name: str) -> Facility | None:
        return self.facilities.get(name)

    def describe(self) -> dict:
        """The facts the report and certificate header show (no secret, no private path)."""
        return {"name": self.name, "vendor": self.vendor, "build": self.build, "endpoint": self.endpoint,
                "profiles": list(self.profiles), "parameters": self.parameters,
                "facilities": sorted(self.facilities), "accounts": [a.user for a in self.accounts]}


def load_gateway_statement(file: Path | str) -> GatewayStatement:
    """The statement after every check; ``GatewayStatementError`` names the first problem."""
    file = Path(file)
    return _Reader(file).statement(read_toml(file, GatewayStatementError))


class _Reader:
    def __init__(self, file: Path):
        self.file = file
        self.folder = file.resolve().parent

    def fail(self, key: str, problem: str):
        raise GatewayStatementError(self.file, key, problem)

    def table(self, data: dict, key: str, *, required: bool = True) -> dict:
        value = data.get(key)
        if value is None and not required:
            return {}
        if not isinstance(value, dict):
            self.fail(key, "missing table" if value is None else f"expected a table, found {value!r}")
        return value

    def typed(self, table: dict, key: str, where: str, kind: type, *, required: bool = True):
        if key not in table:
            if required:
                self.fail(f"{where}.{key}", "missing")
            return None
        value = table[key]
        if kind is float and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
            self.fail(f"{where}.{key}", f"expected {kind.__name__}, found {value!r}")
        if kind is list and not all(isinstance(v, str) for v in value):
            self.fail(f"{where}.{key}", f"expected a list of strings, found {value!r}")
        if kind is str and not value.strip():
            self.fail(f"{where}.{key}", "empty")
        return value

    def unknown(self, table: dict, known, where: str) -> None:
        for key in table:
            if key not in known:
                self.fail(f"{where}.{key}" if where else key, f"unknown key (known: {', '.join(sorted(known))})")

    def path(self, value: str, key: str) -> Path:
        path = Path(value) if Path(value).is_absolute() else self.folder / value
        if not path.is_file():
            self.fail(key, f"{value!r}: no such file ({path})")
        return path

    def statement(self, data: dict) -> GatewayStatement:
        from .profile import list_profiles

        self.unknown(data, {"gateway", "parameters", "accounts", "facilities", "certificates"}, "")
        gw = self.table(data, "gateway")
        self.unknown(gw, _GATEWAY_KEYS, "gateway")
        values = {k: self.typed(gw, k, "gateway", kind) for k, kind in _GATEWAY_KEYS.items()}
        endpoint = urlsplit(values["endpoint"])
        if endpoint.scheme != "https" or not endpoint.hostname:
            self.fail("gateway.endpoint", f"{values['endpoint']!r} is not an https:// URL (TRN-01)")
        known = set(list_profiles())
        for pid in values["profiles"]:
            if pid not in known:
                self.fail("gateway.profiles", f"{pid!r} is not a profile of this harness ({', '.join(sorted(known))})")
        params = self.table(data, "parameters")
        self.unknown(params, _PARAMETER_KEYS, "parameters")
        parameters = {k: self.typed(params, k, "parameters", kind, required=k not in _OPTIONAL_PARAMETERS)
                      for k, kind in _PARAMETER_KEYS.items()}
        for key, default in _OPTIONAL_PARAMETERS.items():
            parameters[key] = default if parameters[key] is None else parameters[key]
        if not 0 < parameters["time_scale"] <= 1:
            self.fail("parameters.time_scale", f"{parameters['time_scale']} is not 0 < s <= 1 (§2.1)")
        return GatewayStatement(
            self.file, values["name"], values["vendor"], values["build"], values["endpoint"],
            tuple(values["profiles"]), self.path(values["tls_anchor"], "gateway.tls_anchor"),
            self.path(values["cgw_sign_anchor"], "gateway.cgw_sign_anchor"), parameters,
            self.accounts(data.get("accounts")), self.facilities(self.table(data, "facilities", required=False)),
            self.certificates(self.table(data, "certificates", required=False)))

    def accounts(self, entries) -> tuple[GatewayAccount, ...]:
        if not isinstance(entries, list) or not entries or not all(isinstance(e, dict) for e in entries):
            self.fail("accounts", "at least one [[accounts]] table is required")
        out = []
        for n, entry in enumerate(entries):
            where = f"accounts[{n}]"
            self.unknown(entry, _ACCOUNT_KEYS, where)
            user = self.typed(entry, "user", where, str)
            if not USER_ID.fullmatch(user):
                self.fail(f"{where}.user", f"{user!r} is not a UserId (§4.2)")
            tax_code = self.typed(entry, "tax_code", where, str)
            if not TAX_CODE.fullmatch(tax_code):
                self.fail(f"{where}.tax_code", f"{tax_code!r} is not a TaxCode (§4.2)")
            if ("password" in entry) == ("password_file" in entry):
                self.fail(f"{where}.password", "give exactly one of password and password_file")
            if "password" in entry:
                password = entry["password"]
                if not isinstance(password, str) or not 1 <= len(password) <= 128:
                    self.fail(f"{where}.password", "expected a string of 1-128 characters (TRN-11)")
            else:
                pw_file = self.path(self.typed(entry, "password_file", where, str), f"{where}.password_file")
                password = pw_file.read_text(encoding="utf-8").rstrip("\n")
            out.append(GatewayAccount(user, password, tax_code,
                                      self.path(self.typed(entry, "certificate", where, str), f"{where}.certificate"),
                                      self.path(self.typed(entry, "key", where, str), f"{where}.key")))
        return tuple(out)

    def certificates(self, table: dict) -> dict[str, GatewayAccount]:
        from .pki_matrix import BY_NAME

        out = {}
        for name, entry in table.items():
            where = f"certificates.{name}"
            if name not in BY_NAME:
                self.fail(where, f"not a certificate of the matrix ({', '.join(BY_NAME)})")
            if not isinstance(entry, dict):
                self.fail(where, f"expected a table with certificate and key, found {entry!r}")
            self.unknown(entry, {"certificate", "key"}, where)
            out[name] = GatewayAccount(name, "", "", self.path(self.typed(entry, "certificate", where, str),
                                                               f"{where}.certificate"),
                                       self.path(self.typed(entry, "key", where, str), f"{where}.key"))
        return out

    def facilities(self, table: dict) -> dict[str, Facility]:
        self.unknown(table, FACILITIES, "facilities")
        out = {}
        for name, entry in table.items():
            where = f"facilities.{name}"
            if not isinstance(entry, dict):
                self.fail(where, f"expected a table with url and token_file, found {entry!r}")
            self.unknown(entry, {"url", "token_file"}, where)
            url = self.typed(entry, "url", where, str)
            if urlsplit(url).scheme != "https":
                self.fail(f"{where}.url", f"{url!r} is not an https:// URL")
            token = self.path(self.typed(entry, "token_file", where, str), f"{where}.token_file")
            out[name] = Facility(url, token.read_text(encoding="utf-8").strip())
        return out


def write_private(path: Path, text: str) -> None:
    """Write ``text`` readable by its owner only (0600): a statement or a token holds secrets."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(text)
    os.chmod(path, 0o600)


def write_mock_statement(target: Path, running, pki, profiles: list, accounts: list, running_scale: float,
                         identities: dict | None = None, certificates: dict | None = None) -> None:
    """The statement of the project's own mock gateway (``ecdi gateway --statement``): its endpoint, its test
    PKI's anchors, its accounts with the declarant pair registered for their tax code (the key taken out of
    the PKCS#12 into the statement's private folder), and its control API as test clock and OTP mailbox.
    ``identities``: an account's own pair by UserId (default the declarant's); ``certificates``: the matrix
    certificates by entry name ([certificates.<name>])."""
    from cryptography.hazmat.primitives import serialization

    from . import __version__

    folder = target.parent / (target.stem + "-files")
    key_pem = pki.declarant.key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                              serialization.NoEncryption())
    write_private(folder / "declarant.key.pem", key_pem.decode("ascii"))
    write_private(folder / "control-token", running.control_token + "\n")
    first = profiles[0]
    refuses = all(p.params.get("MC_required") == "mandatory" or bool(p.deployment.get("refuses_maker_as_checker"))
                  for p in profiles)

    def q(value) -> str:
        return '"' + str(value).replace("\\", "\\\\").replace('"', '\\"') + '"'

    def strings(values) -> str:
        return "[" + ", ".join(q(v) for v in values) + "]"

    lines = [
        "# Gateway statement written by `ecdi gateway --statement` (the project's mock customs gateway).",
        "# PRIVATE: it holds the test accounts' passwords; the key and control token are beside it.",
        "[gateway]",
        f"name = {q('ECDI mock customs gateway')}",
        f"vendor = {q('ECDI Conformance project')}",
        f"build = {q(f'mock_server {__version__}')}",
        f"endpoint = {q(running.endpoint_url)}",
        f"profiles = {strings(p.id for p in profiles)}",
        f"tls_anchor = {q(pki.tls_ca_pem)}",
        f"cgw_sign_anchor = {q(pki.sign_anchor_pem)}",
        "",
        "[parameters]",
        f"accepted_versions = {strings(p.version for p in profiles)}",
        f"mc_required = {'true' if refuses else 'false'}",
        f"central_office = {q(first.deployment['central_office'])}",
        f"offices = {strings(sorted(first.offices))}",
        f"s_max = {int(first.params['S_max'])}",
        f"otp_sender = {q(first.deployment['otp_sender'])}",
        f"time_scale = {float(running_scale)}",
    ]
    def pair(name: str, identity) -> tuple[Path, Path]:
        """The identity's chain and its key, written unencrypted into the statement's private folder."""
        key = identity.key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                         serialization.NoEncryption())
        write_private(folder / f"{name}.key.pem", key.decode("ascii"))
        chain = b"".join(c.public_bytes(serialization.Encoding.PEM) for c in [identity.cert, *identity.chain])
        write_private(folder / f"{name}.chain.pem", chain.decode("ascii"))
        return folder / f"{name}.chain.pem", folder / f"{name}.key.pem"

    for account in accounts:
        own = (identities or {}).get(account.user_id)
        cert, key = pair(f"account-{account.user_id}", own) if own else (pki.declarant.chain_pem,
                                                                          folder / "declarant.key.pem")
        lines += ["", "[[accounts]]", f"user = {q(account.user_id)}", f"password = {q(account.password)}",
                  f"tax_code = {q(account.tax_codes[0])}", f"certificate = {q(cert)}", f"key = {q(key)}"]
    for name, identity in (certificates or {}).items():
        cert, key = pair(f"matrix-{name}", identity)
        lines += ["", f"[certificates.{name}]", f"certificate = {q(cert)}", f"key = {q(key)}"]
    for facility in FACILITIES:
        lines += ["", f"[facilities.{facility}]", f"url = {q(running.control_url)}",
                  f"token_file = {q(folder / 'control-token')}"]
    write_private(target, "\n".join(lines) + "\n")
