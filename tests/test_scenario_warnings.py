"""RPL-15 scenario data: the ``warn`` action and ``warnings`` on history steps (validated, then carried)."""

from __future__ import annotations

import pytest

from conformance.profile import load_profile
from mock_server.scenario import HistoryStep, ScenarioError, WarnAction, parse_scenario

CODES = {code: frozenset(rc.functions) for code, rc in load_profile("ecdi-1.0").result_codes.items()}


def test_warn_action_and_history_warnings_are_parsed_and_round_trip():
    scenario = parse_scenario({"name": "w", "rules": [{"when": {"function": "8"},
                                                       "then": {"action": "warn", "warnings": [{"code": "W0002"}]}}],
                               "history": [{"function": "30", "warnings": [{"code": "W0001", "description": "chú ý"}]},
                                           {"function": "35"}]}, CODES)
    action = scenario.rules[0].action
    assert isinstance(action, WarnAction) and [w.code for w in action.warnings] == ["W0002"]
    step = scenario.history[0]
    assert [(w.code, w.description) for w in step.warnings] == [("W0001", "chú ý")]
    assert HistoryStep.from_data(step.to_data()) == step


@pytest.mark.parametrize("data,where", [
    ({"rules": [{"then": {"action": "warn", "warnings": [{"code": "S0005"}]}}]}, r"warnings\[0\]\.code: S0005 is not a W"),
    ({"rules": [{"then": {"action": "warn", "warnings": []}}]}, r"then\.warnings: must be a list of 1 to 100"),
    ({"rules": [{"then": {"action": "warn"}}]}, r"action 'warn' needs warnings"),
    ({"history": [{"function": "30", "warnings": [{"code": "W9999"}]}]}, r"history\[0\]\.warnings\[0\]\.code: unknown"),
    ({"history": [{"function": "30", "warnings": [{"code": "W0002", "colour": "red"}]}]}, r"unknown key 'colour'"),
])
def test_bad_warnings_are_refused_naming_the_key(data, where):
    with pytest.raises(ScenarioError, match=where):
        parse_scenario({"name": "bad", **data}, CODES)
