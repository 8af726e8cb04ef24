"""``sut.toml``: the harness-side SUT file, and ``--sut PATH`` turning it into a driver."""

from __future__ import annotations

import pytest
from driver_helpers import REFERENCE_SUT, sut_folder

from conformance.drivers import DriverError, load_driver
from conformance.drivers.command import CommandDriver
from conformance.harness import Harness, HarnessOptions, SetupError
from conformance.reference_dts.config import STATEMENT_FILE
from conformance.sut import SutError, load_sut

from conftest import ecdi_process

MINIMAL = 'statement = "ecdi-conformance.toml"\n[driver]\nkind = "command"\nactions = { lodge = "true" }\n'


def test_the_reference_sut_file_loads():
    sut = load_sut(REFERENCE_SUT)
    assert sut.driver_kind == "command" and sut.statement["product"] == "ECDI-Reference-DTS"
    assert sut.accounts == ("nguyenvana", "tranthib") and sut.install == {} and sut.build_hash is None   # SEC-08
    assert isinstance(load_driver(str(REFERENCE_SUT)), CommandDriver)


def test_accounts_install_and_build_hash(tmp_path):
    path = sut_folder(tmp_path, 'statement = "ecdi-conformance.toml"\nbuild_hash = "sha256:ab12"\n'
                                '[driver]\nkind = "manual"\n[[account]]\nuser_id = "maker.1"\n'
                                '[[account]]\nuser_id = "checker.2"\n[install]\ntls_ca = "pki/tls.pem"\n')
    sut = load_sut(path)
    assert sut.accounts == ("maker.1", "checker.2") and sut.build_hash == "sha256:ab12"
    source = tmp_path / "ca.pem"
    source.write_text("PEM", encoding="utf-8")
    sut.install_pki({"tls_ca": source})
    assert (path.parent / "pki" / "tls.pem").read_text(encoding="utf-8") == "PEM"


def test_crl_access_is_declared_or_follows_from_an_installed_crl(tmp_path):
    """SIG-12: how the product reaches the CRL; without a way, its revocation findings are NOT-APPLICABLE."""
    assert load_sut(REFERENCE_SUT).crl == "distribution-point"
    assert load_sut(sut_folder(tmp_path, MINIMAL)).crl == "none"
    assert load_sut(sut_folder(tmp_path, MINIMAL + '[install]\ncrl = "pki/ca.crl"\n')).crl == "given"
    with pytest.raises(SutError, match="crl: 'sometimes' is not one of distribution-point, given, none"):
        load_sut(sut_folder(tmp_path, 'crl = "sometimes"\n' + MINIMAL))


@pytest.mark.parametrize("text,key,problem", [
    (MINIMAL + "colour = 1\n", "driver.colour", "unknown key for the command driver"),
    ('statement = "ecdi-conformance.toml"\ncolour = 1\n[driver]\nkind = "command"\n', "colour", "unknown key"),
    ('statement = "ecdi-conformance.toml"\n', "driver", "missing"),
    ('statement = "ecdi-conformance.toml"\n[driver]\nkind = "robot"\n', "driver.kind", "'robot' is not one of"),
    ('[driver]\nkind = "command"\n', "statement", "must be a non-empty string"),
    ('statement = "other/ecdi-conformance.toml"\n[driver]\nkind = "manual"\n', "statement", "cannot be read"),
    (MINIMAL + '[[account]]\nuser_id = "no spaces allowed"\n', "account[0].user_id", "is not a UserId"),
    (MINIMAL + '[install]\nroot_ca = "x.pem"\n', "install.root_ca", "unknown key"),
    (MINIMAL + 'timeout_s = -1\n', "driver.timeout_s", "positive number of seconds"),
    ('statement = "ecdi-conformance.toml"\n[driver]\nkind = "manual"\ninstructions = { launch = "x" }\n',
     "driver.instructions", "['launch'] are not actions with a text instruction"),
    ('statement = "ecdi-conformance.toml"\n[driver]\nkind = "http"\nurl = "ftp://x"\n', "driver.url",
     "must be an https:// URL"),
    (MINIMAL.replace('lodge = "true"', 'launch = "true"'), "driver.actions", "unknown action(s) ['launch']"),
])
def test_a_broken_sut_file_names_file_and_key(tmp_path, text, key, problem):
    path = sut_folder(tmp_path, text)
    with pytest.raises(DriverError) as info:
        load_driver(str(path))
    message = str(info.value)
    assert str(path) in message and f"{key}: " in message and problem in message


def test_a_broken_statement_is_reported_through_the_sut_file(tmp_path):
    statement = STATEMENT_FILE.read_text(encoding="utf-8").replace('vendor_tax_code = "0100000009"',
                                                                   'vendor_tax_code = "123"')
    path = sut_folder(tmp_path, MINIMAL, statement)
    with pytest.raises(SutError, match=r"statement: the capability statement is invalid: .*vendor_tax_code: '123'"):
        load_sut(path)


def test_mutants_and_unknown_names_are_refused():
    with pytest.raises(DriverError, match="--mutant applies to the built-in reference DTS only"):
        load_driver(str(REFERENCE_SUT), mutant="signs-sha1")
    with pytest.raises(DriverError, match="give 'reference' or the path of a sut.toml"):
        load_driver("vidu")


def test_time_scale_needs_a_statement_that_supports_it(tmp_path):
    statement = STATEMENT_FILE.read_text(encoding="utf-8").replace("time_scale_supported = true\n", "")
    path = sut_folder(tmp_path, MINIMAL, statement)
    with pytest.raises(SetupError, match=r"tested with --time-scale 1 \(CAP-08\)"):
        Harness(HarnessOptions(sut=str(path), time_scale=0.05)).prepare()
    Harness(HarnessOptions(sut=str(path), time_scale=1.0)).prepare()


def test_ecdi_run_with_a_broken_sut_file_is_a_usage_error(tmp_path):
    path = sut_folder(tmp_path, MINIMAL + "colour = 1\n")
    proc = ecdi_process("run", "--sut", path, "--out", tmp_path / "out")
    assert proc.returncode == 2
    assert "driver.colour: unknown key for the command driver" in proc.stderr and str(path) in proc.stderr
