"""Claimed versus exhibited capabilities (Table 4-2 / 13-1), from recorded requests."""

from __future__ import annotations

from types import SimpleNamespace

from conformance.claims import compare_claims
from conformance.profile import load_profile

PROFILE = load_profile("ecdi-1.0")


def ex(type_, function, text=None):
    return SimpleNamespace(type=type_, function=function, message_text=text)


def signed(algorithm: str) -> bytes:
    return (f'<e:Envelope xmlns:e="urn:ecdi:envelope:1" xmlns:ds="http://www.w3.org/2000/09/xmldsig#">'
            f'<ds:Signature><ds:SignedInfo><ds:SignatureMethod Algorithm="{algorithm}"/></ds:SignedInfo>'
            f'</ds:Signature></e:Envelope>').encode()


def test_exhibited_but_not_claimed_and_claimed_but_not_exhibited():
    seen = [ex("929", "8"), ex("929", "13"), ex("929", "13"), ex("930", "1"), ex("701", "8"), ex(None, None)]
    report = compare_claims(seen, ["import", "export", "cancel"], PROFILE)
    assert report.exhibited == {"import": ["929/8", "929/13"], "cancel": ["930/1"], "payment": ["701/8"]}
    assert report.exhibited_not_claimed == ["payment"]
    assert report.claimed_not_exhibited == ["export"]
    assert report.unrecognised == []


def test_queries_count_for_their_types_capability_and_odd_pairs_are_listed():
    report = compare_claims([ex("702", "13"), ex("929", "16")], ["payment"], PROFILE)
    assert report.exhibited == {"payment": ["702/13"]} and report.unrecognised == ["929/16"]
    assert report.as_dict()["claimed_not_exhibited"] == []


def test_ecdsa_is_exhibited_by_its_signature_method():
    ecdsa = signed("http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha256")
    rsa = signed("http://www.w3.org/2001/04/xmldsig-more#rsa-sha256")
    report = compare_claims([ex("929", "8", rsa), ex("929", "8", ecdsa), ex("929", "8", b"<not xml")],
                            ["import"], PROFILE)
    assert report.exhibited == {"import": ["929/8"], "ecdsa": ["929/8"]}
    assert report.exhibited_not_claimed == ["ecdsa"]
    assert compare_claims([ex("929", "8", rsa)], ["import", "ecdsa"], PROFILE).claimed_not_exhibited == ["ecdsa"]
