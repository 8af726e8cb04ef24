"""The gateway statement (gateway.toml) is validated like the DTS statement: one line naming file and key."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization

from conformance.gateway_statement import GatewayStatementError, load_gateway_statement
from conformance.pki import TestPKI

from conftest import ecdi_process

VALID = """[gateway]
name = "Staging CGW"
vendor = "Tổng cục Hải quan"
build = "2026.12-rc1"
endpoint = "https://127.0.0.1:8443/ecdi/CISService"
profiles = ["ecdi-1.0", "ecdi-1.1"]
tls_anchor = "tls-ca.pem"
cgw_sign_anchor = "sign-anchor.pem"

[parameters]
accepted_versions = ["1.0", "1.1"]
mc_required = true
central_office = "00HQ"
offices = ["00HQ", "03TG"]
s_max = 5242880
otp_sender = "thanhtoan@test.customs.example"

[[accounts]]
user = "nguoikhai"
password = "Mật khẩu 1"
tax_code = "0312345678"
certificate = "declarant-chain.pem"
key = "declarant.key.pem"

[facilities.test_clock]
url = "https://127.0.0.1:8443/_control"
token_file = "token"
"""


@pytest.fixture
def folder(pki_dir, tmp_path) -> Path:
    pki = TestPKI.ensure(pki_dir)
    (tmp_path / "tls-ca.pem").write_bytes(pki.tls_ca_pem.read_bytes())
    (tmp_path / "sign-anchor.pem").write_bytes(pki.sign_anchor_pem.read_bytes())
    (tmp_path / "declarant-chain.pem").write_bytes(pki.declarant.chain_pem.read_bytes())
    (tmp_path / "declarant.key.pem").write_bytes(pki.declarant.key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    (tmp_path / "token").write_text("secret-token\n", encoding="utf-8")
    (tmp_path / "gateway.toml").write_text(VALID, encoding="utf-8")
    return tmp_path


def test_a_valid_statement_is_read_with_its_files_relative_to_it(folder):
    s = load_gateway_statement(folder / "gateway.toml")
    assert (s.name, s.build, s.base_url) == ("Staging CGW", "2026.12-rc1", "https://127.0.0.1:8443")
    assert s.tls_anchor == folder / "tls-ca.pem" and s.accounts[0].password == "Mật khẩu 1"
    assert s.facility("test_clock").token == "secret-token" and s.facility("otp_mailbox") is None
    assert s.parameters["time_scale"] == 1.0                       # absent: the real timers
    assert "Mật khẩu 1" not in repr(s) and "secret-token" not in repr(s) and "Mật khẩu 1" not in str(s.describe())


@pytest.mark.parametrize("old,new,key", [
    ('name = "Staging CGW"\n', "", "gateway.name: missing"),
    ('endpoint = "https://127.0.0.1:8443/ecdi/CISService"', 'endpoint = "http://127.0.0.1/ecdi/CISService"',
     "gateway.endpoint: 'http://127.0.0.1/ecdi/CISService' is not an https:// URL"),
    ('profiles = ["ecdi-1.0", "ecdi-1.1"]', 'profiles = ["ecdi-9"]', "gateway.profiles: 'ecdi-9'"),
    ('tls_anchor = "tls-ca.pem"', 'tls_anchor = "nope.pem"', "gateway.tls_anchor: 'nope.pem': no such file"),
    ("mc_required = true", 'mc_required = "yes"', "parameters.mc_required: expected bool"),
    ("s_max = 5242880\n", "s_max = 5242880\nS_MAX = 1\n", "parameters.S_MAX: unknown key"),
    ("s_max = 5242880\n", "s_max = 5242880\ntime_scale = 2\n", "parameters.time_scale: 2.0 is not 0 < s <= 1"),
    ('user = "nguoikhai"', 'user = "người khai"', "accounts[0].user: 'người khai' is not a UserId"),
    ('tax_code = "0312345678"', 'tax_code = "31234"', "accounts[0].tax_code: '31234' is not a TaxCode"),
    ('password = "Mật khẩu 1"\n', "", "accounts[0].password: give exactly one of password and password_file"),
    ('key = "declarant.key.pem"', 'key = "missing.key"', "accounts[0].key: 'missing.key': no such file"),
    ("[facilities.test_clock]", "[facilities.time_machine]", "facilities.time_machine: unknown key"),
    ('token_file = "token"', 'token_file = "none"', "facilities.test_clock.token_file: 'none': no such file"),
    ("[gateway]", "[gateway]\n[gatway]", "gatway: unknown key"),
])
def test_a_bad_key_is_one_line_naming_file_and_key(folder, old, new, key):
    file = folder / "gateway.toml"
    assert old in VALID
    file.write_text(VALID.replace(old, new, 1), encoding="utf-8")
    with pytest.raises(GatewayStatementError) as raised:
        load_gateway_statement(file)
    message = str(raised.value)
    assert message.startswith(f"{file}: ") and key in message and "\n" not in message


def test_unreadable_or_not_toml_is_one_line(folder):
    with pytest.raises(GatewayStatementError, match=r"cannot be read"):
        load_gateway_statement(folder / "absent.toml")
    (folder / "gateway.toml").write_text("[gateway\n", encoding="utf-8")
    with pytest.raises(GatewayStatementError, match=r"is not valid TOML"):
        load_gateway_statement(folder / "gateway.toml")


def test_ecdi_run_gateway_with_a_bad_statement_is_one_line_and_exit_2(folder, tmp_path):
    (folder / "gateway.toml").write_text(VALID.replace("mc_required = true", "mc_required = 1"), encoding="utf-8")
    proc = ecdi_process("run", "--gateway", folder / "gateway.toml", "--out", tmp_path / "out")
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert re.fullmatch(r"ecdi: .*gateway\.toml: parameters\.mc_required: expected bool, found 1\n", proc.stderr)


def test_ecdi_run_gateway_refuses_a_profile_the_gateway_does_not_serve(folder, tmp_path):
    (folder / "gateway.toml").write_text(VALID.replace('["ecdi-1.0", "ecdi-1.1"]', '["ecdi-1.0"]'), encoding="utf-8")
    proc = ecdi_process("run", "--gateway", folder / "gateway.toml", "--profile", "ecdi-1.1", "--out", tmp_path / "out")
    assert proc.returncode == 2 and "does not hold ecdi-1.1" in proc.stderr and "Traceback" not in proc.stderr
    proc = ecdi_process("run", "--gateway", folder / "gateway.toml", "--mutant", "x", "--out", tmp_path / "out")
    assert proc.returncode == 2 and "give one or the other" in proc.stderr


def test_a_gateway_that_cannot_be_reached_stops_the_session(folder, tmp_path):
    """Nothing listens at 127.0.0.1:9: a set-up error (exit 2), not eight TRN failures of the gateway."""
    (folder / "gateway.toml").write_text(VALID.replace("127.0.0.1:8443/ecdi", "127.0.0.1:9/ecdi"), encoding="utf-8")
    proc = ecdi_process("run", "--gateway", folder / "gateway.toml", "--out", tmp_path / "out", "--progress", "off",
                        timeout=120)
    assert proc.returncode == 2 and "cannot be reached" in proc.stderr and "Traceback" not in proc.stderr
