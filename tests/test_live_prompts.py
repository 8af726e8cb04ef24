"""Operator prompts on the gateway's live page: the control API from a plain client, the manual
driver with ``console = "live"`` end to end (a script plays the operator through the HTTP answer
endpoint, no terminal), and the page itself in headless Chromium."""

from __future__ import annotations

import json
import os
import queue
import re
import shutil
import sqlite3
import subprocess
import sys
import threading
import time

import pytest
import requests
from driver_helpers import sut_folder

from conformance.pki import TestPKI
from conftest import SELFTEST_SCALE, SELFTEST_SEED
from test_gateway import PASSWORD, case, control, gateway, pki  # noqa: F401
from test_live_page import CHROMIUM, dump_dom

CASE = "transport.valid-declaration-accepted"
DTS = [sys.executable, "-m", "conformance.reference_dts"]
SETTINGS = re.compile(r"^  (\w+) +(.+?)\r?$", re.M)
OPERATOR = "Trần Thị B (test script)"


# --- the operator's product, shared with test_drivers_manual ---------------------------------------
def configure_product(settings: dict, work: str) -> None:
    """Point the 'GUI product' (the reference DTS program) at the settings the operator was shown."""
    flags = [a for k in ("endpoint", "tls_ca", "sign_anchor", "ca_trust_list", "p12", "user_id", "tax_code",
                         "declarant_name", "office", "office_name", "profile", "time_scale")
             for a in (f"--{k.replace('_', '-')}", settings[k])]
    subprocess.run([*DTS, "configure", "--work-dir", work, *flags], check=True, timeout=30)


def lodge_with_product(settings: dict, work: str, document: str) -> dict:
    """Lodge ``document`` with the product; what it showed its user (the Outcome JSON)."""
    env = {**os.environ, "ECDI_PASSWORD": settings["password"], "ECDI_P12_PASSWORD": settings["p12_password"]}
    shown = subprocess.run([*DTS, "lodge", "--work-dir", work, "--document", document, "--type", "929"],
                           env=env, capture_output=True, text=True, check=True, timeout=60)
    return json.loads(shown.stdout)


# --- the API from a plain client --------------------------------------------------------------------
@pytest.fixture
def api(gateway, pki):
    """A plain HTTPS client of the control API (what the live page's script does)."""
    session = requests.Session()
    session.trust_env = False
    session.verify = str(pki.tls_ca_pem)
    session.headers["X-ECDI-Control"] = gateway.control_token
    base = gateway.control_url
    yield lambda method, path, **kw: session.request(method, base + path, timeout=30, **kw)
    session.close()


def prompt_body(case: str, **changes) -> dict:
    return {"case_id": case, "name": "state", "question": "State shown",
            "instruction": "Lodge the declaration in /tmp/02-lodge.xml (type 929) with the product now.",
            "choices": ["accepted", "cleared", "rejected"], "timeout_s": 30, **changes}


def test_post_answer_and_read_a_prompt(api, gateway, case):
    posted = api("POST", "/prompts", json=prompt_body(case))
    assert posted.status_code == 200, posted.text
    prompt = posted.json()
    assert prompt["status"] == "open" and prompt["answer"] is None and 0 < prompt["seconds_left"] <= 30
    assert [p["prompt_id"] for p in api("GET", "/prompts?status=open").json()["prompts"]] == [prompt["prompt_id"]]
    assert api("GET", "/live").json()["prompts"][0]["question"] == "State shown"

    refused = api("POST", f"/prompts/{prompt['prompt_id']}/answer", json={"answer": "maybe", "operator": OPERATOR})
    assert refused.status_code == 400 and "'maybe' is not one of accepted, cleared, rejected" in refused.json()["error"]
    answered = api("POST", f"/prompts/{prompt['prompt_id']}/answer", json={"answer": "cleared", "operator": OPERATOR})
    assert answered.status_code == 200, answered.text

    read = api("GET", f"/prompts/{prompt['prompt_id']}").json()
    assert (read["status"], read["answer"], read["operator"]) == ("answered", "cleared", OPERATOR)
    assert read["answered_at"] and isinstance(read["evidence_seq"], int)
    again = api("POST", f"/prompts/{prompt['prompt_id']}/answer", json={"answer": "rejected", "operator": OPERATOR})
    assert again.status_code == 409 and "closed: answered" in again.json()["error"]

    # the attestation is a row of the hash-chained evidence log, not an exchange with the product
    rows = {r["seq"]: r for r in gateway.gateway.evidence.rows(case)}
    attested = rows[read["evidence_seq"]]["gateway_verdict"]["operator_attestation"]
    assert (attested["answer"], attested["operator"], attested["question"]) == ("cleared", OPERATOR, "State shown")
    assert "X-ECDI-Control" not in rows[read["evidence_seq"]]["request_headers"]
    assert api("GET", f"/exchanges?case_id={case}").json()["exchanges"] == []
    assert api("GET", "/evidence/verify").json() == {"ok": True, "first_bad_row": None}


def test_a_pattern_and_free_answers(api, case):
    numbered = api("POST", "/prompts", json=prompt_body(case, name="reception_number", choices=[],
                                                        pattern="[0-9]{10}|")).json()
    url = f"/prompts/{numbered['prompt_id']}/answer"
    assert "does not match" in api("POST", url, json={"answer": "12", "operator": OPERATOR}).json()["error"]
    assert api("POST", url, json={"answer": "", "operator": OPERATOR}).json()["answer"] == ""
    free = api("POST", "/prompts", json=prompt_body(case, name="error", choices=[])).json()
    done = api("POST", f"/prompts/{free['prompt_id']}/answer", json={"answer": " E0001|x|y ", "operator": OPERATOR})
    assert done.json()["answer"] == "E0001|x|y"


@pytest.mark.parametrize("changes,message", [
    ({"colour": "red", "size": 1}, "unknown keys 'colour', 'size' (known: case_id, name, question"),
    ({"case_id": ""}, "case_id: must be a non-empty string"),
    ({"name": "State shown"}, "name: must match"),
    ({"question": 42}, "question: must be a string of at most 500 characters, got 42"),
    ({"question": "", "choices": ["a"]}, "question: a notice (no question) takes no choices or pattern"),
    ({"pattern": "[0-9]+"}, "pattern: give choices or a pattern, not both"),
    ({"choices": [], "pattern": "(["}, "pattern: not a regular expression"),
    ({"choices": ["a", "a"]}, "choices: must be a list of at most 50 distinct"),
    ({"timeout_s": 0}, "timeout_s: must be a number of seconds"),
    ({"timeout_s": True}, "timeout_s: must be a number of seconds"),
    ({"question": "Line one\x07"}, "question: control characters are not allowed"),
    ({"instruction": f"  password        {PASSWORD}"}, "holds a password; the live page never shows passwords"),
])
def test_bad_prompts_are_refused_with_a_message(api, case, changes, message):
    response = api("POST", "/prompts", json=prompt_body(case, **changes))
    assert response.status_code == 400 and message in response.json()["error"], response.text


def test_bad_answers_and_unknown_prompts_are_refused(api, case):
    prompt = api("POST", "/prompts", json=prompt_body(case)).json()
    url = f"/prompts/{prompt['prompt_id']}/answer"
    for body, message in (({"answer": "cleared"}, "operator: must be a non-empty string"),
                          ({"answer": "cleared", "operator": OPERATOR, "by": "me"}, "unknown key 'by'"),
                          ({"answer": None, "operator": OPERATOR}, "answer: must be a string"),
                          (["cleared"], "body: must be a JSON object")):
        response = api("POST", url, json=body)
        assert response.status_code == 400 and message in response.json()["error"], response.text
    assert api("POST", url, data=b"{not json").json()["error"] == "body is not JSON"
    assert api("GET", "/prompts/p999").status_code == 404
    assert api("POST", "/prompts/p999/answer", json={"answer": "", "operator": OPERATOR}).status_code == 404
    assert api("GET", f"/prompts/{prompt['prompt_id']}").json()["status"] == "open", "refusals leave it open"


def test_answers_need_the_token(gateway, pki, case, api):
    prompt = api("POST", "/prompts", json=prompt_body(case)).json()
    response = requests.post(f"{gateway.control_url}/prompts/{prompt['prompt_id']}/answer",
                             json={"answer": "cleared", "operator": OPERATOR}, verify=str(pki.tls_ca_pem), timeout=30)
    assert response.status_code == 403
    assert api("GET", f"/prompts/{prompt['prompt_id']}").json()["status"] == "open"


def test_an_answer_after_the_deadline_is_refused(api, case):
    prompt = api("POST", "/prompts", json=prompt_body(case, timeout_s=0.3)).json()
    time.sleep(0.5)
    late = api("POST", f"/prompts/{prompt['prompt_id']}/answer", json={"answer": "cleared", "operator": OPERATOR})
    assert late.status_code == 409 and "its deadline passed at" in late.json()["error"]
    assert api("GET", f"/prompts/{prompt['prompt_id']}").json()["status"] == "expired"


def test_the_next_case_withdraws_open_prompts(api, control, case):
    prompt = api("POST", "/prompts", json=prompt_body(case)).json()
    control.begin_case(case + "-next", {"name": "default"})
    assert api("GET", f"/prompts/{prompt['prompt_id']}").json()["status"] == "withdrawn"
    late = api("POST", f"/prompts/{prompt['prompt_id']}/answer", json={"answer": "cleared", "operator": OPERATOR})
    assert late.status_code == 409 and "withdrawn" in late.json()["error"]


def test_the_client_methods(control, case):
    prompt = control.post_prompt(case, "setup", "Press Enter when the product is configured", timeout_s=30)
    assert control.prompts("open")[-1]["prompt_id"] == prompt["prompt_id"]
    assert control.answer_prompt(prompt["prompt_id"], "", OPERATOR)["status"] == "answered"
    assert control.prompt(prompt["prompt_id"])["operator"] == OPERATOR
    assert "/live?token=" in control.live_page_url()


# --- the page -------------------------------------------------------------------------------------
@pytest.mark.skipif(not shutil.which(CHROMIUM), reason="Chromium is not installed")
def test_live_page_shows_the_open_prompt(gateway, control, case, tmp_path):
    control.post_prompt(case, "state", "State shown", choices=["accepted", "cleared"], timeout_s=60,
                        instruction="Lodge the declaration in /tmp/02-lodge.xml (type 929) with the product now.")
    base = gateway.endpoint_url.rsplit("/ecdi/", 1)[0]
    dom = dump_dom(f"{base}/live?token={gateway.control_token}", tmp_path / "chromium")
    assert "Lodge the declaration in /tmp/02-lodge.xml (type 929) with the product now." in dom
    assert '<div class="question">State shown</div>' in dom and f"Case {case}" in dom
    assert '<button class="choice" type="button">cleared</button>' in dom and "answer within" in dom
    assert PASSWORD not in dom


# --- the manual driver through the live page, end to end ----------------------------------------------
class LiveRun:
    """``ecdi run`` with ``console = "live"`` in a subprocess without a terminal; the test reads its
    stderr (the live page URL and the passwords) and plays the operator over HTTP."""

    def __init__(self, tmp_path, pki_dir, answer_s: float):
        sut = sut_folder(tmp_path, 'statement = "ecdi-conformance.toml"\n[driver]\nkind = "manual"\n'
                                   f'console = "live"\nwait_s = 30\nanswer_s = {answer_s}\n')
        argv = [sys.executable, "-m", "conformance.cli", "run", "--sut", str(sut), "--out", str(tmp_path / "out"),
                "--time-scale", SELFTEST_SCALE, "--seed", SELFTEST_SEED, "--pki-dir", str(pki_dir), "--case", CASE]
        self.out = tmp_path / "out"
        self.stdout = open(tmp_path / "stdout.txt", "w")
        self.process = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=self.stdout, stderr=subprocess.PIPE,
                                        text=True, start_new_session=True)
        self.lines: queue.Queue = queue.Queue()
        threading.Thread(target=lambda: [self.lines.put(line) for line in self.process.stderr], daemon=True).start()
        self.stderr = ""
        url = self.wait_for(r"(https://\S+)/live\?token=(\S+)")
        self.wait_for(r"p12_password +\S+\n")
        self.secrets = {k: v for k, v in SETTINGS.findall(self.stderr) if k in ("password", "p12_password")}
        self.http = requests.Session()
        self.http.trust_env = False
        self.http.verify = str(TestPKI.ensure(pki_dir).tls_ca_pem)
        self.http.headers["X-ECDI-Control"] = url.group(2)
        self.control = url.group(1) + "/_control"

    def wait_for(self, pattern: str, timeout: float = 60):
        deadline = time.monotonic() + timeout
        while not (found := re.search(pattern, self.stderr)):
            try:
                self.stderr += self.lines.get(timeout=max(0.01, deadline - time.monotonic()))
            except queue.Empty:
                raise AssertionError(f"ecdi run printed no {pattern!r} on stderr:\n{self.stderr}") from None
        return found

    def prompt(self, name: str, timeout: float = 60) -> dict:
        """The open prompt named ``name``, as the live page would show it."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = [p for p in self.http.get(self.control + "/prompts?status=open", timeout=30).json()["prompts"]
                     if p["name"] == name]
            if found:
                return found[-1]
            time.sleep(0.1)
        raise AssertionError(f"no open prompt {name!r}")

    def answer(self, prompt: dict, answer: str) -> requests.Response:
        return self.http.post(f"{self.control}/prompts/{prompt['prompt_id']}/answer",
                              json={"answer": answer, "operator": OPERATOR}, timeout=30)

    def operate_the_product(self, work: str) -> tuple[dict, dict]:
        """Configure the product from the page's set-up prompt, lodge what the next instruction names."""
        setup = self.prompt("setup")
        settings = {**dict(SETTINGS.findall(setup["instruction"])), **self.secrets}
        configure_product(settings, work)
        assert self.answer(setup, "").status_code == 200
        notice = self.prompt("notice")         # shown while the harness waits for the product's traffic
        document = re.search(r"Lodge the declaration in (\S+) \(type 929\)", notice["instruction"]).group(1)
        assert self.answer(notice, "").status_code == 409, "a notice takes no answer"
        shown = lodge_with_product(settings, work, document)
        state = self.prompt("state")
        assert "the gateway saw 1 request(s) of type 929" in state["instruction"]
        return setup, state | {"shown": shown}

    def finish(self) -> dict:
        self.process.wait(timeout=120)
        self.stdout.close()
        return json.loads((self.out / "results.json").read_text(encoding="utf-8"))["cases"][0]


def test_an_operator_answering_on_the_live_page_gets_a_verdict(tmp_path, pki_dir):
    run = LiveRun(tmp_path, pki_dir, answer_s=30)
    assert set(run.secrets) >= {"password", "p12_password"}
    setup, state = run.operate_the_product(str(tmp_path / "product"))
    assert not any(secret in setup["instruction"] for secret in run.secrets.values()), "no password on the page"
    assert "passwords       printed on the terminal running ecdi run" in setup["instruction"]
    shown = state["shown"]
    assert run.answer(state, "maybe").status_code == 400  # the page refuses it; the prompt stays open
    assert run.answer(state, shown["state"]).status_code == 200
    assert run.answer(run.prompt("reception_number"), shown["reception_number"]).status_code == 200
    assert run.answer(run.prompt("declaration_number"), shown["declaration_number"]).status_code == 200
    assert run.answer(run.prompt("error"), "").status_code == 200
    case = run.finish()
    assert case["verdict"] == "PASS", case
    assert "operator-attestation" in case["evidence"], "the verdict rests on the operator's word"
    attested = (run.out / "work" / "dts" / CASE / "operator-attestation.jsonl").read_text(encoding="utf-8")
    last = json.loads(attested.splitlines()[-1])
    assert last["state"] == "cleared" and last["declaration_number"] == shown["declaration_number"]
    assert last["console"] == "live" and {a["operator"] for a in last["answers"]} == {OPERATOR}
    assert [a["question"] for a in last["answers"]] == ["setup", "state", "reception_number", "declaration_number",
                                                        "error"]
    db = sqlite3.connect(run.out / "evidence" / "evidence.sqlite3")
    verdicts = [json.loads(v) for (v,) in db.execute("SELECT gateway_verdict FROM exchanges WHERE seq = ?",
                                                    (last["answers"][1]["evidence_seq"],))]
    db.close()
    assert verdicts[0]["operator_attestation"]["answer"] == "cleared"


def test_no_answer_on_the_live_page_in_time_is_never_a_pass(tmp_path, pki_dir):
    run = LiveRun(tmp_path, pki_dir, answer_s=4)
    run.operate_the_product(str(tmp_path / "product"))   # ... and the operator walks away from the browser
    case = run.finish()
    assert case["verdict"] == "INCONCLUSIVE", case
    assert "operator-attestation" in case["evidence"]
    assert "the operator gave no answer to 'state' within 4 s" in case["reason"]


def test_live_console_without_a_gateway_says_so(tmp_path):
    from conformance.drivers import DriverError, load_driver
    from driver_helpers import environment

    path = sut_folder(tmp_path, 'statement = "ecdi-conformance.toml"\n[driver]\nkind = "manual"\nconsole = "live"\n')
    with pytest.raises(DriverError, match="needs the gateway's live page"):
        load_driver(str(path)).start(environment(tmp_path))
