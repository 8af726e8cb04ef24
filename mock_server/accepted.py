"""The profiles a gateway accepts (CAP-03), shared by the gateway and its CPU worker processes."""

from __future__ import annotations

from conformance.profile import Profile, load_profile


def version_key(version: str) -> tuple[int, ...]:
    return tuple(int(part) for part in version.split("."))


def accepted_profiles(profile_ids: list[str]) -> list[Profile]:
    """The profiles whose messages this gateway accepts (CAP-03): those it was started with, plus every
    version their deployment's ``accepted_versions`` names (a 1.1 CGW also accepts 1.0 until customs
    withdraws it, Annex A). Each message is then judged by the profile of its ``Reference/version``."""
    loaded = {p.version: p for p in (load_profile(pid) for pid in profile_ids)}
    for profile in list(loaded.values()):
        for version in profile.deployment.get("accepted_versions", []):
            if version not in loaded:
                loaded[version] = load_profile(f"ecdi-{version}")
    return list(loaded.values())


class AcceptedProfiles:
    """By version, and the highest one: the placeholder version of a document with none (step 6)."""

    def __init__(self, profile_ids: list[str]):
        loaded = accepted_profiles(profile_ids)
        self.profiles = {p.version: p for p in loaded}
        self.default_profile = max(loaded, key=lambda p: version_key(p.version))
