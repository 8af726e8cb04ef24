"""The Java 17 example DTS (examples/java-dts) passes a whole session through the command driver's server mode
(one JVM), and its per-action variant (a JVM per action) still works.

It shows vendors a non-Python integration: JDK-only signing (javax.xml.crypto), HTTPS (java.net.http),
reply verification, polling and the Outcome JSON on stdout.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from conformance.catalogue import all_cases
from conformance.statement import load_statement

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "java-dts"


def java_17_or_later() -> bool:
    if shutil.which("java") is None:
        return False
    version = subprocess.run(["java", "-version"], capture_output=True, text=True).stderr
    match = re.search(r'version "(\d+)', version)
    return bool(match) and int(match.group(1)) >= 17


needs_java = pytest.mark.skipif(not java_17_or_later(), reason="the Java example needs `java` 17 or later on PATH")


def test_the_examples_statement_is_valid():
    assert load_statement(EXAMPLE / "ecdi-conformance.toml")["product"] == "ECDI-Java-Example"


@pytest.mark.long
@needs_java
@pytest.mark.timeout(900)  # a whole session, three JVMs at once (server mode, instances = 3): ~1 min under load
def test_the_java_example_completes_a_session_conformant(tmp_path, run_ecdi):
    run = run_ecdi(tmp_path / "out", "--sut", str(EXAMPLE / "sut.toml"))
    assert run.returncode == 0, run.explain()
    claimed = set(load_statement(EXAMPLE / "ecdi-conformance.toml")["capabilities"])
    unclaimed = {spec.id for spec in all_cases() if spec.capability not in (None, *claimed)}
    verdicts = run.verdicts()
    assert {c for c, v in verdicts.items() if v != "PASS"} == unclaimed, run.results["cases"]
    assert {verdicts[c] for c in unclaimed} <= {"NOT-APPLICABLE"}   # payment, ecdsa, amend/cancel
    assert run.results["sut"]["product"] == "ECDI-Java-Example"
    lodged = tmp_path / "out" / "work" / "dts" / "transport.valid-declaration-accepted" / "driver" / "02-lodge.stdout"  # 01: configure
    assert '"state":"cleared"' in lodged.read_text(encoding="utf-8")
    crashed = tmp_path / "out" / "work" / "dts" / "reliability.resume-after-crash" / "driver" / "commands.log"
    assert "\tkilled\t" in crashed.read_text(encoding="utf-8")     # REL-09: the JVM really was killed


@needs_java
@pytest.mark.timeout(300)
def test_the_java_example_also_runs_with_a_jvm_per_action(tmp_path, run_ecdi):
    cases = ["transport.valid-declaration-accepted", "reliability.resume-after-crash",
             "capability.configured-environment-shown"]
    run = run_ecdi(tmp_path / "out", "--sut", str(EXAMPLE / "sut-per-action.toml"),
                   *(a for c in cases for a in ("--case", c)))
    assert run.verdicts() == dict.fromkeys(cases, "PASS"), run.results["cases"]
