"""The certificate as a PDF signed by the issuer (PAdES), for an officer's ordinary PDF reader.

Laid out with reportlab (pure Python, no browser: the harness runs where Chromium does not) from
the same signed claim and the same ``visible`` facts as ``certificate.html``. The canonical claim
and its signature travel inside as attached files (``ecdi-claim.json``, ``ecdi-claim.sig``), and the
whole file is then signed with pyhanko as PAdES baseline B by the issuer's key and certificate
chain, with a visible signature box: any reader shows who signed it and whether it was changed;
``ecdi verify`` and pyhanko's validator check it byte for byte.
"""

from __future__ import annotations

import base64
import io
import os
from functools import cache
from pathlib import Path
from xml.sax.saxutils import escape

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from ..issuer import ED25519, Issuer

CLAIM_FILE = "ecdi-claim.json"
SIGNATURE_FILE = "ecdi-claim.sig"
FIELD = "ECDI-Issuer"
ENV_FONT_DIR = "ECDI_PDF_FONT_DIR"
FONT_DIRS = ("/usr/share/fonts/truetype/dejavu", "/usr/share/fonts/dejavu", "/usr/share/fonts/TTF",
             "/Library/Fonts", "C:/Windows/Fonts")
FONT_FILES = {"ECDI-Sans": "DejaVuSans.ttf", "ECDI-Sans-Bold": "DejaVuSans-Bold.ttf",
              "ECDI-Mono": "DejaVuSansMono.ttf"}
VERDICT_ORDER = ("PASS", "FAIL", "ERROR", "INCONCLUSIVE", "NOT-APPLICABLE")
VERDICT_VI = {"PASS": "Đạt", "FAIL": "Không đạt", "ERROR": "Lỗi", "INCONCLUSIVE": "Chưa kết luận",
              "NOT-APPLICABLE": "Không áp dụng"}
COLOURS = {"PASS": "#007755", "FAIL": "#aa0000", "ERROR": "#aa0000", "INCONCLUSIVE": "#aa6600",
           "NOT-APPLICABLE": "#333333"}
SIGNATURE_BOX = (40, 14, 555, 64)   # points on page 1, inside the bottom margin kept free for it


class PdfUnavailable(Exception):
    """The PDF cannot be made on this machine (no font with Vietnamese glyphs); the message says what to do."""


def _fonts() -> None:
    """Register DejaVu Sans (it has every Vietnamese glyph; reportlab's own fonts do not)."""
    _register(tuple([os.environ[ENV_FONT_DIR]] if os.environ.get(ENV_FONT_DIR) else FONT_DIRS))


@cache
def _register(dirs: tuple[str, ...]) -> None:
    from reportlab.pdfbase import pdfmetrics
    from reportlab.pdfbase.ttfonts import TTFont

    for folder in dirs:
        paths = {name: Path(folder) / file for name, file in FONT_FILES.items()}
        if all(p.is_file() for p in paths.values()):
            for name, p in paths.items():
                pdfmetrics.registerFont(TTFont(name, str(p)))
            return
    raise PdfUnavailable(f"certificate.pdf not written: DejaVu Sans ({', '.join(FONT_FILES.values())}) was not "
                         f"found in {', '.join(dirs)}; install fonts-dejavu-core or set {ENV_FONT_DIR}")


def _styles():
    from reportlab.lib.styles import ParagraphStyle

    base = ParagraphStyle("base", fontName="ECDI-Sans", fontSize=9, leading=11.5, splitLongWords=0)
    return {
        "base": base,
        "small": ParagraphStyle("small", base, fontSize=8, leading=10),
        "mono": ParagraphStyle("mono", base, fontName="ECDI-Mono", fontSize=7, leading=9),
        "cell": ParagraphStyle("cell", base, fontSize=7.5, leading=9),
        "title": ParagraphStyle("title", base, fontName="ECDI-Sans-Bold", fontSize=14, leading=18, spaceAfter=4),
        "badge": ParagraphStyle("badge", base, fontName="ECDI-Sans-Bold", fontSize=10.5, leading=13, spaceAfter=2),
        "overall": ParagraphStyle("overall", base, fontName="ECDI-Sans-Bold", fontSize=20, leading=25, spaceAfter=6),
        "label": ParagraphStyle("label", base, fontSize=7.5, leading=9, alignment=1),
        "count": ParagraphStyle("count", base, fontName="ECDI-Sans-Bold", fontSize=17, leading=21, alignment=1),
        "h2": ParagraphStyle("h2", base, fontName="ECDI-Sans-Bold", fontSize=11.5, leading=15, spaceBefore=8,
                             spaceAfter=3),
    }


def _p(text: str, style) -> object:
    from reportlab.platypus import Paragraph

    return Paragraph(text, style)


def layout(claim: dict, v: dict[str, str], overall_vi: str, overall_class: str, counts: dict[str, int]) -> bytes:
    """The unsigned PDF: the facts of ``visible`` in the order and words of certificate.html."""
    from reportlab.lib import colors
    from reportlab.lib.pagesizes import A4
    from reportlab.lib.units import mm
    from reportlab.platypus import SimpleDocTemplate, Table, TableStyle

    _fonts()
    s = _styles()
    e = escape
    colour = {"CONFORMANT": "#007755", "NOT": "#aa0000"}.get(overall_class, "#aa6600")
    badge_colour = "#007755" if claim["certification"]["certified"] else "#aa0000"
    story = [
        _p(f'<font color="{badge_colour}">{e(v["heading"])}</font>', s["badge"]),
        _p("Giấy chứng nhận phù hợp ECDI / ECDI conformance certificate", s["title"]),
        _p(f'<font color="{colour}">{e(overall_vi)} / {e(v["overall"])}</font>', s["overall"]),
    ]
    cells = [[_p(f"{VERDICT_VI[k]} / {k}", s["label"]),
              _p(f'<font color="{COLOURS[k] if counts[k] else "#333333"}">{counts[k]}</font>', s["count"])]
             for k in VERDICT_ORDER]
    grid = Table([cells], colWidths=[36 * mm] * len(cells))
    grid.setStyle(TableStyle([("BOX", (0, 0), (-1, -1), 1, colors.black),
                              ("INNERGRID", (0, 0), (-1, -1), .5, colors.grey)]))
    story.append(grid)
    reasons = claim["certification"]["reasons"]
    if reasons:
        story.append(_p("<b>Đây là kết quả tự kiểm tra, không phải chứng nhận.</b> This is a self-test, not a "
                        "certification. Lý do / Reasons:", s["base"]))
        story += [_p(f"• {e(v[f'reasons.{i}'])}", s["small"]) for i in range(len(reasons))]
    facts = [*([("Bên được kiểm thử / Party tested", v["party"], "base")] if "party" in v else []),
             ("Nhà cung cấp / Vendor", v["sut.vendor"], "base"),
             ("Sản phẩm, phiên bản / Product, version", v["sut.product"], "base"),
             ("Mã băm bản dựng / Build hash", v["sut.build_hash"], "mono"),
             ("Hồ sơ chuẩn / Profile", v["profile.id"], "base"),
             ("Mã băm hồ sơ / Profile sha256", v["profile.hash"], "mono"),
             ("Công cụ kiểm thử / Harness", v["harness"], "base"),
             ("Hệ số thời gian / Time scale", v["time_scale"], "base"),
             ("Ngày / Date", v["date"], "base"),
             ("Hạt giống dữ liệu / Test-data seed", v["seed"], "base"),
             ("Độ bao phủ / Coverage", v["coverage"], "small"),
             ("Thuật toán chữ ký đã dùng / Signature algorithm used", v.get("signature_algorithms", "—"), "base"),
             ("Chuỗi bằng chứng / Evidence chain head", v["evidence.head_hash"], "mono"),
             ("Số dòng bằng chứng / Evidence rows", v["evidence.rows"], "base"),
             *([("Cổng mô phỏng / Mock gateway", v["shared_gateway"], "small")] if "shared_gateway" in v else []),
             ("Bên cấp / Issuer role", v["issuer.role"], "base"),
             ("Khóa bên cấp / Issuer key id", v["issuer.key_id"], "mono")]
    table = Table([[_p(e(k), s["small"]), _p(e(val), s[style])] for k, val, style in facts],
                  colWidths=[58 * mm, 122 * mm])
    table.setStyle(TableStyle([("GRID", (0, 0), (-1, -1), .5, colors.grey), ("VALIGN", (0, 0), (-1, -1), "TOP"),
                               ("BACKGROUND", (0, 0), (0, -1), colors.HexColor("#eeeeee"))]))
    story += [_p(" ", s["small"]), table, _p("Kết quả từng ca kiểm thử / Verdict per case", s["h2"])]
    rows = [[_p(f"<b>{h}</b>", s["cell"]) for h in
             ("Ca kiểm thử / Case", "Yêu cầu / Requirements", "Bằng chứng / Evidence", "Chứng thư số / Certificates",
              "Kết quả / Verdict")]]
    marks = []
    for i, c in enumerate(claim["cases"]):
        title = v.get(f"cases.{i}.title")
        name = (f"<b>{e(title)}</b><br/>" if title else "") + f'<font name="ECDI-Mono" size="6">{e(c["id"])}</font>'
        verdict = c["verdict"]
        rows.append([_p(name, s["cell"]), _p(e(v[f"cases.{i}.requirements"]), s["cell"]),
                     _p(e(v[f"cases.{i}.evidence"]), s["cell"]), _p(e(v.get(f"cases.{i}.certificates", "—")), s["cell"]),
                     _p(f'<font color="{COLOURS.get(verdict, "#000000")}"><b>{e(verdict)}</b></font>', s["cell"])])
        if verdict in ("FAIL", "ERROR", "INCONCLUSIVE"):
            marks.append(("BACKGROUND", (0, i + 1), (-1, i + 1), colors.HexColor("#fff0f0")))
    cases = Table(rows, colWidths=[68 * mm, 34 * mm, 26 * mm, 30 * mm, 22 * mm], repeatRows=1)
    cases.setStyle(TableStyle([("TOPPADDING", (0, 0), (-1, -1), 1.5), ("BOTTOMPADDING", (0, 0), (-1, -1), 2),("GRID", (0, 0), (-1, -1), .5, colors.grey), ("VALIGN", (0, 0), (-1, -1), "TOP"),
                               ("BACKGROUND", (0, 0), (-1, 0), colors.HexColor("#eeeeee")), *marks]))
    story += [cases, _p("Xác minh / Verification", s["h2"]),
              _p(f"Mã xác minh / verification code: <b>{e(v['verification_code'])}</b>", s["base"]),
              _p("Tệp PDF này được ký số (PAdES) bằng khóa của bên cấp; trình đọc PDF hiển thị chữ ký ở khung chữ ký. "
                 "This PDF is signed (PAdES) by the issuer's key; a PDF reader shows the signature in its signature "
                 "panel. Kiểm tra / check: <font name=\"ECDI-Mono\">ecdi verify certificate.pdf --trust "
                 "certificate-issuer.pub.pem</font> (khóa công khai bên cạnh tệp này; với giấy chứng nhận của Hải "
                 "quan, dùng khóa công khai Hải quan công bố / the public key beside this file; for a customs "
                 "certificate, the key customs publishes).", s["small"])]
    out = io.BytesIO()
    doc = SimpleDocTemplate(out, pagesize=A4, leftMargin=15 * mm, rightMargin=15 * mm, topMargin=14 * mm,
                            bottomMargin=26 * mm, title=f"ECDI — {claim['sut'].get('product')} — {claim['overall']}",
                            author="ECDI Conformance", subject=v["verification_code"], invariant=True)
    doc.build(story)
    return out.getvalue()


def sign(pdf: bytes, issuer: Issuer, chain: list[x509.Certificate], payload: bytes, signature: bytes) -> bytes:
    """Attach the claim and its signature, then sign the whole file (PAdES B-B) with a visible box."""
    from asn1crypto import keys as asn1_keys
    from asn1crypto import x509 as asn1_x509
    from pyhanko import stamp
    from pyhanko.pdf_utils import embed
    from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
    from pyhanko.sign import fields, signers
    from pyhanko_certvalidator.registry import SimpleCertificateStore

    certs = [asn1_x509.Certificate.load(c.public_bytes(serialization.Encoding.DER)) for c in chain]
    key = asn1_keys.PrivateKeyInfo.load(issuer.private_key.private_bytes(
        serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    signer = signers.SimpleSigner(signing_cert=certs[0], signing_key=key,
                                  cert_registry=SimpleCertificateStore.from_certs(certs[1:]))  # each cert once
    writer = IncrementalPdfFileWriter(io.BytesIO(pdf))
    sig_line = f"{issuer.algorithm} {base64.b64encode(signature).decode('ascii')}\n".encode("ascii")
    for name, data, mime, what in ((CLAIM_FILE, payload, "application/json", "signed claim (canonical JSON)"),
                                   (SIGNATURE_FILE, sig_line, "text/plain", "issuer's signature over the claim")):
        embed.embed_file(writer, embed.FileSpec(
            file_spec_string=name, file_name=name, description=what,
            embedded_data=embed.EmbeddedFileObject.from_file_data(writer, data, mime_type=mime)))
    meta = signers.PdfSignatureMetadata(
        field_name=FIELD, md_algorithm="sha512" if issuer.algorithm == ED25519 else "sha256",  # Ed25519 is SHA-512
        subfilter=fields.SigSeedSubFilter.PADES,
        reason="ECDI conformance certificate", location="ECDI Conformance",
        name=f"ECDI certificate issuer ({issuer.role})")
    style = stamp.TextStampStyle(stamp_text="Signed by: %(signer)s\nTime: %(ts)s",
                                 border_width=1)
    out = io.BytesIO()
    signers.PdfSigner(meta, signer, stamp_style=style,
                      new_field_spec=fields.SigFieldSpec(FIELD, on_page=0, box=SIGNATURE_BOX)).sign_pdf(writer, output=out)
    return out.getvalue()
