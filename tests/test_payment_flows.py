"""Payments (§10) and local users (SEC-08) in the pieces the payment cases rest on: the Outcome fields,
the acting user's credentials, the user's entry of an order, the description both sides render, the
withheld-mail scenario and the legacy-1.0 configuration. The cases themselves run in the self-test."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path
from types import SimpleNamespace

import pytest
from lxml import etree

from conformance.cases.test_payment import canonical_description
from conformance.codec.namespaces import PAY, q
from conformance.drivers.base import Action, DriverError, Environment, LocalAccount
from conformance.drivers.protocol import acting_user_fields, action_fields, outcome_from_dict
from conformance.reference_dts.dts import ReferenceDTS
from conformance.reference_dts.mutants import MUTANTS
from conformance.reference_dts.mutants_payment import CONFIGURATIONS, Legacy10
from conformance.testdata import TestData

APPROVE = Action(kind="lodge", type="702", function="8", submission_id="PO20000000000001", otp="123456", user="b")


def env(tmp_path: Path) -> Environment:
    return Environment(
        profile_id="ecdi-1.1", endpoint="https://127.0.0.1:1/ecdi/CISService", tls_ca_pem=tmp_path, sign_anchor_pem=tmp_path,
        ca_trust_list_pem=tmp_path, p12=tmp_path, p12_password="p12-secret", user_id="nguyenvana", password="pw-a",
        tax_code="0312345678", declarant_name="X", office="03TG", office_name="Y", time_scale=0.05, work_dir=tmp_path,
        accounts=(LocalAccount("a", "nguyenvana", "pw-a"), LocalAccount("b", "tranthib", "pw-b")))


def test_outcome_carries_the_order_id_and_an_expiry_with_its_offset():
    outcome = outcome_from_dict({"action": "pay-approve", "state": "accepted", "payment_order_id": "PO20000000000001",
                                 "otp_expires_at": "2026-03-14T10:05:00.250+07:00"}, APPROVE, "test")
    assert (outcome.action, outcome.payment_order_id) == ("lodge", "PO20000000000001")
    with pytest.raises(DriverError, match="otp_expires_at '2026-03-14T10:05:00' is not an ISO 8601 date-time with its UTC offset"):
        outcome_from_dict({"action": "pay-approve", "state": "accepted", "otp_expires_at": "2026-03-14T10:05:00"},
                          APPROVE, "test")


def test_each_action_carries_the_acting_users_own_credentials(tmp_path):
    e = env(tmp_path)
    assert action_fields(APPROVE)["user"] == "b" and action_fields(APPROVE)["submission"] == "PO20000000000001"
    assert acting_user_fields(e, "b") == {"user": "b", "user_id": "tranthib", "password": "pw-b"}
    assert acting_user_fields(e, None)["user_id"] == "nguyenvana"            # None: the first local user
    assert e.local_accounts == "a=nguyenvana,b=tranthib"
    with pytest.raises(DriverError, match="no local user 'c'"):
        acting_user_fields(e, "c")
    assert "pw-b" not in repr(e.accounts)                                    # SEC-01: never shown


def test_the_users_entry_is_drawn_by_the_seed_and_both_sides_render_the_same_description():
    entries = [TestData(seed).document("payment-order-entry") for seed in (1, 2)]
    assert entries[0] == TestData(1).document("payment-order-entry") and entries[0] != entries[1]
    order = etree.fromstring(entries[0])
    types = [line.findtext(q(PAY, "taxType")) for line in order.findall(q(PAY, "TaxLine"))]
    assert 1 <= len(types) == len(set(types)) <= 4 and not order.findtext(q(PAY, "maker"))
    note = order.findtext(q(PAY, "description"))
    rendered = ReferenceDTS.payment_description(None, order, "0312345678", note)
    assert rendered == canonical_description("0312345678", entries[0])
    assert rendered.startswith("ECDI+MST:0312345678+TK:") and rendered.endswith(f"+GC:{note}")


def test_withheld_mail_is_a_valid_scenario_action():
    from mock_server.scenario import parse_scenario

    scenario = parse_scenario({"name": "m", "rules": [{"when": {"type": "701"}, "then": {"action": "withhold_mail"}}]},
                              {})
    assert scenario.rules[0].action.name == "withhold_mail"


def test_legacy_configuration_is_no_mutant_and_assumes_the_10_otp_validity():
    assert "legacy-1.0" in CONFIGURATIONS and "legacy-1.0" not in MUTANTS
    assert MUTANTS["maker-approves"].profile == "ecdi-1.1"               # scored where PAY-11 is a MUST
    stub = SimpleNamespace(config=SimpleNamespace(effective_scale=0.05), LEGACY=Legacy10.LEGACY)
    received = datetime(2026, 3, 14, 3, 0, tzinfo=timezone.utc)
    shown = Legacy10.shown_otp_expiry(stub, "2026-03-14T10:00:15.000+07:00", received)
    assert shown - received == timedelta(seconds=120 * 0.05)             # 1.0's T_otp, whatever the reply says
