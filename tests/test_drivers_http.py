"""The HTTP driver against a tiny loopback automation endpoint that wraps the reference DTS."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from driver_helpers import environment, sut_folder
from reference_glue import action_from_json, environment_from_json, outcome_json

from conformance.drivers import Action, DriverError, load_driver
from conformance.drivers.reference import Killed, ReferenceDriver


class Endpoint(BaseHTTPRequestHandler):
    """A vendor's automation endpoint, as small as it gets: POST /<action>, JSON in, Outcome JSON out."""

    dts = ReferenceDriver()
    mode = "ok"

    def do_POST(self):  # noqa: N802 - http.server's naming
        request = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        action = self.path.rsplit("/", 1)[-1]
        if self.mode == "fail":
            return self._reply(500, b"internal error: database locked", "text/plain")
        if action == "configure":                  # (re)configure, then answer what the product shows (CAP-07)
            self.dts.start(environment_from_json(request["environment"]))
        if action == "kill":                       # REL-09: killed mid-action, started again over its state
            self.dts.kill()
            return self._reply(204, b"", "text/plain")
        if action == "journal":
            return self._reply(200, "".join(json.dumps(e) + "\n" for e in self.dts.journal()).encode(), "application/jsonl")
        try:
            outcome = self.dts.perform(action_from_json(request))
        except Killed:                             # this product was killed mid-action (REL-09): no answer
            return self._reply(500, b"killed", "text/plain")
        self._reply(200, outcome_json(outcome, action).encode(), "application/json")

    def _reply(self, status: int, body: bytes, content_type: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture
def endpoint():
    server = ThreadingHTTPServer(("127.0.0.1", 0), Endpoint)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/automation"
    server.shutdown()
    server.server_close()
    Endpoint.mode = "ok"


def http_sut(tmp_path, url: str, extra: str = "") -> Path:
    return sut_folder(tmp_path, 'statement = "ecdi-conformance.toml"\n'
                                '[[account]]\nuser_id = "nguyenvana"\n[[account]]\nuser_id = "tranthib"\n'   # SEC-08
                                f'[driver]\nkind = "http"\nurl = "{url}"\ntimeout_s = 60\n'
                                'actions = ["configure", "lodge", "amend", "cancel", "query", "pay-create", "pay-approve", '
                                '"request-otp", "resume", "kill"]\n'
                                f'{extra}')


@pytest.mark.long
def test_the_reference_dts_behind_an_automation_endpoint_is_conformant(tmp_path, endpoint, run_ecdi):
    run = run_ecdi(tmp_path / "out", "--sut", str(http_sut(tmp_path, endpoint)))
    assert run.returncode == 0, run.explain()
    assert set(run.verdicts().values()) == {"PASS"}
    request = tmp_path / "out" / "work" / "dts" / "transport.valid-declaration-accepted" / "driver" / "02-lodge.request.json"
    logged = json.loads(request.read_text(encoding="utf-8"))
    assert logged["environment"]["password"] == "***" and logged["type"] == "929" and "<" in logged["document"]
    assert logged["environment"]["crl_url"].endswith("/crl/declarant-ca.crl")     # SIG-12: the CRL, for products
    assert logged["environment"]["crl_access"] == "none"                          # that take it (none declared)


def test_an_endpoint_failure_is_a_clear_driver_error(tmp_path, endpoint):
    Endpoint.mode = "fail"
    driver = load_driver(str(http_sut(tmp_path, endpoint)))
    with pytest.raises(DriverError, match=r"action 'configure' \(POST .*/configure\): HTTP 500 .*database locked"):
        driver.start(environment(tmp_path))


def test_an_unreachable_endpoint_and_a_missing_action(tmp_path):
    driver = load_driver(str(http_sut(tmp_path, "http://127.0.0.1:9/automation")))
    with pytest.raises(DriverError, match="cannot reach the automation endpoint"):
        driver.start(environment(tmp_path))
    driver.actions.remove("amend")                 # a product without amendments lists no 'amend'
    with pytest.raises(DriverError, match="offers no 'amend'"):
        driver.perform(Action(kind="lodge", type="929", function="5", document=b"<a/>"))


def test_plain_http_only_to_loopback(tmp_path):
    with pytest.raises(DriverError, match=r"driver.url: 'http://vendor.example/a' must be an https:// URL"):
        load_driver(str(http_sut(tmp_path, "http://vendor.example/a")))
    assert load_driver(str(http_sut(tmp_path, "https://vendor.example/a"))).url == "https://vendor.example/a"
