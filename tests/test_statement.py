"""The capability statement is read exactly per CAP-05 / Table 13-2: every breach names file and key."""

from __future__ import annotations

import tomllib

import pytest

from conformance.reference_dts.config import STATEMENT_FILE
from conformance.statement import StatementError, load_statement, statement_problems

GOOD = tomllib.loads(STATEMENT_FILE.read_text(encoding="utf-8"))


def with_(**changes) -> dict:
    data = {**GOOD, "pixit": dict(GOOD["pixit"])}
    for key, value in changes.items():
        if value is None:
            data.pop(key, None)
        else:
            data[key] = value
    return data


def test_the_reference_statement_is_valid():
    assert load_statement(STATEMENT_FILE)["product"] == "ECDI-Reference-DTS"
    assert statement_problems(GOOD) == []


def test_the_specs_example_statement_is_valid():
    example = with_(vendor="Công ty Cổ phần Phần mềm Ví Dụ", vendor_tax_code="0109876543", product="ViDu-Customs",
                    version="3.2.1", profile=["1.0"], capabilities=["import", "export", "amend", "cancel", "payment"],
                    certification_id="ECDI-2025-00042")
    assert statement_problems(example) == []


@pytest.mark.parametrize("data,expected", [
    (with_(colour="blue"), "colour: unknown key"),
    (with_(vendor=None), "vendor: missing"),
    (with_(statement_version="2"), 'statement_version: must be "1"'),
    (with_(statement_version=1), "statement_version: must be a TOML string"),
    (with_(vendor_tax_code="010000000"), "vendor_tax_code: '010000000' is not a TaxCode"),
    (with_(product="x" * 51), "product: must be 1 to 50 characters"),
    (with_(version=""), "version: must be 1 to 20 characters"),
    (with_(profile=[]), "profile: must not be empty"),
    (with_(profile=["1.0", "2.0"]), "profile: ['2.0'] are not profiles"),
    (with_(profile="1.0"), "profile: must be a TOML array of strings"),
    (with_(capabilities=["import", "teleport"]), "capabilities: ['teleport'] are not capabilities of Table 13-1"),
    (with_(capabilities=["payment", "amend"]), "capabilities: 'amend' requires one of import, export"),
    (with_(capabilities=["ecdsa"]), "must claim at least one of import, export, payment (CAP-01)"),
    (with_(capabilities=["import", "import"]), "capabilities: repeats a value"),
    (with_(certification_id="ECDI-25-42"), "certification_id: 'ECDI-25-42' is not a CertificationId"),
    (with_(certification_id="ECDI-0000-00000"), "certification_id: ECDI-0000-00000 is reserved"),
])
def test_each_breach_is_named(data, expected):
    problems = statement_problems(data)
    assert any(expected in p for p in problems), problems


def test_pixit_is_checked_by_the_profile():
    data = with_()
    data["pixit"].update(t_send_s=10, colour="blue")
    del data["pixit"]["journal_export"]
    problems = statement_problems(data)
    assert "pixit.t_send_s = 10 is outside 30 … T_send = 60 (Table 13-2)" in problems
    assert "pixit.colour: unknown key (Table 13-2)" in problems
    assert "pixit.journal_export: missing (required by Table 13-2)" in problems


def test_file_errors_name_the_file(tmp_path):
    wrong_name = tmp_path / "statement.toml"
    wrong_name.write_text(STATEMENT_FILE.read_text(encoding="utf-8"), encoding="utf-8")
    with pytest.raises(StatementError, match="must be named ecdi-conformance.toml"):
        load_statement(wrong_name)
    broken = tmp_path / "ecdi-conformance.toml"
    broken.write_text('vendor = "unterminated\n', encoding="utf-8")
    with pytest.raises(StatementError, match="is not valid TOML 1.0") as info:
        load_statement(broken)
    assert str(broken) in str(info.value)
    with pytest.raises(StatementError, match="cannot be read"):
        load_statement(tmp_path / "missing" / "ecdi-conformance.toml")
