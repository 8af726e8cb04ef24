"""The scenario builders of conformance/scenarios.py: every one is valid for the gateway, and the
seed failures do on the wire what their names say (plain client)."""

from __future__ import annotations

import pytest
import requests

from conformance import scenarios
from conformance.codec import soap, xmlsig
from test_gateway import PASSWORD, USER, case, client, control, gateway, parse_reply, pki  # noqa: F401

BUILT = {
    "accept": scenarios.accept(),
    "reply": scenarios.answered_alike("929", "8", "271", [{"code": "E9001"}], "busy"),
    "delay": scenarios.delay_first_attempt("929", "8", 0.2),
    "slow": scenarios.slow_reply("929", "8", 0.2),
    "overloaded": scenarios.overloaded("929", "8", retry_after=3),
    "overloaded-e9001": scenarios.overloaded("929", "8", mode="E9001"),
    "forged": scenarios.forged_reply("929", "8"),
    "untrusted": scenarios.forged_reply("929", "8", untrusted=True),
    "lost": scenarios.lost_reply("929", "8"),
    "expired-otp": scenarios.expired_otp(),
    "out-of-order": scenarios.out_of_order_history(),
    "general": scenarios.scenario("general", scenarios.rule({"action": "drip", "chunk_bytes": 512}, function="8",
                                                            times=2, probability=0.5),
                                  history=[{"function": "30"}, {"function": "33"}], pending_queries=1, seed=3,
                                  amend_cancel_history=[{"function": "31"}, {"function": "32"}]),
}


@pytest.mark.parametrize("name", sorted(BUILT))
def test_every_builder_makes_a_scenario_the_gateway_accepts(control, case, name):
    control.begin_case(case, BUILT[name])


def test_overloaded_answers_503_then_accepts(client, control, case):
    control.begin_case(case, BUILT["overloaded"])
    text = client.message()
    first = client.post(soap.send_request_body(text, USER, PASSWORD))
    assert (first.status_code, first.headers["Retry-After"]) == (503, "3")
    assert parse_reply(client.send(text)[1])[0].function == "29"


def test_lost_reply_resets_then_the_retransmission_gets_entry_1(client, control, case):
    control.begin_case(case, BUILT["lost"])
    text = client.message()
    with pytest.raises(requests.exceptions.ConnectionError):
        client.post(soap.send_request_body(text, USER, PASSWORD))
    assert parse_reply(client.send(text)[1])[0].function == "29"


def test_forged_reply_fails_verification(client, control, case):
    control.begin_case(case, BUILT["forged"])
    with pytest.raises(xmlsig.SignatureProblem):
        xmlsig.verify_envelope(client.send(client.message())[1])


@pytest.mark.parametrize("function, code", [("271", "U0002"), ("272", "E0075")])
def test_answered_alike_gives_a_retransmission_the_same_code(client, control, case, function, code):
    # reply.error-code-matrix: a DTS that gave up on a slow first attempt (the harness's load) and re-sent it
    # (REL-03) must meet the same code again, not an acceptance or the next declaration's code
    error = {"code": code, "field": "/Envelope/Body/Content/Declaration", "description": f"mã {code} (tra cứu 7)"}
    control.begin_case(case, scenarios.answered_alike("929", "8", function, [error], name=f"alike-{code}"))
    text = client.message()
    replies = [parse_reply(client.send(text)[1]) for _ in range(3)]
    assert {(h.function, r.result_code, r.errors[0].description) for h, r in replies} == \
        {(function, code, error["description"])}
    assert [ex.attempt for ex in control.exchanges(case)] == [1, 2, 3]
    other = parse_reply(client.send(client.message())[1])          # the next declaration: answered alike too
    assert (other[0].function, other[1].result_code) == (function, code)
