"""SIG-12's revocation finding when the product cannot reach the CRL: NOT-APPLICABLE when the SUT file
says it has no way to, INCONCLUSIVE when the harness cannot serve it; never FAIL for a correct product."""

from __future__ import annotations

import shutil
import socket

from driver_helpers import REFERENCE_SUT, sut_folder

from conformance.pki import CRL_PORT_ENV, TestPKI

CASES = ("--case", "signature.unusable-certificate-never-unsigned")


def revoked_findings(run) -> list[dict]:
    [case] = run.results["cases"]
    return [f for f in case["findings"] if "revoked" in f["message"]]


def test_a_product_without_a_way_to_the_crl_is_not_judged_on_revocation(run_ecdi, tmp_path):
    text = REFERENCE_SUT.read_text(encoding="utf-8").replace('crl = "distribution-point"', 'crl = "none"')
    run = run_ecdi(tmp_path / "out", "--sut", str(sut_folder(tmp_path, text)), *CASES)
    assert run.verdicts() == {"signature.unusable-certificate-never-unsigned": "PASS"}, run.explain()
    [finding] = revoked_findings(run)
    assert finding["verdict"] == "NOT-APPLICABLE" and 'crl = "none"' in finding["message"]


def test_a_crl_port_held_by_another_program_makes_the_revocation_finding_inconclusive(
        pki_dir, run_ecdi, tmp_path, monkeypatch):
    with socket.socket() as foreign:
        foreign.bind(("127.0.0.1", 0))
        foreign.listen()
        folder = tmp_path / "pki"
        shutil.copytree(pki_dir, folder)
        monkeypatch.setenv(CRL_PORT_ENV, str(foreign.getsockname()[1]))
        TestPKI.ensure(folder)                       # certificates naming the port the other program holds
        monkeypatch.delenv(CRL_PORT_ENV)
        run = run_ecdi(tmp_path / "out", "--pki-dir", str(folder), *CASES)
    assert run.verdicts() == {"signature.unusable-certificate-never-unsigned": "INCONCLUSIVE"}, run.explain()
    [finding] = revoked_findings(run)
    assert finding["verdict"] == "INCONCLUSIVE" and "cannot serve the CRL" in finding["message"]


def test_each_certificate_is_judged_on_its_own_requests(run_ecdi, tmp_path):
    """Issue 12: the one request sent with the revoked certificate is not charged to the certificates the
    product refused locally with the right cause (other tax code, RSA-1024, wrong key usage)."""
    run = run_ecdi(tmp_path / "out", "--mutant", "ignores-revocation", "--case", "signature.refuses-unfit-certificate")
    [case] = run.results["cases"]
    assert case["verdict"] == "FAIL", run.explain()
    failed = [f["message"] for f in case["findings"] if f["verdict"] == "FAIL"]
    assert failed and all("revoked" in message for message in failed), failed
    for certificate in ("other-tax-code", "rsa-1024", "wrong-key-usage"):
        assert f"with the {certificate} certificate: the gateway received nothing" in [
            f["message"] for f in case["findings"] if f["verdict"] == "PASS"]
