"""When a run may be a certification, and why it is not.

A certificate is headed CERTIFIED only when customs signed it *and* nothing about the run casts doubt
on its verdicts. Each condition below gives a reason in plain words; the certificate prints every
reason that applies, so a self-test can never pass for a certification and nobody has to guess why.

Released profiles are pinned by the hash of their data (``fixtures/profiles/released.toml``): a run
on a profile whose XSDs, code lists or parameters were edited — even by one byte — tested something
other than the published standard.
"""

from __future__ import annotations

import tomllib
from pathlib import Path

from ..profile import FIXTURES, ProfileError, load_profile

RELEASED_FILE = FIXTURES / "profiles" / "released.toml"
BAD_IN_MANDATORY = {"ERROR", "INCONCLUSIVE"}


def released_hashes(path: Path = RELEASED_FILE) -> dict[str, str]:
    """``{profile id: sha256}`` of the released profiles; empty if the registry cannot be read."""
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError):
        return {}
    return {pid: entry.get("hash", "") for pid, entry in data.get("profiles", {}).items() if isinstance(entry, dict)}


def mandatory_case(case: dict, levels: dict[str, str]) -> bool:
    """A case is mandatory when it tests at least one requirement that binds the DTS with MUST."""
    return any(levels.get(r) == "MUST" for r in case["requirements"])


def _levels(profile_id: str) -> dict[str, str]:
    try:
        return {rid: req.level for rid, req in load_profile(profile_id).requirements.items()}
    except ProfileError:
        return {}


def refusal_reasons(results: dict, *, role: str, interrupted: bool, catalogue: set[str] | None,
                    released: dict[str, str] | None = None) -> list[str]:
    """Every reason this run cannot be a certification (empty: it can)."""
    reasons = []
    if role != "customs":
        reasons.append("signed with a local self-assessment key, not the customs authority's key")
    if interrupted or results["overall"] == "INTERRUPTED":
        reasons.append("the run was interrupted before every case finished")
    levels = _levels(results["profile"]["id"])
    bad = [f"{c['id']} ({c['verdict']})" for c in results["cases"]
           if c["verdict"] in BAD_IN_MANDATORY and mandatory_case(c, levels)]
    if bad:
        reasons.append("mandatory case(s) without a clear verdict: " + ", ".join(bad))
    if results["time_scale"] < 1:
        reasons.append(f"timers scaled by time_scale {results['time_scale']} < 1 (spec §2.1)")
    released = released_hashes() if released is None else released
    profile = results["profile"]
    known = released.get(profile["id"])
    if known is None:
        reasons.append(f"profile {profile['id']} is not a released profile")
    elif known != profile["hash"]:
        reasons.append(f"profile {profile['id']} was modified (hash {profile['hash'][:12]}…, "
                       f"released {known[:12]}…)")
    scope = results.get("scope")
    ran = {c["id"] for c in results["cases"]}
    if scope and scope.get("missing"):
        reasons.append(f"only {scope['executed']} of the {scope['applicable']} cases that apply to the product's "
                       f"claims were run (INCOMPLETE): not a statement of conformance")
    elif scope is None and catalogue is not None and not catalogue <= ran:
        reasons.append(f"only {len(ran & catalogue)} of the {len(catalogue)} catalogued cases were run")
    if results["sut"].get("mutant"):
        reasons.append(f"the reference DTS ran with the deliberate defect {results['sut']['mutant']}")
    if results.get("setup_error"):
        reasons.append(f"the session could not start: {results['setup_error']}")
    if results["overall"] == "NOT CONFORMANT":
        reasons.append("the product is NOT CONFORMANT")
    elif results["overall"] not in ("CONFORMANT", "INCOMPLETE", "INTERRUPTED"):  # those have their reason above
        reasons.append(f"the run's overall verdict is {results['overall']}")
    return reasons
