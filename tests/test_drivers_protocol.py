"""The JSON shared by the command and HTTP drivers: the published schema is the one the code checks."""

from __future__ import annotations

import json
from dataclasses import asdict, fields
from pathlib import Path

import pytest

from conformance.drivers import Action, DriverError, Outcome
from conformance.drivers.protocol import (ACTIONS, NOTIFICATION_KINDS, STATES, action_fields, outcome_from_dict,
                                          parse_journal, user_action)

SCHEMA = json.loads((Path(__file__).resolve().parents[1] / "conformance" / "drivers" / "outcome.schema.json")
                    .read_text(encoding="utf-8"))


def test_the_published_schema_matches_the_outcome_model_and_the_checks():
    props = SCHEMA["properties"]
    assert set(props) == {f.name for f in fields(Outcome)}
    assert props["state"]["enum"] == list(STATES)
    assert props["action"]["enum"] == list(ACTIONS)   # configure too: CAP-07 reads what it shows
    assert props["notifications"]["items"]["properties"]["kind"]["enum"] == list(NOTIFICATION_KINDS)


@pytest.mark.parametrize("type_,function,name", [
    ("929", "8", "lodge"), ("930", "5", "amend"), ("929", "1", "cancel"), ("701", "8", "pay-create"),
    ("702", "8", "pay-approve"), ("702", "16", "request-otp"),
])
def test_a_lodge_is_named_by_the_users_action(type_, function, name):
    assert user_action(Action(kind="lodge", type=type_, function=function)) == name


def test_function_is_the_code_the_product_sends_for_the_action():
    assert action_fields(Action(kind="lodge", type="929", function="5"))["function"] == "5"
    assert action_fields(Action(kind="query", type="929", submission_id="m-1"))["function"] == "13"
    assert action_fields(Action(kind="resume"))["function"] is None


def test_an_outcome_round_trips_and_odd_pairs_are_refused():
    action = Action(kind="lodge", type="930", function="5")
    data = {**asdict(Outcome(action="amend", state="accepted", reception_number="3000000001")), "action": "amend"}
    assert outcome_from_dict(data, action, "test").reception_number == "3000000001"
    with pytest.raises(DriverError, match="action is 'lodge', expected 'amend'"):
        outcome_from_dict({**data, "action": "lodge"}, action, "test")
    with pytest.raises(DriverError, match="no user action lodges type 929 function 13"):
        user_action(Action(kind="lodge", type="929", function="13"))


def test_journal_lines_must_be_json_objects():
    assert parse_journal('{"event": "attempt"}\n\n', "j") == [{"event": "attempt"}]
    with pytest.raises(DriverError, match="journal line 2 is not a JSON object"):
        parse_journal('{"event": "attempt"}\n[1]\n', "j")
