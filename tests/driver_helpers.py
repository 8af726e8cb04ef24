"""Helpers of the driver tests: SUT folders in tmp_path and a stand-in Environment."""

from __future__ import annotations

import shutil
from pathlib import Path

from conformance.drivers.base import Environment
from conformance.reference_dts.config import STATEMENT_FILE

REFERENCE_SUT = STATEMENT_FILE.with_name("sut.toml")


def sut_folder(tmp_path: Path, sut_toml: str, statement: str | None = None) -> Path:
    """A folder holding ``sut.toml`` and an ``ecdi-conformance.toml`` (the reference DTS's by default)."""
    folder = tmp_path / "sut"
    folder.mkdir(exist_ok=True)
    target = folder / "ecdi-conformance.toml"
    if statement is None:
        shutil.copyfile(STATEMENT_FILE, target)
    else:
        target.write_text(statement, encoding="utf-8")
    (folder / "sut.toml").write_text(sut_toml, encoding="utf-8")
    return folder / "sut.toml"


def environment(work_dir: Path) -> Environment:
    """An Environment for driver unit tests (no gateway: the programs under test never connect)."""
    pem = work_dir / "none.pem"
    return Environment(
        profile_id="ecdi-1.0", endpoint="https://127.0.0.1:9/ecdi/CISService", tls_ca_pem=pem, sign_anchor_pem=pem,
        ca_trust_list_pem=pem, p12=work_dir / "none.p12", p12_password="p12-secret-Xq", user_id="nguyenvana",
        password="cgw-secret-Zk", tax_code="0312345678", declarant_name="Công ty", office="03TG",
        office_name="Chi cục", time_scale=0.05, work_dir=work_dir / "case.one",
    )
