"""The command driver: placeholders, secrets, timeouts, exit codes, garbage, and the reference DTS
run as a separate program through it for a whole session."""

from __future__ import annotations

import json
import textwrap

import pytest
from driver_helpers import REFERENCE_SUT, environment, sut_folder

from conformance.drivers import Action, DriverError, load_driver

FAKE = textwrap.dedent('''
    import json, os, sys, time
    mode = sys.argv[1]
    request = json.load(sys.stdin)
    print("progress on stderr", file=sys.stderr)
    if mode == "ok":
        print(json.dumps({"action": request["action"], "state": "cleared", "declaration_number": "100000000001",
                          "errors": [], "notifications": [{"kind": "customs-result", "code": "32", "text": "Thông quan"}],
                          "seen": None} if "extra" in sys.argv else
                         {"action": request["action"], "state": "cleared", "declaration_number": "100000000001",
                          "notifications": [{"kind": "customs-result", "code": "32", "text": "Thông quan"}]}))
    elif mode == "env":
        print(json.dumps({"action": request["action"], "state": "accepted",
                          "raised": "|".join([os.environ["ECDI_PASSWORD"], os.environ["ECDI_P12_PASSWORD"],
                                                    " ".join(sys.argv[2:]), json.dumps(request)])}))
    elif mode == "hang":
        time.sleep(60)
    elif mode == "crash":
        print("Traceback: the product crashed", file=sys.stderr)
        sys.exit(3)
    elif mode == "garbage":
        print("<html>Login</html>")
    elif mode == "schema":
        print(json.dumps({"action": request["action"], "state": "fine", "errors": [{"code": 1}]}))
    elif mode == "journal":
        print(json.dumps({"event": "notification", "text": "ok"}))
        print("")
        print(json.dumps({"event": "attempt"}))
''')


def driver_for(tmp_path, lodge_mode: str, *extra: str, timeout: float = 10):
    (tmp_path / "fake.py").write_text(FAKE, encoding="utf-8")
    args = ", ".join(json.dumps(a) for a in extra)
    sut = sut_folder(tmp_path, textwrap.dedent(f'''
        statement = "ecdi-conformance.toml"
        [driver]
        kind = "command"
        timeout_s = {timeout}
        journal = ["{{python}}", "{{sut_dir}}/../fake.py", "journal"]
        [driver.actions]
        lodge = ["{{python}}", "{{sut_dir}}/../fake.py", "{lodge_mode}"{", " + args if args else ""}]
        query = ["{{python}}", "{{sut_dir}}/../fake.py", "ok", "{{submission}}"]
        '''))
    driver = load_driver(str(sut))
    env = environment(tmp_path)
    driver.start(env)
    return driver, env


LODGE = Action(kind="lodge", type="929", function="8", document="<d>Hải</d>".encode())


def test_a_valid_result_becomes_the_outcome(tmp_path):
    driver, env = driver_for(tmp_path, "ok")
    outcome = driver.perform(LODGE)
    assert (outcome.action, outcome.state, outcome.declaration_number) == ("lodge", "cleared", "100000000001")
    assert outcome.notifications[0].text == "Thông quan"
    evidence = env.work_dir / "driver"
    assert (evidence / "01-lodge.stderr").read_text(encoding="utf-8").strip() == "progress on stderr"
    assert (evidence / "01-lodge.xml").read_bytes() == LODGE.document
    assert "01-lodge\t0\t" in (evidence / "commands.log").read_text(encoding="utf-8")
    assert [e["event"] for e in driver.journal()] == ["notification", "attempt"]


def test_passwords_travel_in_the_environment_and_never_in_the_evidence(tmp_path):
    driver, env = driver_for(tmp_path, "env", "{document}", "{type}", "{function}", "{office}", "{password}")
    raised = driver.perform(LODGE).raised
    env_password, p12_password, argv, request = raised.split("|", 3)
    assert (env_password, p12_password) == (env.password, env.p12_password)
    assert argv.split()[1:] == ["929", "8", "03TG", env.password]  # {password} works but is discouraged
    assert json.loads(request) == {"action": "lodge", "type": "929", "function": "8", "business_ref": None,
                                   "submission": None, "otp": None, "user": env.user_id, "document": argv.split()[0]}
    log = (env.work_dir / "driver" / "commands.log").read_text(encoding="utf-8")
    assert env.password not in log and "***" in log


@pytest.mark.parametrize("mode,message", [
    ("crash", r"action 'lodge': exit code 3 from .*: progress on stderr \| Traceback: the product crashed"),
    ("garbage", r"action 'lodge': the result is not JSON .*'<html>Login</html>'"),
    ("schema", r"breaks the Outcome schema: state 'fine' is not one of .*errors must be a list of objects"),
])
def test_a_misbehaving_command_is_a_clear_driver_error(tmp_path, mode, message):
    driver, _ = driver_for(tmp_path, mode)
    with pytest.raises(DriverError, match=message):
        driver.perform(LODGE)


def test_unknown_result_members_are_refused(tmp_path):
    driver, _ = driver_for(tmp_path, "ok", "extra")
    with pytest.raises(DriverError, match=r"unknown member\(s\) \['seen'\]"):
        driver.perform(LODGE)


def test_a_hanging_command_is_killed_at_its_timeout(tmp_path):
    driver, env = driver_for(tmp_path, "hang", timeout=0.5)
    with pytest.raises(DriverError, match=r"action 'lodge': no result within 0.5 s \(timeout\); the command was killed"):
        driver.perform(LODGE)
    assert "\ttimeout\t" in (env.work_dir / "driver" / "commands.log").read_text(encoding="utf-8")


def test_one_template_serves_every_action_and_missing_actions_are_named(tmp_path):
    """A placeholder with no value for the action is empty, so a single template can serve every action."""
    from conformance.profile import load_profile

    driver, env = driver_for(tmp_path, "env", "{action}", "{submission}", "{otp}", "{central_office}")
    argv = driver.perform(LODGE).raised.split("|")[2]
    assert argv == f"lodge   {load_profile(env.profile_id).deployment['central_office']}"   # no submission, no OTP
    with pytest.raises(DriverError, match=r"\[driver\] actions offer no 'amend'"):
        driver.perform(Action(kind="lodge", type="929", function="5", document=b"<a/>"))


def test_an_unknown_placeholder_is_the_sut_files_fault(tmp_path):
    driver, _ = driver_for(tmp_path, "{nonsense}")
    with pytest.raises(DriverError, match=r"unknown placeholder \{nonsense\}"):
        driver.perform(LODGE)


@pytest.mark.long
def test_the_reference_dts_as_a_program_is_conformant(tmp_path, run_ecdi):
    run = run_ecdi(tmp_path / "out", "--sut", str(REFERENCE_SUT))
    assert run.returncode == 0, run.explain()
    assert set(run.verdicts().values()) == {"PASS"} and run.results["overall"] == "CONFORMANT"
    assert run.results["sut"]["driver"] == str(REFERENCE_SUT)
    work = tmp_path / "out" / "work" / "dts" / "transport.valid-declaration-accepted"
    assert (work / "driver" / "02-lodge.stdout").exists() and (work / "dts-config.json").exists()


def test_a_mutant_run_as_a_program_is_still_caught(tmp_path, run_ecdi):
    """The driver passes the product's defects through: signs-sha1 behind the command driver still FAILs."""
    text = REFERENCE_SUT.read_text(encoding="utf-8").replace(
        '"--environment", "{environment}"]', '"--environment", "{environment}", "--mutant", "signs-sha1"]')
    assert "signs-sha1" in text
    run = run_ecdi(tmp_path / "out", "--sut", str(sut_folder(tmp_path, text)), "--case", "signature.sha256-only")
    assert run.verdicts() == {"signature.sha256-only": "FAIL"}, run.results["cases"]


def test_a_garbage_printing_product_gives_error_verdicts_and_the_run_goes_on(tmp_path, run_ecdi):
    (tmp_path / "fake.py").write_text(FAKE, encoding="utf-8")
    sut = sut_folder(tmp_path, 'statement = "ecdi-conformance.toml"\n[driver]\nkind = "command"\n'
                               'actions = { lodge = ["{python}", "{sut_dir}/../fake.py", "garbage"] }\n')
    run = run_ecdi(tmp_path / "out", "--sut", str(sut), "--case", "transport.valid-declaration-accepted",
                   "--case", "signature.sha256-only")
    assert run.returncode == 1 and run.results["overall"] != "CONFORMANT"
    for case in run.results["cases"]:
        assert case["verdict"] == "ERROR" and "the result is not JSON" in case["reason"], case
