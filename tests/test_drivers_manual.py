"""The manual driver, driven by a script that plays the operator (pexpect on a pseudo-terminal).

The "GUI product" here is the reference DTS program, operated by the test: it reads the settings
the harness prints, lodges the document the instruction names, and answers the prompts with what
the product showed.
"""

from __future__ import annotations

import json
import re
import sys

import pytest
from driver_helpers import environment, sut_folder
from test_live_prompts import configure_product, lodge_with_product

from conformance.drivers import DriverError, load_driver

pexpect = pytest.importorskip("pexpect", reason="pexpect is in the `test` extra: pip install -e .[test]")
from conftest import SELFTEST_SCALE, SELFTEST_SEED  # noqa: E402

CASE = "transport.valid-declaration-accepted"


def manual_sut(tmp_path, answer_s: float) -> str:
    return str(sut_folder(tmp_path, 'statement = "ecdi-conformance.toml"\n[driver]\nkind = "manual"\n'
                                    f'wait_s = 30\nanswer_s = {answer_s}\n'))


def spawn_run(tmp_path, pki_dir, answer_s: float):
    argv = ["-m", "conformance.cli", "run", "--sut", manual_sut(tmp_path, answer_s), "--out", str(tmp_path / "out"),
            "--time-scale", SELFTEST_SCALE, "--seed", SELFTEST_SEED, "--pki-dir", str(pki_dir), "--case", CASE]
    return pexpect.spawn(sys.executable, argv, encoding="utf-8", timeout=60, dimensions=(200, 400))


def operate_the_product(child, work: str) -> dict:
    """Configure the 'product' from the printed settings, then lodge what the instruction names."""
    child.expect("set the product up with a fresh state ===")
    child.expect("Press Enter when the product is configured: ")
    settings = dict(re.findall(r"^  (\w+) +(.+?)\r?$", child.before, re.M))
    configure_product(settings, work)
    child.sendline("")
    child.expect(r"Lodge the declaration in (\S+) \(type 929\) with the product now")
    return lodge_with_product(settings, work, child.match.group(1))


def test_an_operator_answering_the_prompts_gets_a_verdict(tmp_path, pki_dir):
    child = spawn_run(tmp_path, pki_dir, answer_s=30)
    shown = operate_the_product(child, str(tmp_path / "product"))
    child.expect(r"the gateway saw 1 request\(s\) of type 929")
    child.expect("State shown .*: ")
    child.sendline("maybe")  # an invalid answer is asked again
    child.expect("'maybe' is not one of")
    child.sendline(shown["state"])
    child.expect("Reception number shown")
    child.sendline(shown["reception_number"])
    child.expect("Declaration number shown")
    child.sendline(shown["declaration_number"])
    child.expect("Error shown as code")
    child.sendline("")
    child.expect(pexpect.EOF, timeout=60)
    results = json.loads((tmp_path / "out" / "results.json").read_text(encoding="utf-8"))
    assert [c["verdict"] for c in results["cases"]] == ["PASS"], results["cases"]
    assert "operator-attestation" in results["cases"][0]["evidence"], "the verdict rests on the operator's word"
    attested = (tmp_path / "out" / "work" / "dts" / CASE / "operator-attestation.jsonl").read_text(encoding="utf-8")
    answers = [json.loads(line) for line in attested.splitlines()]
    assert answers[-1]["state"] == "cleared" and answers[-1]["declaration_number"] == shown["declaration_number"]


def test_no_answer_in_time_is_never_a_pass(tmp_path, pki_dir):
    child = spawn_run(tmp_path, pki_dir, answer_s=4)
    operate_the_product(child, str(tmp_path / "product"))
    child.expect("State shown .*: ")  # ... and the operator walks away
    child.expect(pexpect.EOF, timeout=60)
    case = json.loads((tmp_path / "out" / "results.json").read_text(encoding="utf-8"))["cases"][0]
    assert case["verdict"] == "INCONCLUSIVE", case
    assert "operator-attestation" in case["evidence"]
    assert "the operator gave no answer to 'state' within 4 s" in case["reason"]


def test_without_a_terminal_the_manual_driver_says_so(tmp_path):
    path = sut_folder(tmp_path, 'statement = "ecdi-conformance.toml"\n[driver]\nkind = "manual"\n'
                                f'console = "{tmp_path}/no-such-tty"\n')
    driver = load_driver(str(path))
    with pytest.raises(DriverError, match="cannot open the operator's terminal"):
        driver.start(environment(tmp_path))
