"""Issue 4 (remainder): gateway signer variants, the new scenario actions and the file search."""

from __future__ import annotations

import base64

import pytest

from conformance import checks
from conformance.pki import TestPKI
from mock_server.scenario import ScenarioError, parse_scenario


def _scenario(then):
    return parse_scenario({"name": "t", "rules": [{"when": {}, "then": then}]}, {})


@pytest.mark.parametrize("then", [{"action": "gateway_certificate", "certificate": "renewed"},
                                  {"action": "gateway_certificate", "certificate": "expired"},
                                  {"action": "misroute", "field": "version"},
                                  {"action": "misroute", "field": "placeholders"},
                                  {"action": "malformed", "variant": "too_deep"},
                                  {"action": "malformed", "variant": "too_large"}])
def test_new_actions_validate(then):
    assert _scenario(then).rules[0].action.name == then["action"]


@pytest.mark.parametrize("then, key", [({"action": "gateway_certificate"}, "needs certificate"),
                                       ({"action": "gateway_certificate", "certificate": "old"}, "certificate"),
                                       ({"action": "misroute", "field": "From"}, "field")])
def test_bad_new_actions_name_the_key(then, key):
    with pytest.raises(ScenarioError, match=key):
        _scenario(then)


def test_gateway_signer_variants_are_kept_and_chain_to_the_anchor(tmp_path):
    pki = TestPKI.ensure(tmp_path / "pki")
    renewed, expired = pki.gateway_signer_variant("renewed"), pki.gateway_signer_variant("expired")
    for identity in (renewed, expired):
        assert identity.cert.issuer == pki.sign_anchor.subject
        identity.cert.verify_directly_issued_by(pki.sign_anchor)
    assert renewed.cert.serial_number != pki.gateway_signer.cert.serial_number
    assert expired.cert.not_valid_after_utc < renewed.cert.not_valid_before_utc.replace(year=2100)
    assert expired.cert.not_valid_before_utc >= pki.sign_anchor.not_valid_before_utc
    again = TestPKI.ensure(tmp_path / "pki").gateway_signer_variant("renewed")
    assert again.cert == renewed.cert                                  # reused, not re-issued
    (tmp_path / "pki" / "gateway-signers" / "expired.pem").unlink()
    assert TestPKI.ensure(tmp_path / "pki").gateway_signer_variant("expired").cert != expired.cert   # re-added
    with pytest.raises(ValueError, match="renewed"):
        pki.gateway_signer_variant("revoked")


def test_file_search_finds_each_encoding(tmp_path):
    secret = "pa55-wörd"
    (tmp_path / "a.ini").write_bytes(b"x=" + secret.encode("utf-16-le"))
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "b.json").write_bytes(base64.b64encode(secret.encode()))
    (tmp_path / "clean.txt").write_text("nothing here")
    found = checks.search_files([tmp_path, tmp_path / "absent"], {"pw": checks.secret_encodings(secret)})
    assert found["files"] == 3 and found["missing"] == [str(tmp_path / "absent")]
    assert sorted(h["file"].rsplit("/", 1)[1] for h in found["hits"]) == ["a.ini", "b.json"]
    assert not checks.no_secret_in_files(found, ["pw"], "x").ok
    assert checks.no_secret_in_files(found, ["other"], "x").ok
