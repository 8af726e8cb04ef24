"""The signed certificate: a valid one verifies with only the public key; any edit fails with its reason."""

from __future__ import annotations

import base64
import json
import re
import sqlite3

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conformance.cli import main
from conformance.issuer import RSA_PSS, Issuer, generate_key, public_pem
from conformance.report.certificate import build_claim, canonical, render
from conformance.report.evidence_db import chain_head
from conformance.report.verify import Rejected, verify_certificate
from mock_server.evidence import EvidenceLog, verify_chain

PROFILE = {"id": "ecdi-1.0", "version": "1.0", "hash": "ab" * 32}
CASES = [
    {"id": "transport.valid-declaration-accepted", "family": "transport", "requirements": ["TRN-01", "DOC-01"],
     "verdict": "PASS", "evidence": ["wire"]},
    {"id": "reply.rejection-shown-verbatim", "family": "reply", "requirements": ["RPL-12", "RPL-14"],
     "verdict": "PASS", "evidence": ["driver-action", "wire"]},
]


def results(**changes) -> dict:
    r = {
        "harness": {"name": "ecdi-conformance", "version": "0.1.0"},
        "profile": dict(PROFILE),
        "sut": {"vendor": "Công ty <Phần mềm> & Co", "vendor_tax_code": "0100000009", "product": "DTS-X",
                "version": "2.1", "capabilities": ["import"], "mutant": None, "build_hash": "f00d"},
        "time_scale": 1.0, "seed": 7, "finished_at": "2026-11-23T10:00:00+00:00", "overall": "CONFORMANT",
        "setup_error": None, "cases": [dict(c) for c in CASES],
    }
    r.update(changes)
    return r


@pytest.fixture(scope="module")
def customs(tmp_path_factory) -> tuple[Issuer, object]:
    path = tmp_path_factory.mktemp("customs") / "customs.pem"
    key = generate_key(path)
    return Issuer("customs", key, str(path)), key.public_key()


def certificate(issuer: Issuer, *, evidence=None, **changes) -> bytes:
    claim = build_claim(results(**changes), issuer, evidence=evidence, interrupted=False,
                        catalogue={c["id"] for c in CASES}, released={PROFILE["id"]: PROFILE["hash"]})
    return render(claim, issuer)


@pytest.fixture(scope="module")
def certified(customs) -> bytes:
    return certificate(customs[0])


def reason(data: bytes, key, **kw) -> str:
    with pytest.raises(Rejected) as exc:
        verify_certificate(data, key, **kw)
    return str(exc.value)


def test_customs_certificate_is_certified_and_verifies(certified, customs):
    result = verify_certificate(certified, customs[1])
    assert result.certified and "CERTIFIED: DTS-X 2.1 on ecdi-1.0, CONFORMANT" in result.summary()
    page = certified.decode("utf-8")
    assert "CERTIFIED · ĐÃ CHỨNG NHẬN" in page and "SELF-ASSESSMENT" not in page
    assert "Công ty &lt;Phần mềm&gt; &amp; Co" in page, "autoescaped"
    assert re.search(r'data-claim="verification_code">[0-9A-F]{4}(-[0-9A-F]{4}){3}<', page)


def test_rsa_pss_issuer_key_works(tmp_path):
    key = generate_key(tmp_path / "rsa.pem", RSA_PSS)
    issuer = Issuer("customs", key, "rsa")
    assert issuer.algorithm == RSA_PSS
    assert verify_certificate(certificate(issuer), key.public_key()).certified


def test_self_assessment_is_never_a_certification(tmp_path):
    issuer = Issuer("self-assessment", generate_key(tmp_path / "vendor.pem"), "vendor")
    data = certificate(issuer)
    assert "a genuine SELF-ASSESSMENT, not a certification: signed with a local self-assessment key" in reason(
        data, issuer.public_key)
    assert not verify_certificate(data, issuer.public_key, accept_self_assessment=True).certified
    assert "This is a self-test, not a certification" in data.decode()


def test_a_vendor_key_claiming_the_customs_role_fails_against_the_customs_key(tmp_path, customs):
    forged = certificate(Issuer("customs", generate_key(tmp_path / "vendor.pem"), "vendor"))
    assert "signed by another key" in reason(forged, customs[1])


def _swap_claim(data: bytes, edit) -> bytes:
    m = re.search(rb'id="ecdi-claim" data-encoding="base64">([^<]+)<', data)
    claim = json.loads(base64.b64decode(m.group(1)))
    edit(claim)
    return data.replace(m.group(1), base64.b64encode(canonical(claim)))


def test_edited_claim_fails(certified, customs):
    def to_fail(claim):
        claim["cases"][0]["verdict"] = "FAIL"
    assert "the claim was altered" in reason(_swap_claim(certified, to_fail), customs[1])


def test_edited_visible_verdict_fails_naming_the_cell(customs):
    data = certificate(customs[0], overall="NOT CONFORMANT",
                       cases=[dict(CASES[0], verdict="FAIL"), CASES[1]])
    forged = data.replace(b'data-claim="cases.0.verdict">FAIL<', b'data-claim="cases.0.verdict">PASS<')
    assert "the visible cases.0.verdict reads 'PASS' but the signed claim says 'FAIL'" in reason(
        forged, customs[1], accept_self_assessment=True)


def test_removed_row_fails(certified, customs):
    forged = re.sub(rb'<tr><td><span data-claim="cases\.1\.title">.*?</tr>', b"", certified, flags=re.S)
    assert forged != certified
    assert "a row was removed" in reason(forged, customs[1])


def test_edited_signature_fails(certified, customs):
    m = re.search(rb'id="ecdi-signature" data-algorithm="Ed25519">([^<]+)<', certified)
    sig = bytearray(base64.b64decode(m.group(1)))
    sig[0] ^= 1
    forged = certified.replace(m.group(1), base64.b64encode(bytes(sig)))
    assert "the claim was altered" in reason(forged, customs[1])


def test_edit_outside_the_facts_breaks_the_page_signature(certified, customs):
    forged = certified.replace(b"size: A4", b"size: A5")
    assert "the page was altered after signing" in reason(forged, customs[1])


@pytest.mark.parametrize("data,expected", [
    (b"", "no page signature"),
    (b"\xff\xfe not html", "no page signature"),
    (b"<html></html>\n<!--ecdi-page-signature Ed25519 AAAA-->\n", "0 elements with id 'ecdi-claim'"),
    (b"\xff<html>\n<!--ecdi-page-signature Ed25519 AAAA-->\n", "not UTF-8"),
])
def test_malformed_files_are_refused_with_a_reason(data, expected, customs):
    assert expected in reason(data, customs[1])


@settings(max_examples=60, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.data())
def test_any_one_byte_edit_fails(certified, customs, data):
    pos = data.draw(st.integers(0, len(certified) - 1), label="position")
    new = data.draw(st.integers(0, 255).filter(lambda b: b != certified[pos]), label="byte")
    forged = certified[:pos] + bytes([new]) + certified[pos + 1:]
    with pytest.raises(Rejected):
        verify_certificate(forged, customs[1])


FIELDS = ["overall", "time_scale", "date", "seed", "profile.hash", "sut.product", "sut.version",
          "evidence.head_hash", "certification.certified", "issuer.role", "cases.0.verdict", "cases.1.requirements"]


@settings(max_examples=40, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(field=st.sampled_from(FIELDS), value=st.one_of(st.text(max_size=12), st.integers(), st.booleans()))
def test_any_claim_field_edit_fails(certified, customs, field, value):
    def edit(claim):
        *path, last = field.split(".")
        target = claim
        for part in path:
            target = target[int(part)] if part.isdigit() else target[part]
        target[last] = value

    forged = _swap_claim(certified, edit)
    if forged == certified:  # the drawn value was the recorded one
        return
    with pytest.raises(Rejected):
        verify_certificate(forged, customs[1])


def _evidence(tmp_path, rows: int):
    db = tmp_path / "evidence.sqlite3"
    log = EvidenceLog(db)
    for _ in range(rows):
        log.append(log.next_seq(), case_id="c", method="POST", path="/ecdi/CISService", request_body=b"x")
    log.close()
    return db


def test_evidence_chain_head_must_match(tmp_path, customs):
    db = _evidence(tmp_path, 3)
    data = certificate(customs[0], evidence=chain_head(db))
    assert verify_certificate(data, customs[1], evidence_db=db, chain_check=verify_chain).certified
    log = EvidenceLog(db)
    log.append(log.next_seq(), case_id="c", method="POST", path="/ecdi/CISService", request_body=b"late")
    log.close()
    assert "does not match the certificate's" in reason(data, customs[1], evidence_db=db, chain_check=verify_chain)


def test_edited_evidence_row_is_found(tmp_path, customs):
    db = _evidence(tmp_path, 3)
    data = certificate(customs[0], evidence=chain_head(db))
    conn = sqlite3.connect(db)
    conn.execute("DROP TRIGGER exchanges_no_update")
    conn.execute("UPDATE exchanges SET request_body = ? WHERE seq = 2", (b"y",))
    conn.commit()
    conn.close()
    assert "hash chain breaks at row seq 2" in reason(data, customs[1], evidence_db=db, chain_check=verify_chain)


def test_verify_command_prints_one_line_and_exits(tmp_path, certified, customs, capsys):
    cert, key = tmp_path / "certificate.html", tmp_path / "customs.pub.pem"
    cert.write_bytes(certified)
    key.write_bytes(public_pem(customs[1]))
    assert main(["verify", str(cert), "--trust", str(key)]) == 0
    assert capsys.readouterr().out.startswith("VALID: CERTIFIED: DTS-X 2.1")
    cert.write_bytes(certified.replace(b"CONFORMANT", b"CONFORMANX", 1))
    assert main(["verify", str(cert), "--trust", str(key)]) == 1
    out = capsys.readouterr().out
    assert out.startswith("INVALID: ") and out.count("\n") == 1
    assert main(["verify", str(tmp_path / "missing.html"), "--trust", str(key)]) == 2
    assert "cannot be read" in capsys.readouterr().err
    (tmp_path / "bad.pem").write_text("not a key")
    assert main(["verify", str(cert), "--trust", str(tmp_path / "bad.pem")]) == 2
    assert "not a PEM public key" in capsys.readouterr().err


def test_spare_bits_of_the_page_signature_cannot_be_flipped_unnoticed(certified, customs):
    m = re.search(rb"<!--ecdi-page-signature Ed25519 ([A-Za-z0-9+/]+)(=*)-->\n$", certified)
    last = m.group(1)[-1:]
    alphabet = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
    sibling = alphabet[alphabet.index(last) ^ 1:][:1]  # differs only in a spare (padding) bit
    forged = certified[:m.end(1) - 1] + sibling + certified[m.end(1):]
    assert "canonical base64" in reason(forged, customs[1])


def test_evidence_written_in_the_former_hex_form_still_verifies_and_its_edits_are_found(tmp_path, monkeypatch):
    """Octet columns are hashed as their sha256 since issue 13; files written before keep verifying."""
    from functools import partial

    from mock_server import evidence
    with monkeypatch.context() as patch:
        patch.setattr(evidence, "row_hash", partial(evidence.row_hash, legacy=True))
        db = _evidence(tmp_path, 3)
    assert verify_chain(db) == (True, None)
    conn = sqlite3.connect(db)
    conn.execute("DROP TRIGGER exchanges_no_update")
    conn.execute("UPDATE exchanges SET request_body = ? WHERE seq = 2", (b"y",))
    conn.commit()
    conn.close()
    assert verify_chain(db) == (False, 2)
