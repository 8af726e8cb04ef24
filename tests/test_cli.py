"""The command line: listings, and usage mistakes answered in one line with exit status 2."""

import subprocess
import sys

import pytest

from conformance.catalogue import all_cases
from conformance.reference_dts.mutants import MUTANTS


def ecdi(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "conformance.cli", *args], capture_output=True, text=True, timeout=60)


def test_cases_lists_every_case_with_its_requirements():
    out = ecdi("cases").stdout
    for spec in all_cases():
        assert spec.id in out and ", ".join(spec.requirements) in out


def test_mutants_lists_every_mutant_with_its_case():
    out = ecdi("mutants").stdout
    for m in MUTANTS.values():
        assert m.name in out and m.caught_by in out


@pytest.mark.parametrize("args,message", [
    (["--sut", "nonexistent"], "unknown system under test 'nonexistent'"),
    (["--mutant", "bogus"], "unknown mutant 'bogus'"),
    (["--time-scale", "2"], "--time-scale must satisfy 0 < s <= 1"),
    (["--time-scale", "0"], "--time-scale must satisfy 0 < s <= 1"),
    (["--profile", "ecdi-9"], "no such profile"),
])
def test_usage_mistakes_are_named_without_a_traceback(args, message, tmp_path):
    proc = ecdi("run", "--out", str(tmp_path), *args)
    assert proc.returncode == 2
    assert message in proc.stderr and "Traceback" not in proc.stderr + proc.stdout


def test_unknown_case_id_is_a_usage_error(tmp_path, pki_dir):
    proc = ecdi("run", "--out", str(tmp_path), "--pki-dir", str(pki_dir), "--case", "no.such-case")
    assert proc.returncode == 2
    assert "unknown case id(s): no.such-case" in proc.stdout + proc.stderr
    assert "Traceback" not in proc.stdout + proc.stderr


@pytest.mark.parametrize("args,message", [
    (["--issuer-role", "customs"], "issuer role 'customs' needs the customs key"),
    (["--issuer-key", "/nonexistent.pem", "--issuer-role", "customs"], "cannot be read"),
])
def test_issuer_mistakes_are_named_before_the_run(args, message, tmp_path):
    proc = ecdi("run", "--out", str(tmp_path), *args)
    assert proc.returncode == 2 and message in proc.stderr
    assert not (tmp_path / "results.json").exists(), "nothing ran"
