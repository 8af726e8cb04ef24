"""ECDI profiles: one version of the standard as data (spec §2, §5, Annex C) and its schemas.

Everything that differs between profiles 1.0 and 1.1 (parameter values, code lists, the
requirement index, the message structure) lives under ``fixtures/profiles/<id>/``, so adding 1.1
means adding a directory, not code. The gateway, the reference DTS and the cases read the same
Profile; none of them carries its own copy of a number or a code list that the spec defines.

Schema validation runs on every message the gateway receives, so the common case stays cheap.
lxml (libxml2) gives the yes/no answer. Only a refused document pays for xmlschema, which is
loaded on first use and names the offending node precisely enough for ``Error/field``. That
explanation is bounded, since a refused document may be built to make it expensive: at most
``EXPLAIN_MAX_ISSUES`` issues for at most ``EXPLAIN_BUDGET_S`` seconds, and only for documents of
at most ``EXPLAIN_MAX_ELEMENTS`` elements; past a bound the first issue alone is reported, with its
path (libxml2 names the first failing node in document order).
"""

from __future__ import annotations

import copy
import hashlib
import itertools
import os
import re
import threading
import time
import tomllib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from functools import cache, cached_property
from pathlib import Path
from typing import Any

from lxml import etree

from .codec.envelope import content_child, ecdi_path, signature_elements
from .codec.namespaces import DEC, DS, ENV, PAY, q

FIXTURES = Path(os.environ.get("ECDI_FIXTURES") or Path(__file__).resolve().parents[1] / "fixtures")

XS = "http://www.w3.org/2001/XMLSchema"
_PREFIXES = {"e": ENV, "dec": DEC, "pay": PAY, "ds": DS}
_PARTIES = ("DTS", "CGW")
_LEVELS = ("MUST", "SHOULD", "MAY", "")

# §2: the parameters every profile states. Three are choices between the 1.0 and 1.1 behaviour.
_NUMERIC_PARAMS = (
    "T_send", "T_cgw", "N_retry", "T_backoff_base", "T_backoff_max", "T_poll_min", "T_poll_max_total",
    "T_skew", "T_age_max", "T_idem", "T_otp", "N_otp_attempts", "S_max", "N_goods_max", "N_taxlines_max",
)
_CHOICE_PARAMS = {
    "SHA1": ("accept-with-warning", "refuse"),
    "MC_required": ("optional", "mandatory"),
    "certification_id": ("absent", "mandatory"),
}
_PIXIT_TYPES = {"integer": int, "string": str, "boolean": bool, "array": list}

# Bounds of the explanation of a refused document (issue 13). The gateway answers with the first issue
# (RPL-05: one X0002); the others only go to the evidence.
EXPLAIN_MAX_ISSUES = 20
EXPLAIN_BUDGET_S = 1.0
# xmlschema validates a whole subtree before it yields its first error; above this many elements
# (a declaration at N_goods_max has some 450) libxml2's first failing node alone is reported.
EXPLAIN_MAX_ELEMENTS = 5000
_XSI = "http://www.w3.org/2001/XMLSchema-instance"


class ProfileError(Exception):
    """Profile data that cannot be used. It names the file and the key so the data can be fixed."""

    def __init__(self, file: Path | str, key: str, problem: str):
        super().__init__(f"{file}: {key}: {problem}" if key else f"{file}: {problem}")
        self.file, self.key, self.problem = str(file), key, problem


@dataclass(frozen=True)
class Requirement:
    id: str                  # "REL-05"
    binds: frozenset[str]    # {"DTS"}, {"CGW"}, {"DTS", "CGW"}
    level: str               # strongest keyword binding the DTS: MUST | SHOULD | MAY | "" (CGW only)
    summary: str             # Annex C
    since: str               # first profile in which it applies
    capability: str | None   # Table 13-1 capability a DTS must claim for it to apply; None = every DTS
    note: str = ""
    cgw_level: str = ""      # strongest keyword binding the CGW: MUST | SHOULD | MAY | "" (DTS only)

    def level_for(self, party: str) -> str:
        """The requirement's strength for ``party`` ("DTS" or "CGW"); "" when it does not bind it."""
        return self.level if party == "DTS" else self.cgw_level


@dataclass(frozen=True)
class ResultCode:
    code: str
    reply: str               # the Reply column of §5.3 as written
    meaning: str
    field: str               # what Error/field holds: "empty", "path", "empty or path", "" (00000)
    since: str
    functions: frozenset[str]   # reply functions that may carry the code
    description_vi: str      # Error/description written by the harness's gateway
    transient: bool = False  # reply not stored, sequence 0 (RPL-02)
    retryable: bool = False  # a 271 with it is a retryable outcome (REL-03)


@dataclass(frozen=True)
class SchemaIssue:
    path: str                # ECDI Error/field path, e.g. /Envelope/Body/Content/Declaration/GoodsItem[3]/hsCode
    reason: str              # human-readable, no schema dump


@dataclass(frozen=True)
class PermittedRequest:
    """A row of Table 4-2 for one type/function pair."""

    type: str
    function: str
    procedure_type: str      # Table 4-1
    content: str             # Clark name of the Content child
    reference: str           # §4.2 type of Subject/reference
    capability: str
    note: str = ""


@dataclass(frozen=True)
class ReplyFlow:
    """A row of Table 7-2 for one type/function pair."""

    synchronous: tuple[str, ...]
    later: tuple[str, ...]
    final: frozenset[str]
    submission: bool = True
    note: str = ""


@dataclass(frozen=True)
class Capability:
    """A row of Table 13-1."""

    name: str
    implements: str
    requires_any: tuple[str, ...]


@dataclass(frozen=True)
class PixitKey:
    """One ``pixit.*`` key of Table 13-2. Bounds are numbers, §2 parameter names or ``pixit.<key>``."""

    name: str
    type: str
    required: bool
    unit: str = ""
    min: int | str | None = None
    max: int | str | None = None
    allowed: tuple[str, ...] = ()
    min_items: int = 0

    def type_problem(self, value: Any) -> str | None:
        """Why ``value`` is not of this key's type, or None. Bounds are checked by the profile."""
        label = f"pixit.{self.name}"
        python_type = _PIXIT_TYPES[self.type]
        if not isinstance(value, python_type) or (python_type is int and isinstance(value, bool)):
            return f"{label} must be a TOML {self.type}, not {value!r}"
        if self.type == "string" and not value.strip():
            return f"{label} must not be empty"
        if self.type == "array":
            if len(value) < self.min_items:
                return f"{label} must hold at least {self.min_items} value(s)"
            wrong = [v for v in value if v not in self.allowed]
            if wrong:
                return f"{label} holds {wrong!r}; allowed: {', '.join(self.allowed)}"
            if len(set(value)) != len(value):
                return f"{label} repeats a value"
        return None


class _Toml:
    """A TOML table that remembers its file and key path, so bad data is reported where it is."""

    def __init__(self, file: Path, data: Mapping, where: str = ""):
        self.file, self.data, self.where = file, data, where

    def _key(self, key: str) -> str:
        return f"{self.where}.{key}" if self.where else key

    def error(self, key: str, problem: str) -> ProfileError:
        return ProfileError(self.file, self._key(key), problem)

    def get(self, key: str, kind: type | tuple[type, ...], default: Any = ...) -> Any:
        if key not in self.data:
            if default is ...:
                raise self.error(key, "missing")
            return default
        value = self.data[key]
        kinds = kind if isinstance(kind, tuple) else (kind,)
        if not isinstance(value, kinds) or (isinstance(value, bool) and bool not in kinds):
            raise self.error(key, f"expected {' or '.join(k.__name__ for k in kinds)}, found {value!r}")
        if isinstance(value, list) and not all(isinstance(v, str) for v in value):
            raise self.error(key, f"expected a list of strings, found {value!r}")
        return value

    def table(self, key: str) -> _Toml:
        return _Toml(self.file, self.get(key, dict), self._key(key))

    def tables(self) -> Iterator[tuple[str, _Toml]]:
        for key in self.data:
            yield key, self.table(key)

    def reject_unknown(self, known: set[str]) -> None:
        for key in self.data:
            if key not in known:
                raise self.error(key, f"unknown key (known: {', '.join(sorted(known))})")


def _read_toml(file: Path) -> _Toml:
    try:
        with file.open("rb") as fh:
            return _Toml(file, tomllib.load(fh))
    except OSError as exc:
        raise ProfileError(file, "", f"cannot be read: {exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ProfileError(file, "", f"is not valid TOML: {exc}") from None


class Profile:
    """One ECDI profile: parameters, deployment data, code lists, requirement index and schemas."""

    def __init__(self, directory: Path):
        self.directory = Path(directory)
        main = _read_toml(self.directory / "profile.toml")
        self.id: str = main.get("id", str)
        if self.id != self.directory.name:
            raise main.error("id", f"{self.id!r} differs from the directory name {self.directory.name!r}")
        self.version: str = main.get("version", str)
        self.params: dict[str, Any] = self._load_params(main.table("params"))
        self._scaled, self._unscaled = self._load_timers(main.table("timers"))
        self.capabilities = {
            name: Capability(name, t.get("implements", str), tuple(t.get("requires_any", list)))
            for name, t in main.table("capabilities").tables()
        }
        self._schemas = _Schemas(self.directory, main.table("schemas"))
        self.repeatable: frozenset[str] = self._schemas.repeatable

        codes = _read_toml(self.directory / "codes.toml")
        self.codes: dict[str, dict[str, str]] = self._load_code_lists(codes)
        self.offices: dict[str, str] = self._code_list(codes, "office")
        self.result_codes: dict[str, ResultCode] = self._load_result_codes(codes)
        self.permitted_requests = self._load_permitted_requests(codes)
        self.reply_flows = self._load_reply_flows(codes)
        self.deployment: dict[str, Any] = self._load_deployment(main.table("deployment"))
        self.pixit: dict[str, PixitKey] = self._load_pixit(main.table("pixit"))
        self.requirements = self._load_requirements(_read_toml(self.directory / "requirements.toml"))
        self._hash = _directory_hash(self.directory)

    def __repr__(self) -> str:
        return f"<Profile {self.id} at {self.directory}>"

    # --- loading -------------------------------------------------------------------------------
    @staticmethod
    def _load_params(t: _Toml) -> dict[str, Any]:
        t.reject_unknown(set(_NUMERIC_PARAMS) | set(_CHOICE_PARAMS))
        params: dict[str, Any] = {name: t.get(name, (int, float)) for name in _NUMERIC_PARAMS}
        for name, choices in _CHOICE_PARAMS.items():
            params[name] = t.get(name, str)
            if params[name] not in choices:
                raise t.error(name, f"{params[name]!r} is not one of {', '.join(choices)}")
        return params

    def _load_timers(self, t: _Toml) -> tuple[frozenset[str], frozenset[str]]:
        t.reject_unknown({"scaled", "unscaled"})
        scaled, unscaled = frozenset(t.get("scaled", list)), frozenset(t.get("unscaled", list))
        for key, names in (("scaled", scaled), ("unscaled", unscaled)):
            for name in names:
                if not isinstance(self.params.get(name), (int, float)):
                    raise t.error(key, f"{name!r} is not a numeric parameter of [params]")
        if scaled & unscaled:
            raise t.error("unscaled", f"{sorted(scaled & unscaled)} also listed as scaled")
        return scaled, unscaled

    @staticmethod
    def _load_code_lists(codes: _Toml) -> dict[str, dict[str, str]]:
        """Every top-level table except the structured ones; ``group`` entries also make sub-lists."""
        lists: dict[str, dict[str, str]] = {}
        for name, table in codes.data.items():
            if name in ("result_code", "permitted_request", "reply_flow"):
                continue
            entries = codes.table(name)
            lists[name] = {}
            for code, entry in entries.data.items():
                if isinstance(entry, str):
                    meaning, group = entry, None
                else:
                    detail = entries.table(code)
                    detail.reject_unknown({"meaning", "group"})
                    meaning, group = detail.get("meaning", str), detail.get("group", str, None)
                lists[name][code] = meaning
                if group:
                    lists.setdefault(f"{name}_{group}", {})[code] = meaning
        return lists

    def _code_list(self, codes: _Toml, name: str) -> dict[str, str]:
        if name not in self.codes:
            raise codes.error(name, "missing code list")
        return self.codes[name]

    def _load_result_codes(self, codes: _Toml) -> dict[str, ResultCode]:
        reply_functions = self._code_list(codes, "function_reply")
        t = codes.table("result_code")
        out = {}
        for code, entry in t.tables():
            entry.reject_unknown({"reply", "functions", "meaning", "field", "since", "description_vi",
                                  "transient", "retryable"})
            if not re.fullmatch(r"00000|[A-Z][0-9]{4}", code):
                raise t.error(code, "not a result code")
            functions = frozenset(entry.get("functions", list))
            if not functions or not functions <= reply_functions.keys():
                raise entry.error("functions", f"{sorted(functions)} are not all reply function codes")
            field = entry.get("field", str)
            if field not in ("", "empty", "path", "empty or path"):
                raise entry.error("field", f"{field!r} is not '', 'empty', 'path' or 'empty or path'")
            out[code] = ResultCode(code, entry.get("reply", str), entry.get("meaning", str), field,
                                   entry.get("since", str), functions, entry.get("description_vi", str),
                                   entry.get("transient", bool, False), entry.get("retryable", bool, False))
        return out

    def _rows(self, codes: _Toml, name: str) -> Iterator[tuple[_Toml, list[tuple[str, str]]]]:
        """Rows of a table array keyed by ``requests = ["929/8", ...]``, each pair checked."""
        rows = codes.data.get(name)
        if not rows or not isinstance(rows, list) or not all(isinstance(r, dict) for r in rows):
            raise codes.error(name, "expected a non-empty array of tables [[...]]")
        types, functions = self._code_list(codes, "message_type"), self._code_list(codes, "function_request")
        for i, data in enumerate(rows):
            row = _Toml(codes.file, data, f"{name}[{i}]")
            pairs = []
            for request in row.get("requests", list):
                type_, _, function = request.partition("/")
                if type_ not in types or function not in functions:
                    raise row.error("requests", f"{request!r} is not <message type>/<request function>")
                pairs.append((type_, function))
            yield row, pairs

    def _load_permitted_requests(self, codes: _Toml) -> dict[tuple[str, str], PermittedRequest]:
        out: dict[tuple[str, str], PermittedRequest] = {}
        for row, pairs in self._rows(codes, "permitted_request"):
            row.reject_unknown({"requests", "procedure_type", "content", "reference", "capability", "note"})
            prefix, _, local = row.get("content", str).partition(":")
            content = q(_PREFIXES.get(prefix, prefix), local)
            if content not in self._schemas.content:
                raise row.error("content", f"{prefix}:{local} is not a global element of the content schemas")
            reference = row.get("reference", str)
            if reference not in self._schemas.simple_types:
                raise row.error("reference", f"{reference!r} is not a simple type of the profile's schemas")
            capability = row.get("capability", str)
            if capability not in self.capabilities:
                raise row.error("capability", f"{capability!r} is not a capability of [capabilities]")
            procedure_type = row.get("procedure_type", str)
            if procedure_type not in self._code_list(codes, "procedure_type"):
                raise row.error("procedure_type", f"{procedure_type!r} is not a procedure type")
            for pair in pairs:
                if pair in out:
                    raise row.error("requests", f"{'/'.join(pair)} appears in two rows")
                out[pair] = PermittedRequest(*pair, procedure_type, content, reference, capability,
                                             row.get("note", str, ""))
        return out

    def _load_reply_flows(self, codes: _Toml) -> dict[tuple[str, str], ReplyFlow]:
        replies = self._code_list(codes, "function_reply")
        out: dict[tuple[str, str], ReplyFlow] = {}
        for row, pairs in self._rows(codes, "reply_flow"):
            row.reject_unknown({"requests", "synchronous", "later", "final", "submission", "note"})
            lists = {key: row.get(key, list) for key in ("synchronous", "later", "final")}
            for key, functions in lists.items():
                if not set(functions) <= replies.keys():
                    raise row.error(key, f"{functions} are not all reply function codes")
            flow = ReplyFlow(tuple(lists["synchronous"]), tuple(lists["later"]), frozenset(lists["final"]),
                             row.get("submission", bool, True), row.get("note", str, ""))
            for pair in pairs:
                if pair in out or pair not in self.permitted_requests:
                    raise row.error("requests", f"{'/'.join(pair)} is repeated or not a permitted request")
                out[pair] = flow
        missing = self.permitted_requests.keys() - out.keys()
        if missing:
            raise codes.error("reply_flow", f"no flow for {sorted('/'.join(p) for p in missing)}")
        return out

    def _load_deployment(self, t: _Toml) -> dict[str, Any]:
        deployment = dict(t.data)
        office = t.get("central_office", str)
        if office not in self.offices:
            raise t.error("central_office", f"{office!r} is not in the office list of codes.toml")
        if self.version not in t.get("accepted_versions", list):
            raise t.error("accepted_versions", f"does not accept the profile's own version {self.version}")
        for key in ("otp_sender", "cgw_path"):  # present, and strings
            t.get(key, str)
        return deployment

    def _load_pixit(self, t: _Toml) -> dict[str, PixitKey]:
        out = {}
        for name, entry in t.tables():
            entry.reject_unknown({"type", "required", "unit", "min", "max", "allowed", "min_items"})
            kind = entry.get("type", str)
            if kind not in _PIXIT_TYPES:
                raise entry.error("type", f"{kind!r} is not one of {', '.join(_PIXIT_TYPES)}")
            out[name] = PixitKey(name, kind, entry.get("required", bool), entry.get("unit", str, ""),
                                 entry.get("min", (int, str), None), entry.get("max", (int, str), None),
                                 tuple(entry.get("allowed", list, [])), entry.get("min_items", int, 0))
        named_bounds = set(_NUMERIC_PARAMS) | {f"pixit.{k.name}" for k in out.values() if k.type == "integer"}
        for key in out.values():
            for side in ("min", "max"):
                bound = getattr(key, side)
                if isinstance(bound, str) and bound not in named_bounds:
                    raise t.table(key.name).error(side, f"{bound!r} is neither a [params] number nor an integer pixit key")
        return out

    def _load_requirements(self, t: _Toml) -> dict[str, Requirement]:
        out = {}
        for rid, entry in t.tables():
            entry.reject_unknown({"binds", "level", "cgw_level", "summary", "since", "capability", "note"})
            if not re.fullmatch(r"[A-Z]{3}-[0-9]{2}", rid):
                raise t.error(rid, "not a requirement ID")
            binds = frozenset(entry.get("binds", list))
            if not binds or not binds <= set(_PARTIES):
                raise entry.error("binds", f"{sorted(binds)} is not a non-empty subset of {_PARTIES}")
            level = entry.get("level", str)
            if level not in _LEVELS or (level == "") != ("DTS" not in binds):
                raise entry.error("level", f"{level!r}: MUST, SHOULD or MAY when it binds the DTS, else ''")
            cgw_level = entry.get("cgw_level", str, "")
            if cgw_level not in _LEVELS or (cgw_level == "") != ("CGW" not in binds):
                raise entry.error("cgw_level", f"{cgw_level!r}: MUST, SHOULD or MAY when it binds the CGW, else absent")
            capability = entry.get("capability", str, None)
            if capability is not None and capability not in self.capabilities:
                raise entry.error("capability", f"{capability!r} is not a capability of profile.toml")
            out[rid] = Requirement(rid, binds, level, entry.get("summary", str), entry.get("since", str),
                                   capability, entry.get("note", str, ""), cgw_level)
        return out

    # --- timers and PIXIT (§2.1, Table 13-2) ---------------------------------------------------
    def timer(self, name: str, time_scale: float = 1.0) -> float:
        """The timer in seconds; multiplied by ``time_scale`` only for the timers §2.1 scales."""
        _check_scale(time_scale)
        if name in self._scaled:
            return self.params[name] * time_scale
        if name in self._unscaled:
            return float(self.params[name])
        timers = ", ".join(sorted(self._scaled | self._unscaled))
        raise ValueError(f"{name!r} is not a timer of profile {self.id} (timers: {timers})")

    @staticmethod
    def tolerance(seconds: float, time_scale: float = 1.0) -> float:
        """CAP-06: ±1 s or 10 %, whichever is larger; 1 s becomes max(s × 1 s, 50 ms) when scaled. A
        property of the standard, so it lives with the profile's timers, not in each caller."""
        _check_scale(time_scale)
        absolute = 1.0 if time_scale >= 1 else max(time_scale * 1.0, 0.05)
        return max(absolute, 0.1 * seconds)

    def pixit_bounds(self, pixit: Mapping[str, Any] | None = None,
                     time_scale: float = 1.0) -> dict[str, tuple[float | None, float | None]]:
        """Floor and ceiling of each integer PIXIT key (Table 13-2).

        Timing bounds (unit "s") are multiplied by ``time_scale`` (§2.1); counts are not. A bound
        naming another PIXIT key takes that key's value from ``pixit`` (which the DTS applies scaled
        too); it is None when ``pixit`` does not hold a usable integer there.
        """
        _check_scale(time_scale)
        pixit = pixit or {}

        def resolve(bound, scale):
            if isinstance(bound, str) and bound.startswith("pixit."):
                value = pixit.get(bound.removeprefix("pixit."))
                ok = isinstance(value, int) and not isinstance(value, bool)
                return value * scale if ok else None
            if isinstance(bound, str):
                return self.params[bound] * scale
            return None if bound is None else bound * scale

        out = {}
        for key in self.pixit.values():
            if key.type == "integer":
                scale = time_scale if key.unit == "s" else 1
                out[key.name] = (resolve(key.min, scale), resolve(key.max, scale))
        return out

    def check_statement_pixit(self, pixit: Mapping[str, Any]) -> list[str]:
        """Problems of a capability statement's ``[pixit]`` table (CAP-05, Table 13-2), one per line.

        Checks unknown and missing keys, TOML types, allowed values, and the bounds of the integer
        keys. Statements give unscaled values, so the bounds are the unscaled ones.
        """
        if not isinstance(pixit, Mapping):
            return [f"pixit must be a table, not {pixit!r}"]
        problems = [f"pixit.{name}: unknown key (Table 13-2)" for name in pixit if name not in self.pixit]
        bounds = self.pixit_bounds(pixit)
        for key in self.pixit.values():
            if key.name not in pixit:
                if key.required:
                    problems.append(f"pixit.{key.name}: missing (required by Table 13-2)")
                continue
            value = pixit[key.name]
            problem = key.type_problem(value)
            if problem:
                problems.append(problem)
            elif key.name in bounds:
                low, high = bounds[key.name]
                if (low is not None and value < low) or (high is not None and value > high):
                    problems.append(f"pixit.{key.name} = {value} is outside {_bound_text(key.min, low)}"
                                    f" … {_bound_text(key.max, high)} (Table 13-2)")
        return problems

    def wsdl(self, endpoint: str) -> bytes:
        """Annex D (``wsdl.xml``) with ``{cgw_endpoint}`` replaced by ``endpoint``: what TRN-02 has a CGW serve."""
        return (self.directory / "wsdl.xml").read_text(encoding="utf-8").replace("{cgw_endpoint}", endpoint).encode()

    # --- requirements and codes ----------------------------------------------------------------
    def requirements_binding(self, party: str) -> list[Requirement]:
        """The requirements that bind ``party`` ("DTS" or "CGW"), in Annex C order."""
        if party not in _PARTIES:
            raise ValueError(f"party must be one of {_PARTIES}, not {party!r}")
        return [r for r in self.requirements.values() if party in r.binds]

    def rejection_codes(self) -> list[str]:
        """Codes whose 271 ends the send operation (RPL-12): the 271 codes less the retryable ones."""
        return [c.code for c in self.result_codes.values() if "271" in c.functions and not c.retryable]

    # --- schemas -------------------------------------------------------------------------------
    def validate_envelope(self, root: etree._Element, kind: str) -> list[SchemaIssue]:
        """Issues of an envelope against the request or reply schema, first offending node first.

        ``ds:Signature`` elements are ignored wherever they stand: placement and content of the
        signature are the signature check's business (G0001, Table 7-3 steps 7 and 9). For a request,
        the Content child is left to ``validate_content`` (step 13). For a reply, the ``e:Result`` is
        part of the envelope (Tables 4-3 and 7-1) and is validated here.
        """
        if kind not in ("request", "reply"):
            raise ValueError(f"kind must be 'request' or 'reply', not {kind!r}")
        schema = self._schemas.request if kind == "request" else self._schemas.reply
        root, skip = _signature_free(root)
        if kind == "request":
            child = content_child(root)
            skip += (child,) if child is not None else ()
        return schema.issues(root, skip, self.repeatable)

    def validate_content(self, root: etree._Element) -> list[SchemaIssue]:
        """Issues of a content document, with the schema chosen by its QName (step 13).

        ``root`` is an envelope, whose Content child is checked, or a content element on its own
        (paths then start at that element).
        """
        child = root
        if root.tag == q(ENV, "Envelope"):
            child = content_child(root)
            if child is None:
                content = root.find(f"{q(ENV, 'Body')}/{q(ENV, 'Content')}")
                where = ecdi_path(content if content is not None else root, self.repeatable)
                return [SchemaIssue(where, "Body/Content must hold exactly one element")]
        schema = self._schemas.content.get(child.tag)
        if schema is None:
            known = ", ".join(sorted(_pretty(tag) for tag in self._schemas.content))
            return [SchemaIssue(ecdi_path(child, self.repeatable),
                                f"{_pretty(child.tag)} is not a content document (expected one of {known})")]
        return schema.issues(child, (), self.repeatable)

    def content_hash(self) -> str:
        """SHA-256 (hex) over the profile directory as loaded: names and contents of every file."""
        return self._hash


# --- schema validation -----------------------------------------------------------------------
class _Schema:
    """One XSD: lxml decides, xmlschema (loaded on the first refusal) explains."""

    def __init__(self, path: Path, tree: etree._ElementTree):
        self.path = path
        self._lock = threading.Lock()   # one validator, one error log: the gateway validates in worker threads
        try:
            self._fast = etree.XMLSchema(tree)
        except etree.XMLSchemaParseError as exc:
            raise ProfileError(path, "", f"is not a usable XML Schema: {exc}") from None

    @cached_property
    def _diagnostic(self):
        import xmlschema  # 0.1 s to import: paid by the first refused document, not by every process

        return xmlschema.XMLSchema10(str(self.path), allow="local")

    def issues(self, element: etree._Element, skip: tuple, repeatable: frozenset[str]) -> list[SchemaIssue]:
        """Schema and attribute issues of ``element``'s subtree (outside ``skip``), in document order.

        Attributes are found by a scan rather than by the schema: XSD validators accept ``xsi:*``
        attributes unasked, but ENV-01 allows none at all. xmlschema then explains a copy without
        them: its error messages quote the element with every attribute, which made the cost grow
        with the square of their number (issue 13). Both are bounded (``EXPLAIN_MAX_ISSUES``,
        ``EXPLAIN_BUDGET_S``, ``EXPLAIN_MAX_ELEMENTS``): past a bound, only the first issue is returned.
        """
        attributes = list(itertools.islice(
            ((el, name) for el in _elements(element, skip) for name in el.attrib), EXPLAIN_MAX_ISSUES + 1))
        complete = len(attributes) <= EXPLAIN_MAX_ISSUES
        del attributes[EXPLAIN_MAX_ISSUES:]
        valid, log = self._validate(element)
        if valid and not attributes:
            return []
        order = {el: i for i, el in enumerate(element.iter())}
        found: list[tuple[tuple[int, int], SchemaIssue]] = [
            ((order[el], 1), SchemaIssue(f"{ecdi_path(el, repeatable)}/@{etree.QName(name).localname}",
                                         "attributes are not allowed (ENV-01)"))
            for el, name in attributes
        ]
        if not valid:
            target = _attribute_free_twin(element) if attributes else element
            target_order = order if target is element else {el: i for i, el in enumerate(target.iter())}
            if len(order) > EXPLAIN_MAX_ELEMENTS:   # xmlschema reads a whole subtree before its first error
                diagnosed, explained_all = self._first_failure(target, target_order, repeatable), False
            else:
                diagnosed, explained_all = self._explained(target, target_order, repeatable)
            complete = complete and explained_all
            if not diagnosed and not found:  # no explanation: report lxml's own words at the element
                message = log[-1].message if log else "invalid"
                diagnosed = [((0, 0), SchemaIssue(ecdi_path(element, repeatable), _pretty(message)))]
            found += diagnosed
        found.sort(key=lambda item: item[0])
        issues: dict[str, SchemaIssue] = {}  # one per node: a value failing two derivation steps is one finding
        for _, issue in found:
            issues.setdefault(issue.path, issue)
        explained = list(issues.values())
        return explained if complete else explained[:1]

    def _explained(self, element: etree._Element, order: dict, repeatable) -> tuple[list, bool]:
        """xmlschema's issues, at most ``EXPLAIN_MAX_ISSUES`` and for ``EXPLAIN_BUDGET_S``; whether all were read."""
        deadline = time.monotonic() + EXPLAIN_BUDGET_S
        diagnosed = []
        for error in self._errors(element):
            key, path, reason = _explain(error, element, order, repeatable)
            if path is not None:
                diagnosed.append((key, SchemaIssue(path, reason)))
            if len(diagnosed) >= EXPLAIN_MAX_ISSUES or time.monotonic() > deadline:
                # cut short: xmlschema reports a parent after its children, libxml2 knows the first node
                return diagnosed + self._first_failure(element, order, repeatable), False
        return diagnosed, True

    def _first_failure(self, element: etree._Element, order: dict, repeatable) -> list:
        """libxml2's first error (in document order, unlike xmlschema's), as a keyed issue."""
        log = self._validate(element)[1]
        entry = log[0] if log else None
        path = entry.path if entry is not None else ""
        nodes = element.xpath("." + path[2:]) if path.startswith("/*") else []
        if not nodes or nodes[0] not in order:
            return []
        return [((order[nodes[0]], 0), SchemaIssue(ecdi_path(nodes[0], repeatable), _pretty(entry.message)))]

    def _validate(self, element: etree._Element) -> tuple[bool, list]:
        """lxml's verdict and its error log entries."""
        with self._lock:
            return self._fast.validate(element), list(self._fast.error_log)

    def _errors(self, element: etree._Element) -> Iterator:
        """xmlschema's errors, as far as it gets: it raises on some inputs lxml merely refuses (an
        ``xsi:type`` naming no type). The verdict is lxml's already, so a failure here may only cost
        the explanation, never the gateway's answer."""
        try:
            yield from self._diagnostic.iter_errors(element)
        except Exception:  # noqa: BLE001 - see docstring
            return


def _explain(error, element: etree._Element, order: dict,
             repeatable: frozenset[str]) -> tuple[tuple[int, int], str | None, str]:
    """(document-order key, ECDI path, reason) of an xmlschema error; path None to drop it.

    Errors about attributes are dropped: the attribute scan reports those. The key orders issues by
    where their node stands: an element's start, or the end of its content (a missing child).
    """
    from xmlschema import XMLSchemaChildrenValidationError
    from xmlschema.validators import XsdAttribute, XsdAttributeGroup, XsdGroup, XsdPatternFacets

    elem = error.elem if error.elem is not None else element
    if isinstance(error.validator, (XsdAttribute, XsdAttributeGroup)):
        return (0, 0), None, ""
    reason = _pretty(error.reason or "invalid")
    if isinstance(error, XMLSchemaChildrenValidationError):
        if error.invalid_child is not None:
            child = error.invalid_child
            return (order[child], 0), ecdi_path(child, repeatable), reason
        return (order[_last_descendant(elem)], 3), ecdi_path(elem, repeatable), reason
    if isinstance(error.validator, XsdGroup):  # character data where only elements may stand
        for after, step in _text_nodes(elem):
            if step:
                return (order[after], 2), f"{ecdi_path(elem, repeatable)}/{step}", reason
    type_name = getattr(getattr(error.validator, "parent", None), "local_name", None)
    if type_name and isinstance(error.validator, XsdPatternFacets):
        reason = f"value {_short(error.obj)} is not a valid {type_name} (lexical form)"
    elif type_name:
        reason = f"{reason} ({type_name})"
    return (order[elem], 0), ecdi_path(elem, repeatable), reason


def _attribute_free_twin(element: etree._Element) -> etree._Element:
    """``element`` in a copy of its document without attributes other than ``xsi:*`` (at most four
    per element; they change what the schema accepts). The whole document is copied so that paths
    and document order in the copy are the original's; libxml2 does the work (linear time)."""
    root = element.getroottree().getroot()
    twin = copy.deepcopy(root)
    etree.strip_attributes(twin, "{}*")
    namespaces = {etree.QName(a.attrname).namespace for a in twin.xpath("//@*")} - {_XSI}
    if namespaces:
        etree.strip_attributes(twin, *(f"{{{ns}}}*" for ns in namespaces))
    index = next(i for i, el in enumerate(root.iter()) if el is element)
    return next(itertools.islice(twin.iter(), index, None))


def _text_nodes(elem: etree._Element) -> Iterator[tuple[etree._Element, str | None]]:
    """Each child text node as (node it follows, ``text()[n]`` if it holds non-white-space, else None).

    XPath counts every text node, white-space-only ones included; comments and PIs split them.
    """
    n = 0
    for after, text in [(elem, elem.text)] + [(_last_descendant(c), c.tail) for c in elem]:
        if text:
            n += 1
            yield after, (f"text()[{n}]" if text.strip(" \t\r\n") else None)


def _last_descendant(elem: etree._Element) -> etree._Element:
    last = elem
    for last in elem.iter():
        pass
    return last


def _elements(root: etree._Element, skip: tuple) -> Iterator[etree._Element]:
    """Elements of ``root``'s subtree in document order, without the subtrees of ``skip``."""
    stack = [root]
    while stack:
        el = stack.pop()
        if el in skip:
            continue
        yield el
        stack.extend(reversed([c for c in el if isinstance(c.tag, str)]))


def _signature_free(root: etree._Element) -> tuple[etree._Element, tuple]:
    """The envelope without misplaced ``ds:Signature`` elements, and the signature(s) left to skip.

    A single signature as the root's last element child matches the schema's optional slot and is
    just skipped. Any other arrangement is validated on a copy with every signature removed; the
    element paths stay the same because no ECDI element is called ``Signature``.
    """
    signatures = signature_elements(root)
    elements = [c for c in root if isinstance(c.tag, str)]
    if not signatures or (len(signatures) == 1 and elements and signatures[0] is elements[-1]):
        return root, tuple(signatures)
    stripped = copy.deepcopy(root)
    for signature in signature_elements(stripped):
        parent = signature.getparent()
        if parent is None:
            continue
        if signature.tail:  # keep the text that followed, it may be a finding of its own
            previous = signature.getprevious()
            if previous is not None:
                previous.tail = (previous.tail or "") + signature.tail
            else:
                parent.text = (parent.text or "") + signature.tail
        parent.remove(signature)
    return stripped, ()


class _Schemas:
    """The profile's schemas, and what is read from them: repeatable names, simple types, content roots."""

    def __init__(self, directory: Path, t: _Toml):
        t.reject_unknown({"request", "reply", "content"})
        documents: dict[Path, etree._ElementTree] = {}
        self.request = _load_schema(directory / t.get("request", str), t, "request", documents)
        self.reply = _load_schema(directory / t.get("reply", str), t, "reply", documents)
        self.content: dict[str, _Schema] = {}
        for i, name in enumerate(t.get("content", list)):
            schema = _load_schema(directory / name, t, f"content[{i}]", documents)
            root = documents[schema.path].getroot()
            namespace = root.get("targetNamespace")
            for decl in root.findall(f"{{{XS}}}element"):
                self.content[q(namespace, decl.get("name"))] = schema
        self.repeatable = frozenset(
            decl.get("name") or decl.get("ref", "").rpartition(":")[2]
            for tree in documents.values() for decl in tree.iter(f"{{{XS}}}element") if _may_repeat(decl)
        )
        self.simple_types = frozenset(
            st.get("name") for tree in documents.values() for st in tree.iter(f"{{{XS}}}simpleType") if st.get("name")
        )


def _load_schema(path: Path, t: _Toml, key: str, documents: dict[Path, etree._ElementTree]) -> _Schema:
    """The schema at ``path``; it and every document it includes or imports go into ``documents``."""
    path = path.resolve()
    pending = [path]
    while pending:
        file = pending.pop()
        if file in documents:
            continue
        if not file.is_file():
            raise t.error(key, f"schema document {file} does not exist")
        try:
            documents[file] = etree.parse(str(file), etree.XMLParser(no_network=True, resolve_entities=False))
        except etree.XMLSyntaxError as exc:
            raise ProfileError(file, "", f"is not well-formed: {exc}") from None
        for ref in documents[file].iter(f"{{{XS}}}include", f"{{{XS}}}import"):
            if ref.get("schemaLocation"):
                pending.append((file.parent / ref.get("schemaLocation")).resolve())
    return _Schema(path, documents[path])


def _may_repeat(decl: etree._Element) -> bool:
    """An element declaration whose element may occur more than once where it is declared."""
    node = decl
    while node is not None and node.tag not in (f"{{{XS}}}complexType", f"{{{XS}}}schema"):
        if node.get("maxOccurs", "1") not in ("0", "1"):
            return True
        node = node.getparent()
    return False


def _check_scale(time_scale: float) -> None:
    if not 0 < time_scale <= 1:
        raise ValueError(f"time_scale {time_scale} is outside 0 < s <= 1 (§2.1)")


def _pretty(text: str) -> str:
    """Clark names in a message as the spec writes them (``dec:Declaration``)."""
    for prefix, namespace in _PREFIXES.items():
        text = text.replace(f"{{{namespace}}}", f"{prefix}:")
    return text


def _short(value: Any, limit: int = 40) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _bound_text(bound: int | str | None, value: float | None) -> str:
    return f"{value:g}" if not isinstance(bound, str) else f"{bound} = {value:g}"


def _directory_hash(directory: Path) -> str:
    digest = hashlib.sha256()
    for file in sorted(p for p in directory.rglob("*") if p.is_file()):
        data = file.read_bytes()
        digest.update(f"{file.relative_to(directory).as_posix()}\n{len(data)}\n".encode())
        digest.update(data)
    return digest.hexdigest()


# --- the profile collection ------------------------------------------------------------------
def list_profiles() -> list[str]:
    """Ids of the profiles under ``FIXTURES/profiles``, sorted."""
    folder = FIXTURES / "profiles"
    return sorted(p.name for p in folder.iterdir() if (p / "profile.toml").is_file()) if folder.is_dir() else []


@cache
def load_profile(profile_id: str) -> Profile:
    """The profile ``profile_id``, loaded once per process and shared."""
    directory = FIXTURES / "profiles" / profile_id
    if not (directory / "profile.toml").is_file():
        raise ProfileError(f"profile {profile_id!r}", "",   # the user's word, not the harness's internal path
                           f"no such profile (available: {', '.join(list_profiles()) or 'none'})")
    return Profile(directory)
