"""Regression across runs: verdict changes requirement by requirement, and the spec change behind each.

Runs are compared on what they certify — requirements — not on case names, because a new profile
can add, withdraw or strengthen requirements while the cases stay the same. For each requirement a
run's status is the worst verdict of the findings recorded against it (``results.requirement_status``:
a case failing PAY-08 does not fail PAY-01), "not tested" when no case bears on it, or "not in
profile" when its profile does not hold it; its level (MUST/SHOULD) comes from that run's profile.
A change is explained by the Annex A item naming the requirement (``fixtures/profiles/changes.toml``)
when the runs' profiles differ, and by the product's identity when that differs.
"""

from __future__ import annotations

import json
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from ..profile import FIXTURES, ProfileError, load_profile
from .outputs import RunNotFinished, atomic_write, check_finished
from .certificate import overall_text
from .results import requirement_status
from .templating import environment

CHANGES_FILE = FIXTURES / "profiles" / "changes.toml"
NOT_TESTED = "not tested"
NOT_IN_PROFILE = "not in profile"


class DiffError(Exception):
    """A run folder that cannot be compared; the message names it and the cause."""


@dataclass
class Run:
    path: Path
    results: dict
    profile: object | None

    @property
    def party(self) -> str:
        """The party under test (results before issue 16 are all DTS runs)."""
        return self.results.get("party", "DTS")

    @property
    def label(self) -> str:
        s = self.results["sut"]
        mutant = f" [{s['mutant']}]" if s.get("mutant") else ""
        party = f"{self.party} " if self.party != "DTS" else ""
        return f"{party}{s.get('product')} {s.get('version')}{mutant} on {self.results['profile']['id']}"

    @property
    def overall(self) -> str:
        return overall_text(self.results)

    @property
    def version(self) -> str:
        return self.results["profile"]["version"]


@dataclass
class Row:
    key: str
    cells: list[str]
    levels: list[str] = field(default_factory=list)
    causes: list[str] = field(default_factory=list)

    @property
    def changed(self) -> bool:
        return len(set(self.cells)) > 1 or len(set(self.levels)) > 1


@dataclass
class Comparison:
    runs: list[Run]
    requirements: list[Row]
    params: list[Row]


def load_run(path: Path) -> Run:
    path = Path(path)
    file = path / "results.json" if path.is_dir() else path
    try:
        check_finished(file.parent)
    except RunNotFinished as exc:
        raise DiffError(str(exc)) from None
    try:
        results = json.loads(file.read_text(encoding="utf-8"))
        if isinstance(results, dict) and results.get("status"):      # the placeholder of a run that never ended
            raise DiffError(f"{file}: the run did not finish ({results.get('reason')})")
        results["profile"]["id"], results["sut"], results["cases"]  # noqa: B018 - the fields a diff needs
    except FileNotFoundError:
        raise DiffError(f"{path}: no results.json (not a run's output folder)") from None
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise DiffError(f"{file}: unreadable results ({exc})") from None
    except (KeyError, TypeError):
        raise DiffError(f"{file}: not the results of a completed run (no profile, SUT or cases)") from None
    try:
        profile = load_profile(results["profile"]["id"])
    except ProfileError:
        profile = None
    return Run(path, results, profile)


def annex_changes(path: Path = CHANGES_FILE) -> list[dict]:
    try:
        return tomllib.loads(path.read_text(encoding="utf-8")).get("change", [])
    except (OSError, tomllib.TOMLDecodeError):
        return []


def _status(run: Run) -> dict[str, str]:
    return {rid: e["status"] for rid, e in requirement_status(run.results["cases"]).items()}


def _cell(run: Run, status: dict[str, str], rid: str) -> str:
    if run.profile is not None and rid not in run.profile.requirements:
        return NOT_IN_PROFILE
    return status.get(rid, NOT_TESTED)


def _level(run: Run, rid: str) -> str:
    req = run.profile.requirements.get(rid) if run.profile is not None else None
    other = "CGW" if run.party == "DTS" else "DTS"
    return (req.level_for(run.party) or f"{other} only") if req is not None else "—"


def _annex_causes(runs: list[Run], key: str, kind: str, changes: list[dict]) -> list[str]:
    versions = {r.version for r in runs}
    return [f"Annex A #{c['item']} ({c['from']} → {c['to']}): {c['subject']}: {c['before']} → {c['after']}"
            for c in changes if key in c.get(kind, []) and {c["from"], c["to"]} <= versions]


def _evidence_causes(runs: list[Run], rid: str, changes: list[dict]) -> list[str]:
    """Annex A items whose result codes or parameters are named by the findings that kept a case citing
    ``rid`` from passing (a refusal G0007, the timer T_otp): the change behind a verdict that the
    requirement's own Annex A row cannot explain (a SHA-1 signature failing a transport case)."""
    versions = {r.version for r in runs}
    said = " ".join(json.dumps([f.get("message"), f.get("detail")], ensure_ascii=False, default=str)
                    for r in runs for c in r.results["cases"] if rid in c.get("requirements", [])
                    for f in c.get("findings", []) if f.get("verdict") not in (None, "PASS"))
    words = set(re.findall(r"[A-Za-z0-9_]+", said))
    return [f"Annex A #{c['item']} ({c['from']} → {c['to']}): {c['subject']}: {c['before']} → {c['after']} "
            f"(named in the findings: {', '.join(sorted((set(c.get('codes', [])) | set(c.get('params', []))) & words))})"
            for c in changes if {c["from"], c["to"]} <= versions
            and (set(c.get("codes", [])) | set(c.get("params", []))) & words]


def _product_cause(runs: list[Run]) -> list[str]:
    labels = {(r.results["sut"].get("product"), r.results["sut"].get("version"), r.results["sut"].get("mutant"))
              for r in runs}
    return ["the product differs between the runs: " + " / ".join(r.label for r in runs)] if len(labels) > 1 else []


def compare(runs: list[Run], changes: list[dict] | None = None) -> Comparison:
    changes = annex_changes() if changes is None else changes
    if len({r.party for r in runs}) > 1:
        raise DiffError("the runs tested different parties (" + ", ".join(f"{r.path}: {r.party}" for r in runs)
                        + "): compare DTS runs with DTS runs and CGW runs with CGW runs")
    statuses = [_status(r) for r in runs]
    rids = set().union(*statuses)
    for run in runs:  # a requirement a profile adds, withdraws or re-levels is a change even if untested
        if run.profile is not None:
            rids |= {rid for rid in run.profile.requirements
                     if any(o.profile is not None and (rid not in o.profile.requirements or
                            o.profile.requirements[rid].level_for(run.party)
                            != run.profile.requirements[rid].level_for(run.party)) for o in runs)}
    rows = []
    for rid in sorted(rids):
        row = Row(rid, [_cell(r, s, rid) for r, s in zip(runs, statuses)], [_level(r, rid) for r in runs])
        if row.changed:
            row.causes = _annex_causes(runs, rid, "requirements", changes)
            if len(set(row.cells)) > 1:
                named = [c for c in _evidence_causes(runs, rid, changes)
                         if not any(c.startswith(known.split(":")[0] + ":") for known in row.causes)]
                row.causes += named + _product_cause(runs)
            row.causes = row.causes or ["no known cause: same profile rules and product (re-run or environment)"]
        rows.append(row)
    params = []
    names = sorted({n for r in runs if r.profile is not None for n in r.profile.params})
    for name in names:
        row = Row(name, [str(r.profile.params.get(name, "—")) if r.profile is not None else "?" for r in runs])
        if row.changed:
            row.causes = _annex_causes(runs, name, "params", changes) or ["profile data differs"]
            params.append(row)
    return Comparison(runs, rows, params)


def text(c: Comparison) -> str:
    lines = ["Runs:"]
    for i, r in enumerate(c.runs, 1):
        res = r.results
        lines.append(f"  [{i}] {r.label}: {overall_text(res)} (time scale {res['time_scale']}, {r.path})")
    changed = [row for row in c.requirements if row.changed]
    lines.append(f"Requirement changes ({len(changed)} of {len(c.requirements)}):")
    for row in changed:
        cells = " | ".join(f"{v} ({lvl})" for v, lvl in zip(row.cells, row.levels))
        lines.append(f"  {row.key:<8} {cells}")
        lines += [f"           ← {cause}" for cause in row.causes]
    if c.params:
        lines.append("Parameter changes:")
        for row in c.params:
            lines.append(f"  {row.key:<16} {' | '.join(row.cells)}")
            lines += [f"           ← {cause}" for cause in row.causes]
    return "\n".join(lines)


def write_html(c: Comparison, path: Path) -> Path:
    page = environment().get_template("diff.html.j2").render(c=c, changed=[r for r in c.requirements if r.changed])
    return atomic_write(Path(path), page)
