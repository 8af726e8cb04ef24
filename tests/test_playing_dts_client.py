"""The harness's DTS client (``conformance/playing_dts``): signed requests the gateway accepts, raw octets
for framing cases, and every exchange in the harness-side evidence chain with secrets fingerprinted."""

from __future__ import annotations

import pytest
from cryptography.hazmat.primitives import serialization

from conformance.checks import cgw_transport as wire
from conformance.checks.core import reply_result
from conformance.codec.fingerprint import Fingerprinter, new_key
from conformance.gateway_statement import load_gateway_statement, write_mock_statement
from conformance.pki import TestPKI
from conformance.playing_dts.client import DtsClient
from conformance.playing_dts.evidence import HarnessEvidence
from conformance.profile import load_profile
from conformance.testdata import TestData
from mock_server import Account, GatewayConfig, run_in_thread
from mock_server.evidence import verify_chain

PASSWORD = "Mật-khẩu 1"


@pytest.fixture(scope="module")
def statement(pki_dir, tmp_path_factory):
    pki = TestPKI.ensure(pki_dir)
    folder = tmp_path_factory.mktemp("client")
    accounts = [Account("nguoikhai", PASSWORD, [pki.tax_code])]
    running = run_in_thread(GatewayConfig(profiles=["ecdi-1.0", "ecdi-1.1"], pki_folder=pki.folder,
                                          evidence_db=folder / "gw-evidence.sqlite3", time_scale=0.05,
                                          accounts=accounts, registered_certs={pki.tax_code: [pki.declarant.cert]}))
    write_mock_statement(folder / "gateway.toml", running, pki, [load_profile("ecdi-1.0"), load_profile("ecdi-1.1")],
                         accounts, 0.05)
    yield load_gateway_statement(folder / "gateway.toml")
    running.stop()


@pytest.fixture(params=["ecdi-1.0", "ecdi-1.1"])
def client(statement, tmp_path, request):
    evidence = HarnessEvidence(tmp_path / "evidence.sqlite3", Fingerprinter(new_key()), [PASSWORD])
    yield DtsClient(statement, load_profile(request.param), evidence)
    evidence.close()


def test_a_signed_declaration_is_accepted_and_recorded_with_its_facts(client):
    text = client.message(TestData(7).document("declaration-import"), type="929")
    ex = client.send("c1", text)
    assert wire.send_answered(ex).ok and wire.reply_signed(ex, client.statement.cgw_sign_anchor).ok
    assert ex.reply_function == "29" and reply_result(ex).reception_number
    assert (ex.type, ex.function, ex.attempt, ex.case_id) == ("929", "8", 1, "c1")
    again = client.send("c1", text)                   # the same message again: its second attempt (REL-10)
    assert again.attempt == 2 and again.reply_text == ex.reply_text
    rows = client.evidence.exchanges("c1")
    assert [r.seq for r in rows] == [ex.seq, again.seq] and verify_chain(client.evidence.path) == (True, None)


def test_passwords_never_reach_the_evidence_in_clear(client):
    client.send("c2", client.message(TestData(7).document("declaration-import")), password="wrong " + PASSWORD)
    client.evidence.close()
    raw = b"".join(p.read_bytes() for p in client.evidence.path.parent.glob("evidence.sqlite3*"))
    assert b"nguoikhai" in raw                        # the rows are there
    assert PASSWORD.encode() not in raw and b"wrong " not in raw
    client.evidence = HarnessEvidence(client.evidence.path, client.evidence.fingerprint)   # for the fixture's close


def test_raw_octets_and_gets_are_recorded_as_sent(client):
    ex = client.post("c3", b"not xml", headers={"Content-Type": "text/plain"})
    assert ex.request_body == b"not xml" and ex.request_headers == {"Content-Type": "text/plain"}
    assert wire.soap_fault(ex, "soap:Client", "a non-XML body").ok
    wsdl = client.get("c3", "/ecdi/CISService?wsdl")
    assert wsdl.method == "GET" and wsdl.path == "/ecdi/CISService?wsdl" and wsdl.response_status == 200


def test_an_unreachable_endpoint_is_an_exchange_without_answer(client, monkeypatch):
    monkeypatch.setattr(client, "statement", type(client.statement)(**{
        **client.statement.__dict__, "endpoint": "https://127.0.0.1:9/ecdi/CISService"}))
    ex = client.post("c4", b"<x/>")
    assert ex.response_status is None and "transport_error" in ex.gateway_verdict
    assert not wire.answered(ex).ok


def case_context(statement, tmp_path):
    """A CGW case context on a one-lane gateway session for ``statement``."""
    from conformance.case import CaseSpec
    from conformance.harness import HarnessOptions
    from conformance.playing_dts.context import GatewayCaseContext
    from conformance.playing_dts.harness import GatewayHarness
    from conformance.verdict import CaseRecord

    harness = GatewayHarness(HarnessOptions(profile_id="ecdi-1.1", out_dir=tmp_path, gateway=statement.file, jobs=1))
    harness.start()
    harness.statement = statement                                  # as the test gives it (facilities removed)
    lane = harness.open_lanes(1)[0]
    spec = CaseSpec("cgw-x.clock", ("ENV-03",), "purpose", party="CGW")
    return harness, lane, GatewayCaseContext(spec, CaseRecord(spec.id, "cgw-x", "purpose", ["ENV-03"]), lane)


def test_a_facility_the_statement_does_not_offer_makes_the_case_not_applicable(statement, tmp_path):
    from dataclasses import replace

    from conformance.case import CaseFailure
    from conformance.verdict import Verdict

    harness, _, ctx = case_context(replace(statement, facilities={}), tmp_path)
    with pytest.raises(CaseFailure):
        ctx.advance_clock(60)
    assert ctx.record.verdict is Verdict.NOT_APPLICABLE and "no test clock" in ctx.record.reason
    harness.stop()


def test_a_moved_test_clock_stamps_the_messages_and_goes_back_at_the_case_end(statement, tmp_path):
    from conformance.codec.envelope import parse_datetime, read_header
    from conformance.party import PARTIES

    harness, lane, ctx = case_context(statement, tmp_path)
    ctx.advance_clock(3600)
    text = ctx.message()
    issued = parse_datetime(read_header(__import__("lxml.etree").etree.fromstring(text))["SendApplication/createMessageIssue"])
    assert abs((issued - lane.client.now()).total_seconds()) < 60 and harness.clock_offset == 3600
    assert ctx.send(text).reply_function == "29"                  # ENV-03 judged by the gateway's clock: no X0004
    PARTIES["CGW"].end_case(lane)
    assert harness.control("test_clock").clock()["offset"] == 0.0 and harness.clock_offset == 0.0
    assert [e["op"] for e in ctx.tape.events][:2] == ["statement", "advance_clock"]
    harness.stop()
