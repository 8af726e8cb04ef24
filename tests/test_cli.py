"""The command line: listings, and usage mistakes answered in one line with exit status 2."""

import subprocess

import pytest

from conformance.catalogue import all_cases
from conformance.reference_dts.mutants import MUTANTS

from conftest import ecdi_process


def ecdi(*args: str) -> subprocess.CompletedProcess:
    return ecdi_process(*args, timeout=60)


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


def test_help_shows_every_default():
    """Every option with a default says it in ``--help`` (the profile, the time scale, the jobs...)."""
    import argparse

    from conformance.cli import build_parser

    commands = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction)).choices
    for name, parser in commands.items():
        formatter = parser._get_formatter()
        for action in parser._actions:
            if action.option_strings and action.default not in (None, False, argparse.SUPPRESS) \
                    and action.dest != "help":
                assert "default" in formatter._expand_help(action), f"ecdi {name} {action.option_strings[0]}"
    text = ecdi("run", "--help").stdout
    assert "(default: ecdi-1.0)" in text and "(default: 1.0)" in text


@pytest.mark.parametrize("command, option", [("run", "--out"), ("run", "--pki-dir"), ("mutants --score", "--out"),
                                             ("mutants --score", "--pki-dir")])
def test_a_folder_option_naming_a_file_is_one_line(tmp_path, command, option):
    file = tmp_path / "a-file"
    file.write_text("x")
    extra = ["--out", str(tmp_path / "out")] if option != "--out" and command == "run" else []
    proc = ecdi(*command.split(), *extra, option, str(file))
    assert proc.returncode == 2
    assert proc.stderr.strip() == f"ecdi: {option} {file} is a file; give a folder (made if missing)"


def test_unknown_profile_names_no_internal_path(tmp_path):
    proc = ecdi("run", "--out", str(tmp_path), "--profile", "ecdi-9")
    assert proc.stderr.strip() == "ecdi: profile 'ecdi-9': no such profile (available: ecdi-1.0, ecdi-1.1)"
