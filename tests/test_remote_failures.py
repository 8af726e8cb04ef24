"""Bad answers from the other end: the HTTP driver and the gateway-control client meet each failure with
one error naming the call, the endpoint and the cause, and the next call works (issue 13, item 7).

``responses`` plays the misbehaving vendor endpoint or gateway; the real-server tests are in
test_drivers_http.py and test_gateway.py.
"""

from __future__ import annotations

import json

import pytest
import requests
import responses
from driver_helpers import environment
from test_drivers_http import http_sut

from conformance import gateway_control, remote
from conformance.drivers import Action, DriverError, load_driver
from conformance.gateway_control import ControlError, GatewayControl, ScenarioRefused

URL = "https://vendor.example/automation"
CONTROL = "https://gateway.example/_control"
INFO = {"endpoint_url": "https://gateway.example/ecdi/CISService", "wsdl_url": "w", "crl_url": "c",
        "case_id": None, "accepted_versions": ["1.0"], "time_scale": 1.0}

# (what the other end does, the cause the error must name)
FAILURES = [
    (dict(body=requests.ConnectTimeout("connect timed out")), r"timeout: no connection within"),
    (dict(body=requests.ReadTimeout("read timed out")), r"timeout: no answer within"),
    (dict(body=requests.ConnectionError("[Errno 111] Connection refused")), r"connection refused"),
    (dict(body=requests.ConnectionError(ConnectionResetError(104, "Connection reset by peer"))), r"connection reset"),
    (dict(body=requests.ConnectionError("RemoteDisconnected('Remote end closed connection without response')")),
     r"connection closed without an answer"),
    (dict(body=requests.exceptions.SSLError("certificate verify failed")), r"TLS failure: certificate verify failed"),
    (dict(status=503, body="upstream busy", content_type="text/plain"), r"HTTP 503 Service Unavailable: 'upstream busy'"),
    (dict(status=502, body="<html>bad gateway</html>", content_type="text/html"), r"HTTP 502 Bad Gateway"),
    (dict(status=302, headers={"Location": "https://elsewhere.example/x"}, body=""),
     r"redirected \(HTTP 302\) to https://elsewhere.example/x; redirects are never followed"),
    (dict(status=200, body="<html>login</html>", content_type="text/html"), r"the answer is text/html, not JSON"),
    (dict(status=200, body="x" * 5000, content_type="application/json"), r"the answer exceeds 4,096 bytes \(oversized\)"),
]


@pytest.fixture
def small_answers(monkeypatch):
    monkeypatch.setattr(remote, "MAX_ANSWER_BYTES", 4096)
    monkeypatch.setattr(gateway_control, "MAX_CONTROL_ANSWER_BYTES", 4096)


@pytest.fixture
def mocked():
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        yield mock


def outcome(action: str) -> str:
    return json.dumps({"action": action, "state": "accepted", "submission_id": None})


@pytest.mark.parametrize("failure, cause", FAILURES, ids=[c for _, c in FAILURES])
def test_the_http_driver_names_action_endpoint_and_cause_and_goes_on(tmp_path, mocked, small_answers, failure, cause):
    driver = load_driver(str(http_sut(tmp_path, URL, 'ca_file = "ca.pem"\n')))
    (tmp_path / "sut" / "ca.pem").write_text("unused: responses answers before TLS")
    mocked.add(responses.POST, f"{URL}/configure", body="{}", content_type="application/json")
    driver.start(environment(tmp_path))
    mocked.add(responses.POST, f"{URL}/query", **failure)
    query = Action(kind="query", type="929", submission_id="S-1")
    with pytest.raises(DriverError, match=rf"^http driver, action 'query' \(POST {URL}/query\): {cause}") as exc:
        driver.perform(query)
    assert "\n" not in str(exc.value) and "Traceback" not in str(exc.value)
    mocked.replace(responses.POST, f"{URL}/query", body='{"action": "query"}', content_type="application/json")
    with pytest.raises(DriverError, match=r"action 'query'.*state"):   # the next call reaches the endpoint again
        driver.perform(query)


def test_malformed_json_from_the_automation_endpoint_is_named(tmp_path, mocked):
    driver = load_driver(str(http_sut(tmp_path, URL)))
    mocked.add(responses.POST, f"{URL}/configure", body="{", content_type="application/json")
    driver.start(environment(tmp_path))          # configure's answer is not read (docs/drivers.md)
    mocked.add(responses.POST, f"{URL}/lodge", body='{"action": "lodge", ', content_type="application/json")
    with pytest.raises(DriverError, match=r"action 'lodge'.*not JSON"):
        driver.perform(Action(kind="lodge", type="929", function="8", document=b"<a/>"))


@pytest.mark.parametrize("failure, cause", FAILURES, ids=[c for _, c in FAILURES])
def test_the_control_client_names_call_endpoint_and_cause_and_goes_on(mocked, small_answers, failure, cause):
    mocked.add(responses.GET, f"{CONTROL}/info", json=INFO)
    control = GatewayControl(CONTROL, token="t", ca_pem="ca.pem")
    mocked.add(responses.GET, f"{CONTROL}/clock", **failure)
    with pytest.raises(ControlError, match=rf"^gateway control API, GET /clock \({CONTROL}/clock\): {cause}") as exc:
        control.clock()
    assert "\n" not in str(exc.value)
    mocked.replace(responses.GET, f"{CONTROL}/clock", json={"offset": 0, "now": "2026-01-01T00:00:00+07:00"})
    assert control.clock()["offset"] == 0


@pytest.mark.parametrize("body, cause", [("{", r"the answer is not JSON"), ("[1, 2]", r"the answer is not a JSON object")])
def test_malformed_json_from_the_control_api_is_named(mocked, body, cause):
    mocked.add(responses.GET, f"{CONTROL}/info", json=INFO)
    control = GatewayControl(CONTROL, token="t", ca_pem="ca.pem")
    mocked.add(responses.GET, f"{CONTROL}/clock", body=body, content_type="application/json")
    with pytest.raises(ControlError, match=rf"GET /clock \({CONTROL}/clock\): {cause}"):
        control.clock()


def test_refusals_keep_the_gateways_explanation(mocked):
    mocked.add(responses.GET, f"{CONTROL}/info", json=INFO)
    control = GatewayControl(CONTROL, token="t", ca_pem="ca.pem")
    mocked.add(responses.POST, f"{CONTROL}/cases", status=400, json={"error": "rules[0].then: unknown action 'x'"})
    with pytest.raises(ScenarioRefused, match=r"^rules\[0\]\.then: unknown action 'x'$"):
        control.begin_case("c", {"name": "x"})
    mocked.add(responses.GET, f"{CONTROL}/prompts/p9", status=404, json={"error": "no prompt 'p9'"})
    with pytest.raises(ControlError, match=r"GET /prompts/p9 .*: HTTP 404: no prompt 'p9'"):
        control.prompt("p9")
