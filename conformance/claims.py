"""Claimed versus exhibited capabilities: what the product did on the wire against its statement.

CAP-04 forbids sending a type/function of an unclaimed capability, and a claim that no case ever
saw exercised is worth reporting too (the certificate lists what was certified, not what was
promised). This is a pure function of the recorded requests, so the results writer can call it
after a run and the tests can call it with hand-made exchanges. Which capability a request shows
is Table 4-2 (queries: "the type's capability"), read from the profile, never restated here.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from lxml import etree

from .codec.namespaces import DS
from .codec.safexml import hardened_parser

ECDSA_PREFIX = "http://www.w3.org/2001/04/xmldsig-more#ecdsa-"   # RFC 6931 ECDSA SignatureMethods


@dataclass(frozen=True)
class ClaimsReport:
    exhibited: dict[str, list[str]]              # capability -> the "type/function" pairs seen for it
    exhibited_not_claimed: list[str]             # CAP-04 breaches
    claimed_not_exhibited: list[str]             # claims no recorded request exercised
    unrecognised: list[str] = field(default_factory=list)  # requests that are no row of Table 4-2

    def as_dict(self) -> dict:
        return {"exhibited": self.exhibited, "exhibited_not_claimed": self.exhibited_not_claimed,
                "claimed_not_exhibited": self.claimed_not_exhibited, "unrecognised": self.unrecognised}


def compare_claims(exchanges: Iterable, claimed: Iterable[str], profile) -> ClaimsReport:
    """Compare ``claimed`` capabilities with what ``exchanges`` exhibit.

    ``exchanges`` are the gateway's recorded requests (``GatewayControl.exchanges``) or anything with
    ``type``, ``function`` and optionally ``message_text``; exchanges without a type (not ECDI
    requests, or unreadable ones) are skipped. ``ecdsa`` is exhibited by a request whose
    ``ds:SignatureMethod`` is an ECDSA algorithm.
    """
    claimed = list(dict.fromkeys(claimed))
    seen: dict[str, list[str]] = {}
    unrecognised: list[str] = []
    for ex in exchanges:
        if not getattr(ex, "type", None) or not getattr(ex, "function", None):
            continue
        pair = f"{ex.type}/{ex.function}"
        row = profile.permitted_requests.get((ex.type, ex.function))
        if row is None:
            if pair not in unrecognised:
                unrecognised.append(pair)
            continue
        _add(seen, row.capability, pair)
        if _signed_with_ecdsa(getattr(ex, "message_text", None)):
            _add(seen, "ecdsa", pair)
    order = list(profile.capabilities)
    exhibited = {c: seen[c] for c in sorted(seen, key=order.index)}
    return ClaimsReport(
        exhibited=exhibited,
        exhibited_not_claimed=[c for c in exhibited if c not in claimed],
        claimed_not_exhibited=[c for c in claimed if c not in exhibited],
        unrecognised=unrecognised,
    )


def _add(seen: dict[str, list[str]], capability: str, pair: str) -> None:
    pairs = seen.setdefault(capability, [])
    if pair not in pairs:
        pairs.append(pair)


def _signed_with_ecdsa(text: bytes | None) -> bool:
    if not text:
        return False
    try:
        root = etree.fromstring(text, hardened_parser())
    except etree.XMLSyntaxError:
        return False
    return any((m.get("Algorithm") or "").startswith(ECDSA_PREFIX) for m in root.iter(f"{{{DS}}}SignatureMethod"))
