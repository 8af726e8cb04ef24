"""The command driver's server mode: one long-lived product process, one JSON line per request and per answer;
timeouts, deaths, garbage and REL-09's kill restart it; and the reference DTS behind it passes real cases."""

from __future__ import annotations

import json
import os
import textwrap
import time

import pytest
from driver_helpers import environment, sut_folder

from conformance.commands.run import EXIT_CODES
from conformance.drivers import Action, DriverError, load_driver
from conformance.drivers.server import ServerDriver

FAKE = textwrap.dedent('''
    import json, os, sys, time
    print("started", os.getpid(), file=sys.stderr, flush=True)
    for line in sys.stdin:
        request = json.loads(line)
        mode = request.get("document") or "ok"
        print("got", request["action"], mode, file=sys.stderr, flush=True)
        if mode == "hang":
            time.sleep(60)
        elif mode == "die":
            print("fatal: out of memory", file=sys.stderr, flush=True)
            sys.exit(3)
        elif mode == "garbage":
            print("<html>Login</html>", flush=True)
        elif mode == "error":
            print(json.dumps({"error": "the product's window did not open"}), flush=True)
        elif request["action"] == "journal":
            print(json.dumps([{"event": "attempt"}, {"event": "notification", "text": "ok"}]), flush=True)
        else:
            print(json.dumps({"action": request["action"], "state": "accepted",
                              "raised": json.dumps({"pid": os.getpid(), "request": request,
                                                    "env_password": os.environ.get("ECDI_PASSWORD")})}), flush=True)
''')


def server_driver(tmp_path, timeout: float = 10) -> ServerDriver:
    (tmp_path / "fake.py").write_text(FAKE, encoding="utf-8")
    sut = sut_folder(tmp_path, textwrap.dedent(f'''
        statement = "ecdi-conformance.toml"
        [driver]
        kind = "command"
        server = ["{{python}}", "{{sut_dir}}/../fake.py", "--state", "{{run_dir}}"]
        actions = ["configure", "lodge", "query", "resume"]
        timeout_s = {timeout}
        '''))
    driver = load_driver(str(sut))
    assert isinstance(driver, ServerDriver)
    return driver


def lodge(mode: str = "ok") -> Action:
    return Action(kind="lodge", type="929", function="8", document=mode.encode())


def seen(outcome) -> dict:
    return json.loads(outcome.raised)


@pytest.fixture
def driver(tmp_path):
    driver = server_driver(tmp_path)
    yield driver
    driver.close()


def test_one_process_answers_every_request_and_every_case(tmp_path, driver):
    env = environment(tmp_path)
    driver.start(env)
    first = seen(driver.perform(lodge()))
    request = first["request"]
    assert request["action"] == "lodge" and request["document"] == "ok" and request["type"] == "929"
    assert request["environment"]["password"] == env.password and request["environment"]["p12_password"] == env.p12_password
    assert request["environment"]["central_office"] and request["environment"]["work_dir"] == str(env.work_dir)
    assert first["env_password"] is None                   # SEC-01: passwords travel in the request only
    driver.stop()
    driver.start(env)                                      # a restart on the same state: the same process
    assert seen(driver.perform(Action(kind="query", type="929", submission_id="m-1")))["pid"] == first["pid"]
    evidence = env.work_dir / "driver"
    logged = json.loads((evidence / "02-lodge.request.json").read_text(encoding="utf-8"))
    assert logged["environment"]["password"] == "***" and env.password not in json.dumps(logged)
    assert "got lodge ok" in (evidence / "02-lodge.stderr").read_text(encoding="utf-8")
    assert [e["event"] for e in driver.journal()] == ["attempt", "notification"]


@pytest.mark.parametrize("mode,message", [
    ("die", r"action 'lodge': the product's process ended \(exit code 3\) without answering: .*fatal: out of memory"),
    ("garbage", r"action 'lodge': the result is not JSON .*'<html>Login</html>'"),
    ("error", r"action 'lodge': the product could not act: the product's window did not open"),
])
def test_a_misbehaving_process_is_a_clear_driver_error_and_the_next_request_is_served(tmp_path, driver, mode, message):
    driver.start(environment(tmp_path))
    pid = seen(driver.perform(lodge()))["pid"]
    with pytest.raises(DriverError, match=message):
        driver.perform(lodge(mode))
    again = seen(driver.perform(lodge()))
    assert (again["pid"] == pid) == (mode == "error")      # out of step or dead: started again


def test_a_hanging_process_is_killed_at_the_actions_timeout(tmp_path):
    driver = server_driver(tmp_path, timeout=0.5)
    env = environment(tmp_path)
    try:
        driver.start(env)
        pid = seen(driver.perform(lodge()))["pid"]
        with pytest.raises(DriverError, match=r"no answer within 0.5 s \(timeout\); the product's process was killed"):
            driver.perform(lodge("hang"))
        assert not _alive(pid) and seen(driver.perform(lodge()))["pid"] != pid
        assert "\ttimeout\t" in (env.work_dir / "driver" / "commands.log").read_text(encoding="utf-8")
    finally:
        driver.close()


def test_rel09_kill_is_a_sigkill_and_the_next_request_starts_the_product_again(tmp_path, driver):
    driver.start(environment(tmp_path))
    pid = seen(driver.perform(lodge()))["pid"]
    moment = time.monotonic() + 0.3
    driver.perform_and_kill(lodge("hang"), lambda: time.monotonic() > moment, timeout=10)
    assert not _alive(pid)
    assert seen(driver.perform(Action(kind="resume")))["request"]["action"] == "resume"
    with pytest.raises(DriverError, match="the product answered before the moment to kill it came"):
        driver.perform_and_kill(lodge(), lambda: False, timeout=10)
    assert seen(driver.perform(lodge()))["request"]["action"] == "lodge"   # no stale answer in between


def test_close_ends_the_process_and_a_missing_resume_is_inconclusive(tmp_path, driver):
    from conformance.drivers.base import DriverInconclusive

    driver.start(environment(tmp_path))
    pid = seen(driver.perform(lodge()))["pid"]
    driver.close()
    assert not _alive(pid)
    driver.actions = ("lodge",)
    with pytest.raises(DriverInconclusive, match="offer no 'resume'; REL-09 needs the product started again"):
        driver.perform(Action(kind="resume"))


@pytest.mark.parametrize("settings,message", [
    ('server = "java -jar dts.jar --serve"\nactions = ["lodge", "kill"]',
     r"driver.actions: with server, a list .* found \['lodge', 'kill'\]"),
    ('server = "java -jar dts.jar --password {password} --dir {work_dir}"',
     r"driver.server: placeholder\(s\) \{password\}, \{work_dir\} not allowed here"),
])
def test_server_mode_settings_are_checked(tmp_path, settings, message):
    with pytest.raises(DriverError, match=message):
        load_driver(str(sut_folder(tmp_path, f'statement = "ecdi-conformance.toml"\n[driver]\nkind = "command"\n'
                                             f'{settings}\n')))


def test_the_reference_dts_behind_server_mode_passes_cases_that_restart_and_kill_it(tmp_path, run_ecdi):
    glue = os.path.join(os.path.dirname(__file__), "reference_glue.py")
    sut = sut_folder(tmp_path, 'statement = "ecdi-conformance.toml"\n'
                               '[[account]]\nuser_id = "nguyenvana"\n[[account]]\nuser_id = "tranthib"\n'
                               f'[driver]\nkind = "command"\nserver = ["{{python}}", "{glue}"]\ntimeout_s = 60\n'
                               f'[driver.env]\nPYTHONPATH = "{os.pathsep.join(_test_path())}"\n')
    cases = ["transport.valid-declaration-accepted", "reliability.resume-after-crash",
             "capability.configured-environment-shown", "envelope.installation-id"]
    run = run_ecdi(tmp_path / "out", "--sut", str(sut), *(a for c in cases for a in ("--case", c)))
    assert run.returncode == EXIT_CODES["INCOMPLETE"], run.explain()   # some cases only: never CONFORMANT
    assert run.verdicts() == dict.fromkeys(cases, "PASS"), run.results["cases"]
    log = (tmp_path / "out" / "work" / "dts" / "reliability.resume-after-crash" / "driver" / "commands.log")
    assert "\tkilled\t" in log.read_text(encoding="utf-8")


def _test_path() -> list[str]:
    """The glue imports the harness (this tree) and the tests folder."""
    return [os.path.dirname(__file__), *filter(None, os.environ.get("PYTHONPATH", "").split(os.pathsep))]


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:                                                    # a zombie is dead too
        with open(f"/proc/{pid}/stat", encoding="ascii") as stat:
            return stat.read().split(")")[-1].split()[0] != "Z"
    except OSError:
        return False
