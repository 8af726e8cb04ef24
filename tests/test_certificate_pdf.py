"""certificate.pdf: signed PAdES by the issuer, valid in ``ecdi verify`` and in pyhanko's validator,
and a one-byte change fails both; the trust given to ``ecdi verify`` is a public key, never a private one."""

from __future__ import annotations

import io

import pytest
from test_certificate import CASES, PROFILE, results

from conformance.cli import main
from conformance.issuer import ED25519, ENV_CERT, RSA_PSS, Issuer, IssuerError, generate_key, resolve_issuer
from conformance.report.certificate import write_certificate
from conformance.report.pdf import ENV_FONT_DIR


@pytest.fixture(scope="module", params=[ED25519, RSA_PSS])
def out(request, tmp_path_factory):
    folder = tmp_path_factory.mktemp(f"cert-{request.param}")
    key = generate_key(folder / "customs.pem", request.param)
    failing = [dict(CASES[0], verdict="FAIL"), CASES[1]]
    write_certificate(folder, results(overall="NOT CONFORMANT", cases=failing), issuer=Issuer("customs", key, "customs"),
                      catalogue={c["id"] for c in CASES})
    return folder


def pyhanko_validates(pdf: bytes, trust_pem: bytes) -> bool:
    """pyhanko's own validation, trusting the issuer certificate written beside the certificate."""
    from asn1crypto import pem
    from asn1crypto import x509 as asn1_x509
    from pyhanko.pdf_utils.reader import PdfFileReader
    from pyhanko.sign.validation import validate_pdf_signature
    from pyhanko.sign.validation.status import SignatureCoverageLevel
    from pyhanko_certvalidator import ValidationContext

    roots = [asn1_x509.Certificate.load(der) for _, _, der in pem.unarmor(trust_pem, multiple=True)]
    try:
        sig, = PdfFileReader(io.BytesIO(pdf), strict=False).embedded_signatures
        status = validate_pdf_signature(sig, ValidationContext(trust_roots=roots, allow_fetching=False))
    except Exception:  # noqa: BLE001 - a damaged file pyhanko cannot even read does not validate
        return False
    return status.bottom_line and status.coverage == SignatureCoverageLevel.ENTIRE_FILE


def ecdi_verify(path, trust) -> int:
    return main(["verify", str(path), "--trust", str(trust), "--accept-self-assessment"])


def test_the_signed_pdf_verifies_in_ecdi_and_pyhanko(out, capsys):
    pdf, pub = out / "certificate.pdf", out / "certificate-issuer.pub.pem"
    assert pdf.read_bytes().startswith(b"%PDF-")
    assert ecdi_verify(pdf, pub) == 0
    assert capsys.readouterr().out.startswith("VALID: SELF-ASSESSMENT: DTS-X 2.1 on ecdi-1.0, NOT CONFORMANT")
    assert ecdi_verify(pdf, out / "certificate-issuer.crt.pem") == 0   # the certificate is a trust too
    assert pyhanko_validates(pdf.read_bytes(), (out / "certificate-issuer.crt.pem").read_bytes())
    assert ecdi_verify(out / "certificate.html", pub) == 0   # the same claim in both


def test_the_signature_is_pades_not_the_legacy_pkcs7_subfilter(out):
    """PAdES (ETSI EN 319 142) is ETSI.CAdES.detached; pyhanko's default, adbe.pkcs7.detached, is the older form."""
    from pyhanko.pdf_utils.reader import PdfFileReader

    sig, = PdfFileReader(io.BytesIO((out / "certificate.pdf").read_bytes()), strict=False).embedded_signatures
    assert sig.sig_object["/SubFilter"] == "/ETSI.CAdES.detached"


@pytest.mark.parametrize("where", [0.02, 0.3, 0.5, 0.9, -40, -1])
def test_a_one_byte_change_fails_both(out, tmp_path, capsys, where):
    data = bytearray((out / "certificate.pdf").read_bytes())
    at = int(len(data) * where) if where > 0 else len(data) + where
    data[at] = (data[at] + 1) % 256
    changed = tmp_path / "certificate.pdf"
    changed.write_bytes(bytes(data))
    assert ecdi_verify(changed, out / "certificate-issuer.pub.pem") == 1
    line = capsys.readouterr().out
    assert line.startswith("INVALID: ") and line.count("\n") == 1, line
    assert not pyhanko_validates(bytes(data), (out / "certificate-issuer.crt.pem").read_bytes())


def test_bytes_appended_after_signing_are_refused(out, tmp_path, capsys):
    changed = tmp_path / "certificate.pdf"
    changed.write_bytes((out / "certificate.pdf").read_bytes() + b"\n%%EOF\n")
    assert ecdi_verify(changed, out / "certificate-issuer.pub.pem") == 1
    assert "INVALID" in capsys.readouterr().out


def test_another_key_is_named_as_such(out, tmp_path, capsys):
    other = tmp_path / "other.pem"
    generate_key(other)
    pub = tmp_path / "other.pub.pem"
    from conformance.issuer import load_private_key, public_pem

    pub.write_bytes(public_pem(load_private_key(other).public_key()))
    assert ecdi_verify(out / "certificate.pdf", pub) == 1
    assert "signed by another key" in capsys.readouterr().out


def test_a_private_key_is_refused_as_trust(out, capsys):
    assert ecdi_verify(out / "certificate.pdf", out / "customs.pem") == 2
    err = capsys.readouterr().err
    assert "is a PRIVATE key" in err and "certificate-issuer.pub.pem" in err and err.count("\n") == 1


def test_without_a_vietnamese_font_the_html_stands_and_the_reason_is_said(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv(ENV_FONT_DIR, str(tmp_path / "no-fonts"))
    key = generate_key(tmp_path / "k.pem")
    write_certificate(tmp_path, results(), issuer=Issuer("self-assessment", key, "k"), catalogue=None)
    assert (tmp_path / "certificate.html").exists() and not (tmp_path / "certificate.pdf").exists()
    err = capsys.readouterr().err
    assert "certificate.pdf not written" in err and "DejaVu Sans" in err


def test_a_customs_chain_must_belong_to_the_key(tmp_path, monkeypatch):
    key, other = tmp_path / "customs.pem", tmp_path / "other.pem"
    generate_key(key)
    generate_key(other)
    from conformance.issuer import certificate_chain, self_signed_certificate
    from cryptography.hazmat.primitives.serialization import Encoding

    wrong = self_signed_certificate(Issuer("customs", generate_key(tmp_path / "third.pem"), "x"))
    (tmp_path / "chain.pem").write_bytes(wrong.public_bytes(Encoding.PEM))
    monkeypatch.setenv(ENV_CERT, str(tmp_path / "chain.pem"))
    issuer = resolve_issuer(tmp_path / "work", str(key), "customs")
    with pytest.raises(IssuerError, match="not for the issuer key"):
        certificate_chain(issuer, tmp_path / "work")
    assert PROFILE  # the shared fixture data stays importable


def test_ecdi_verify_refuses_a_change_of_any_byte(out):
    """Sampled over the whole file, the signature container included: pyhanko, like any CMS validator,
    lets the container's unsigned parts change; ``ecdi verify`` holds them to what the harness writes."""
    from conformance.issuer import load_trusted_key
    from conformance.report.verify import Rejected, verify_certificate

    data = (out / "certificate.pdf").read_bytes()
    key = load_trusted_key(out / "certificate-issuer.pub.pem")
    start = data.rfind(b"/Contents <") + len(b"/Contents <")
    end = data.index(b">", start)
    positions = [*range(0, len(data), len(data) // 40), *range(start, end, 97)]
    trust = (out / "certificate-issuer.crt.pem").read_bytes()
    for at in positions:
        changed = bytearray(data)
        hex_digit = chr(changed[at]) in "0123456789ABCDEFabcdef"
        changed[at] = (ord("1") if changed[at] == ord("0") else ord("0")) if hex_digit else changed[at] ^ 1
        with pytest.raises(Rejected):
            verify_certificate(bytes(changed), key, accept_self_assessment=True)
        if not start <= at < end:
            assert not pyhanko_validates(bytes(changed), trust), at
