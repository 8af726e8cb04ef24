"""The vendor's capability statement ``ecdi-conformance.toml``, read exactly per CAP-05 / Table 13-2.

The statement is the vendor's promise (what it implements, which timings it applies): the harness
decides NOT-APPLICABLE cases and every PIXIT timing from it, so a statement that is only almost
right must stop the session with a message naming the file and the key, not run with a guess.
Capability names and preconditions (Table 13-1) and the ``[pixit]`` rules come from the profile
data, so this module holds no copy of them.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

from .profile import Profile, ProfileError, list_profiles, load_profile

FILE_NAME = "ecdi-conformance.toml"                     # CAP-05
TAX_CODE = re.compile(r"[0-9]{10}(-[0-9]{3})?")         # §4.2 TaxCode
CERTIFICATION_ID = re.compile(r"ECDI-[0-9]{4}-[0-9]{5}")  # §4.2 CertificationId
UNCERTIFIED = "ECDI-0000-00000"
# Text(n) of the SendApplication field each key must equal (ENV-08, Table 4-1).
_TEXT_LIMITS = {"vendor": 255, "product": 50, "version": 20}
_TOP_KEYS = ("statement_version", "vendor", "vendor_tax_code", "product", "version", "profile",
             "capabilities", "certification_id", "pixit")
_OPTIONAL = {"certification_id"}


class StatementError(Exception):
    """The statement is unreadable or breaks Table 13-2; ``problems`` lists every breach."""

    def __init__(self, file: Path, problems: list[str]):
        self.file, self.problems = Path(file), problems
        super().__init__(f"{file}: " + "; ".join(problems))


def load_statement(file: Path | str) -> dict:
    """The statement as a dict, after every check of Table 13-2; raises StatementError otherwise."""
    file = Path(file)
    if file.name != FILE_NAME:
        raise StatementError(file, [f"a capability statement must be named {FILE_NAME} (CAP-05)"])
    try:
        data = tomllib.loads(file.read_text(encoding="utf-8"))
    except OSError as exc:
        raise StatementError(file, [f"cannot be read: {exc.strerror or exc}"]) from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise StatementError(file, [f"is not valid TOML 1.0: {exc}"]) from None
    problems = statement_problems(data)
    if problems:
        raise StatementError(file, problems)
    return data


def statement_problems(data: dict) -> list[str]:
    """Every breach of Table 13-2 in ``data``, each naming its key; empty when the statement is valid."""
    problems = [f"{key}: unknown key (Table 13-2)" for key in data if key not in _TOP_KEYS]
    problems += [f"{key}: missing (required by Table 13-2)"
                 for key in _TOP_KEYS if key not in data and key not in _OPTIONAL]
    problems += _scalar_problems(data)
    profiles, profile_problems = _claimed_profiles(data.get("profile"))
    problems += profile_problems
    if profiles:
        problems += _capability_problems(data.get("capabilities"), profiles[0])
        if "pixit" in data:
            problems += _pixit_problems(data["pixit"], profiles)
    return problems


def _pixit_problems(pixit, profiles: list[Profile]) -> list[str]:
    """A value must fit every claimed profile's bounds; a problem of one profile only says which."""
    each = {p.version: p.check_statement_pixit(pixit) for p in profiles}
    out = []
    for version, problems in each.items():
        for problem in problems:
            everywhere = all(problem in other for other in each.values())
            text = problem if everywhere else f"{problem} (profile {version})"
            if text not in out:
                out.append(text)
    return out


def _scalar_problems(data: dict) -> list[str]:
    out = []
    for key in ("statement_version", "vendor", "vendor_tax_code", "product", "version", "certification_id"):
        value = data.get(key)
        if key in data and not isinstance(value, str):
            out.append(f"{key}: must be a TOML string, not {value!r}")
    if isinstance(data.get("statement_version"), str) and data["statement_version"] != "1":
        out.append(f"statement_version: must be \"1\", not {data['statement_version']!r}")
    for key, limit in _TEXT_LIMITS.items():
        value = data.get(key)
        if isinstance(value, str) and not (value.strip() and len(value) <= limit):
            out.append(f"{key}: must be 1 to {limit} characters (Text({limit}) of SendApplication, ENV-08)")
    tax_code = data.get("vendor_tax_code")
    if isinstance(tax_code, str) and not TAX_CODE.fullmatch(tax_code):
        out.append(f"vendor_tax_code: {tax_code!r} is not a TaxCode ([0-9]{{10}}(-[0-9]{{3}})?, §4.2)")
    cert = data.get("certification_id")
    if isinstance(cert, str) and not CERTIFICATION_ID.fullmatch(cert):
        out.append(f"certification_id: {cert!r} is not a CertificationId (ECDI-[0-9]{{4}}-[0-9]{{5}}, §4.2)")
    elif cert == UNCERTIFIED:
        out.append(f"certification_id: {UNCERTIFIED} is reserved for a DTS under test; omit the key "
                   "until the product is certified (Table 13-2)")
    return out


def _string_array(key: str, value) -> tuple[list[str], list[str]]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        return [], [f"{key}: must be a TOML array of strings, not {value!r}"]
    if not value:
        return [], [f"{key}: must not be empty"]
    if len(set(value)) != len(value):
        return [], [f"{key}: repeats a value"]
    return value, []


def _claimed_profiles(value) -> tuple[list[Profile], list[str]]:
    """The profiles of the claimed versions that this harness holds (the first one reads Table 13-1)."""
    if value is None:
        return [], []
    versions, problems = _string_array("profile", value)
    known = {}
    for profile_id in list_profiles():
        try:
            profile = load_profile(profile_id)
        except ProfileError:
            continue
        known.setdefault(profile.version, profile)
    wrong = [v for v in versions if v not in ("1.0", "1.1")]
    if wrong:
        problems.append(f"profile: {wrong!r} are not profiles; allowed: \"1.0\", \"1.1\"")
    profiles = [known[v] for v in versions if v in known]
    if versions and not wrong and not profiles:
        problems.append(f"profile: this harness holds none of the claimed profiles {versions}")
    return profiles, problems


def _capability_problems(value, profile: Profile) -> list[str]:
    if value is None:
        return []
    claimed, problems = _string_array("capabilities", value)
    table = profile.capabilities
    unknown = [c for c in claimed if c not in table]
    if unknown:
        problems.append(f"capabilities: {unknown!r} are not capabilities of Table 13-1 "
                        f"({', '.join(table)})")
    for name in claimed:
        needs = table[name].requires_any if name in table else ()
        if needs and not set(needs) & set(claimed):
            problems.append(f"capabilities: {name!r} requires one of {', '.join(needs)} (Table 13-1)")
    if claimed and not {"import", "export", "payment"} & set(claimed):
        problems.append("capabilities: must claim at least one of import, export, payment (CAP-01)")
    return problems
