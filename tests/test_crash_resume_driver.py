"""REL-09's kill: the command driver kills the action's process group once the moment comes; the
reference driver's killed instance does no further I/O, and a fresh one resumes over the same state."""

from __future__ import annotations

import time

import pytest

from conformance.drivers import Action, DriverError
from test_drivers_command import LODGE, driver_for


def test_the_command_is_killed_when_the_moment_comes(tmp_path):
    driver, env = driver_for(tmp_path, "hang")
    started = time.monotonic()
    driver.perform_and_kill(LODGE, lambda: time.monotonic() - started > 0.3, timeout=10)
    assert time.monotonic() - started < 5
    assert "\tkilled\t" in (env.work_dir / "driver" / "commands.log").read_text(encoding="utf-8")
    assert driver.offers("lodge") and not driver.offers("amend")


def test_a_command_that_ends_before_the_moment_is_a_driver_error(tmp_path):
    driver, _ = driver_for(tmp_path, "ok")
    with pytest.raises(DriverError, match="ended .* before the moment to kill it came"):
        driver.perform_and_kill(LODGE, lambda: False, timeout=10)


def test_the_killed_reference_dts_is_inert():
    from conformance.drivers.reference import Killed, _Fuse

    fuse, calls = _Fuse(), []
    guarded = fuse.guard(lambda x: calls.append(x) or x)
    assert guarded(1) == 1
    fuse.blow()
    with pytest.raises(Killed):
        guarded(2)
    assert calls == [1]
    assert not isinstance(Killed(), Exception)      # no ``except Exception`` of the DTS can swallow it


def test_resume_is_a_user_action():
    from conformance.drivers.protocol import ACTIONS, user_action

    assert "resume" in ACTIONS and user_action(Action(kind="resume")) == "resume"
