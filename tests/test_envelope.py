"""The envelope family's atomic checks (ENV-02, ENV-04..08, CAP-01) on hand-made requests, and the
gateway's campaign listing (``/_control/exchanges?all=1``) that ENV-02 is judged over."""

from __future__ import annotations

import copy
from types import SimpleNamespace

import pytest
import requests
from lxml import etree

from conformance import checks
from conformance.codec.envelope import Header, build_envelope
from conformance.codec.namespaces import DEC, ENV, q
from conformance.gateway_control import GatewayControl
from conformance.pki import TestPKI
from conformance.profile import load_profile
from mock_server import Account, GatewayConfig, run_in_thread

PROFILE = load_profile("ecdi-1.0")
ID1, ID2 = "0d7e2a4c-1b2f-4c3d-9e8f-a0b1c2d3e4f5", "5a6b7c8d-9e0f-4a1b-8c2d-3e4f5a6b7c8d"
INSTALL = "7e55d88c-8ad3-4509-88de-16138bd77d77"


def request(seq: int, message_id: str, *, type_="929", function="8", reference="R20250101-abc", reply="29",
            procedure="1", install=INSTALL, content=None, note="") -> SimpleNamespace:
    """An exchange as the gateway lists it, holding an (unsigned) request built with the codec."""
    fields = {"procedureType": procedure, "Reference/version": "1.0", "Reference/messageId": message_id,
              "SendApplication/name": "P", "SendApplication/version": "1", "SendApplication/companyName": "V",
              "SendApplication/companyIdentity": "0100000009", "SendApplication/createMessageIssue": "2025-01-01T00:00:00+07:00",
              "From/name": "D", "From/identity": "0312345678", "To/name": "O", "To/identity": "03TG",
              "Subject/type": type_, "Subject/function": function, "Subject/reference": reference,
              "Subject/sendApplication": install, "Subject/receiveApplication": "CGW"}
    if content is None:
        content = etree.Element(q(ENV, "Query") if function == "13" else q(DEC, "Declaration"))
        content.text = note
    text = etree.tostring(build_envelope(Header(fields), copy.deepcopy(content)), encoding="utf-8")
    return SimpleNamespace(seq=seq, message_text=text, message_id=message_id, type=type_, function=function,
                           reply_function=reply)


def test_a_retransmission_reuses_its_message_id_a_new_text_may_not():
    first, again = request(1, ID1), request(2, ID1)
    assert checks.message_ids_never_reused([first, again], PROFILE, "t").ok
    changed = request(3, ID1, note="changed")
    result = checks.message_ids_never_reused([first, again, changed], PROFILE, "t")
    assert not result.ok and ID1 in result.message and "#1, #3" in result.message


def test_message_ids_must_be_version_4():
    assert checks.message_ids_random_v4([request(1, ID1), request(2, ID2)], PROFILE, "t").ok
    v1 = "0d7e2a4c-1b2f-1c3d-9e8f-a0b1c2d3e4f5"
    assert not checks.message_ids_random_v4([request(1, v1)], PROFILE, "t").ok
    assert not checks.message_ids_random_v4([request(1, ID1.upper())], PROFILE, "t").ok


def test_table_4_2_rows_need_the_procedure_type_and_content_of_the_row():
    assert checks.table_4_2_rows([request(1, ID1), request(2, ID2, function="13", reference=ID1)], PROFILE).ok
    assert not checks.table_4_2_rows([request(1, ID1, type_="930", procedure="2")], PROFILE).ok
    wrong_child = etree.Element(q(ENV, "Query"))
    assert not checks.table_4_2_rows([request(1, ID1, content=wrong_child)], PROFILE).ok
    assert not checks.table_4_2_rows([request(1, ID1, function="16")], PROFILE).ok


def test_business_references_are_new_unless_the_earlier_document_was_refused():
    assert checks.business_references_fresh([request(1, ID1, reference="A1"), request(2, ID2, reference="B2")],
                                            PROFILE).ok
    reused = checks.business_references_fresh([request(1, ID1, reference="A1"), request(2, ID2, reference="A1")],
                                              PROFILE)
    assert not reused.ok and "A1" in reused.message
    corrected = [request(1, ID1, reference="A1", reply="271"), request(2, ID2, reference="A1")]
    assert checks.business_references_fresh(corrected, PROFILE).ok
    other_type = [request(1, ID1, reference="A1"), request(2, ID2, reference="A1", type_="930")]
    assert checks.business_references_fresh(other_type, PROFILE).ok


def test_a_query_names_a_submission_of_its_type_sent_before_it():
    sent = [request(1, ID1), request(2, ID2, function="13", reference=ID1)]
    assert checks.subject_references(sent, PROFILE).ok
    assert not checks.subject_references([request(1, ID2, function="13", reference=ID1)], PROFILE).ok
    assert not checks.subject_references([request(1, ID1, reference="-bad")], PROFILE).ok


def test_installation_id_is_one_uuid_and_header_values_compare_paths():
    assert checks.one_installation_id([request(1, ID1), request(2, ID2)], PROFILE).ok
    assert not checks.one_installation_id([request(1, ID1), request(2, ID2, install=ID2)], PROFILE).ok
    assert not checks.one_installation_id([request(1, ID1, install="INSTALL-1")], PROFILE).ok
    sent = [request(1, ID1)]
    assert checks.header_values(sent, PROFILE, {"To/identity": "03TG", "SendApplication/certificationId": None}, "t").ok
    miss = checks.header_values(sent, PROFILE, {"SendApplication/certificationId": "ECDI-0000-00000"}, "t")
    assert not miss.ok and "absent" in miss.message


@pytest.fixture(scope="module")
def pki(pki_dir) -> TestPKI:
    return TestPKI.ensure(pki_dir)


def _gateway(pki, db):
    return run_in_thread(GatewayConfig(profiles=["ecdi-1.0"], pki_folder=pki.folder, evidence_db=db, time_scale=0.01,
                                       accounts=[Account("u", "p", [pki.tax_code])]))


def test_the_campaign_lists_every_case_of_this_run_only(pki, tmp_path):
    db = tmp_path / "evidence.sqlite3"
    for run in (1, 2):                      # the second run reuses the first run's evidence log
        gateway = _gateway(pki, db)
        try:
            control = GatewayControl(gateway.control_url, token=gateway.control_token, ca_pem=pki.tls_ca_pem)
            base = gateway.endpoint_url.rsplit("/ecdi/", 1)[0]
            client = requests.Session()
            client.trust_env = False               # else REQUESTS_CA_BUNDLE overrides verify
            for case_id in ("a", "b"):
                control.begin_case(f"{case_id}{run}", {"name": "default"})
                client.get(base + "/ecdi/Other", verify=str(pki.tls_ca_pem), timeout=10)
            assert [ex.case_id for ex in control.campaign_exchanges()] == [f"a{run}", f"b{run}"]
            assert [ex.case_id for ex in control.exchanges()] == [f"b{run}"]
            control.close()
        finally:
            gateway.stop()
