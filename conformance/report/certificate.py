"""The conformance certificate: a printable HTML page with an embedded, signed claim.

The page is rendered server-side (Jinja2, autoescaped) rather than by pytest-html's JavaScript, so it
prints with all rows. There is one source of truth, the *claim* (canonical JSON: sorted keys,
UTF-8): every fact the page shows comes from ``visible(claim, signature)`` and carries a
``data-claim`` attribute naming it, so ``ecdi verify`` can check the visible table against the
signed claim. Two signatures by the issuer's key: one over the claim (the machine-readable
statement) and one over the whole page as written (a trailing comment), so any one-byte edit of the
file is detected on any machine with only the public key.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import sys
from pathlib import Path

from cryptography.hazmat.primitives.serialization import Encoding

from ..issuer import Issuer, IssuerError, certificate_chain, public_pem, resolve_issuer
from ..titles import case_title
from .certification import refusal_reasons
from . import pdf
from .outputs import atomic_write
from .pdf import VERDICT_ORDER as VERDICTS
from .pdf import VERDICT_VI, PdfUnavailable
from .templating import environment

CLAIM_FORMAT = "ecdi-certificate-claim/2"
CERTIFIED = "CERTIFIED · ĐÃ CHỨNG NHẬN"
SELF_ASSESSMENT = "SELF-ASSESSMENT · TỰ ĐÁNH GIÁ"
# a partial or interrupted run is headed as what it is, never as a statement of conformance
HEADINGS = {"INCOMPLETE": "INCOMPLETE RUN · CHẠY CHƯA ĐỦ — NOT A CONFORMANCE STATEMENT",
            "INTERRUPTED": "INTERRUPTED RUN · BỊ GIÁN ĐOẠN — NOT A CONFORMANCE STATEMENT"}
OVERALL_VI = {"CONFORMANT": "PHÙ HỢP", "NOT CONFORMANT": "KHÔNG PHÙ HỢP", "INCOMPLETE": "CHƯA ĐỦ CA KIỂM THỬ",
              "INTERRUPTED": "BỊ GIÁN ĐOẠN"}
PAGE_SIGNATURE = re.compile(rb"<!--ecdi-page-signature ([A-Za-z0-9-]+) ([A-Za-z0-9+/=]+)-->\n\Z")
COVERAGE_PLACEHOLDER = {"status": "not measured"}
NOT_MET = {"FAIL", "ERROR"}


def canonical(claim: dict) -> bytes:
    return json.dumps(claim, sort_keys=True, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def verification_code(signature: bytes) -> str:
    """Sixteen hex digits of the claim signature's hash, grouped for reading aloud over the phone."""
    digest = hashlib.sha256(signature).hexdigest()[:16].upper()
    return "-".join(digest[i:i + 4] for i in range(0, 16, 4))


def run_coverage(results: dict) -> dict:
    """Requirements coverage of the cases that ran (``conformance.coverage``): what was certified."""
    from ..catalogue import all_cases
    from ..profile import ProfileError, load_profile

    try:
        from ..coverage import coverage

        profile = load_profile(results["profile"]["id"])
    except (ImportError, ProfileError):  # no coverage measure or profile: say so rather than guess
        return dict(COVERAGE_PLACEHOLDER)
    ran = {c["id"] for c in results["cases"]}
    party = results.get("party", "DTS")
    cov = coverage(profile, [s for s in all_cases() if s.id in ran], party)
    figures = {level: list(cov.level_figures(level)) for level in ("MUST", "SHOULD")}
    status = ", ".join(f"{level} {c}/{t}" for level, (c, t) in figures.items()) + f" requirements binding the {party}"
    return {"status": status, "kind": "requirements", **figures, "uncovered_must": cov.uncovered("MUST"),
            "not_met": not_met(results["cases"])}


def not_met(cases: list[dict]) -> list[str]:
    """The requirements whose status (worst non-advisory finding, ``results.requirement_status``) is FAIL or ERROR."""
    from .results import requirement_status

    return sorted(rid for rid, e in requirement_status(cases).items() if e["status"] in NOT_MET)


def verdict_counts(cases: list[dict]) -> dict[str, int]:
    return {v: sum(1 for c in cases if c["verdict"] == v) for v in VERDICTS}


def signature_algorithms(results: dict) -> list[str]:
    """The signature algorithms the product was seen to use: "SignatureMethod DigestMethod" URI pairs
    from the detail of the signature findings (``checks.signature_conforms``, ``signature_shape``).

    Read from what the gateway received, not from the capability statement: issue 4 asks the
    certificate to show the algorithm the product *used*. Empty when no case looked at a signature.
    """
    seen = {f"{d['signature_method']} {d['digest_method']}"
            for c in results["cases"] for f in c.get("findings", [])
            for d in [f.get("detail") or {}] if d.get("signature_method") and d.get("digest_method")}
    return sorted(seen)


def _short(algorithm_pair: str) -> str:
    """``…xmldsig-more#rsa-sha256 …xmlenc#sha256`` → ``rsa-sha256 / sha256`` (the URI fragments)."""
    return " / ".join(uri.rsplit("#", 1)[-1] for uri in algorithm_pair.split())


def build_claim(results: dict, issuer: Issuer, *, evidence: dict | None, interrupted: bool,
                catalogue: set[str] | None, released: dict[str, str] | None = None) -> dict:
    from .results import case_requirement_status

    reasons = refusal_reasons(results, role=issuer.role, interrupted=interrupted, catalogue=catalogue,
                              released=released)
    return {
        "format": CLAIM_FORMAT,
        "issuer": {"role": issuer.role, "key_id": issuer.key_id, "algorithm": issuer.algorithm},
        "certification": {"certified": not reasons, "reasons": reasons},
        "harness": results["harness"],
        "profile": results["profile"],
        "sut": results["sut"],
        **({"party": results["party"]} if results.get("party") else {}),   # issue 16: which party was tested
        **({"gateway": {k: results["gateway"][k] for k in ("name", "vendor", "build", "endpoint")}}
           if results.get("gateway") else {}),
        "time_scale": results["time_scale"],
        "seed": results["seed"],
        "date": results["finished_at"],
        "interrupted": interrupted,
        "overall": results["overall"],
        "counts": verdict_counts(results["cases"]),
        **({"scope": {k: results["scope"][k] for k in ("executed", "applicable")}} if results.get("scope") else {}),
        "coverage": run_coverage(results),
        "signature_algorithms": signature_algorithms(results),
        "evidence": evidence or {"head_hash": None, "rows": 0},
        **({"shared_gateway": results["shared_gateway"]} if results.get("shared_gateway") else {}),   # issue 14
        "cases": [
            {"id": c["id"], "family": c.get("family", ""), "requirements": c["requirements"],
             "verdict": c["verdict"], "evidence": c["evidence"], "certificates": c.get("certificates", []),
             "requirement_status": {rid: v.value for rid, (v, _) in case_requirement_status(c).items()},
             **({"title": t} if (t := case_title(c["id"])) else {})}
            for c in results["cases"]
        ],
    }


def overall_text(claim: dict) -> str:
    """``INCOMPLETE (1 of 65 cases)``; the plain overall for every other value (a claim or results.json)."""
    scope = claim.get("scope")
    if claim["overall"] == "INCOMPLETE" and scope:
        return f"INCOMPLETE ({scope['executed']} of {scope['applicable']} cases)"
    return claim["overall"]


def _requirements_shown(case: dict) -> str:
    """Each requirement, with its own status where it differs from the case's verdict (PAY-01 (PASS))."""
    status = case.get("requirement_status") or {}
    return ", ".join(r if status.get(r, case["verdict"]) == case["verdict"] else f"{r} ({status[r]})"
                     for r in case["requirements"])


def coverage_text(coverage: dict) -> str:
    """Coverage as the scope of testing, never as a result: ``MUST 73/73`` beside a failed product
    reads as a pass, so the figures are labelled as tested and followed by what was not met."""
    if "not_met" not in coverage:  # claims written before issue 15, or coverage not measured
        return coverage["status"]
    figures = ", ".join(f"{level} {c}/{t}" for level in ("MUST", "SHOULD") if level in coverage
                        for c, t in [coverage[level]])
    met = (f"không đạt / not met: {len(coverage['not_met'])} ({', '.join(coverage['not_met'])})"
           if coverage["not_met"] else "không đạt / not met: 0")
    return f"đã kiểm thử / tested: {figures} (phạm vi, không phải kết quả / scope, not a result); {met}"


PARTY_TEXT = {"DTS": "DTS — phần mềm khai báo / declarant terminal software",
              "CGW": "CGW — cổng thông tin hải quan / customs gateway"}


def gateway_text(gateway: dict) -> str:
    """A run on a shared gateway (``ecdi run --shared-gateway``): which, and what part of its chain the evidence is."""
    part = gateway.get("slice") or {}
    if not part.get("first_pos"):
        return f"dùng chung / shared: {gateway.get('url')}; no row of this run in its evidence chain"
    start = "the genesis" if set(part["prev_hash"]) == {"0"} else f"head {part['prev_hash'][:16]}…"
    return (f"dùng chung / shared: {gateway.get('url')}; evidence: its chain from position {part['first_pos']} "
            f"after {start}, {part['rows']} rows, {part['rows_of_other_sessions']} of other sessions with their "
            f"octets withheld")


def visible(claim: dict, signature: bytes) -> dict[str, str]:
    """Every fact the page shows, keyed by the ``data-claim`` name it is shown under."""
    sut, profile, evidence = claim["sut"], claim["profile"], claim["evidence"]
    certified = claim["certification"]["certified"]
    v = {
        "heading": HEADINGS.get(claim["overall"]) or (CERTIFIED if certified else SELF_ASSESSMENT),
        "overall": overall_text(claim),
        "sut.vendor": f"{sut.get('vendor')} ({sut.get('vendor_tax_code')})",
        "sut.product": f"{sut.get('product')} {sut.get('version')}"
                       + (f" — mutant {sut['mutant']}" if sut.get("mutant") else ""),
        "sut.build_hash": sut.get("build_hash") or "—",
        "profile.id": f"{profile['id']} (ECDI {profile['version']})",
        "profile.hash": profile["hash"],
        "harness": f"{claim['harness']['name']} {claim['harness']['version']}",
        "time_scale": f"{claim['time_scale']:g}",
        "date": claim["date"],
        "seed": str(claim["seed"]),
        "coverage": coverage_text(claim["coverage"]),
        "evidence.head_hash": evidence.get("head_hash") or "—",
        "evidence.rows": str(evidence.get("rows", 0)),
        "issuer.role": claim["issuer"]["role"],
        "issuer.key_id": claim["issuer"]["key_id"],
        "verification_code": verification_code(signature),
    }
    if "party" in claim:  # claims written before issue 16 name no party: they are all DTS certificates
        v["party"] = PARTY_TEXT[claim["party"]] + (f" — {claim['gateway']['endpoint']}" if claim.get("gateway") else "")
        if claim["party"] == "CGW" and not sut.get("vendor_tax_code"):
            v["sut.vendor"] = str(sut.get("vendor"))
    if "shared_gateway" in claim:
        v["shared_gateway"] = gateway_text(claim["shared_gateway"])
    for verdict, n in (claim.get("counts") or {}).items():  # claims written before issue 15 have no counts
        v[f"counts.{verdict}"] = str(n)
    if "signature_algorithms" in claim:  # claims written before issue 4 have neither field
        v["signature_algorithms"] = ", ".join(_short(a) for a in claim["signature_algorithms"]) or "—"
    for i, reason in enumerate(claim["certification"]["reasons"]):
        v[f"reasons.{i}"] = reason
    for i, c in enumerate(claim["cases"]):
        v[f"cases.{i}.id"] = c["id"]
        if "title" in c:
            v[f"cases.{i}.title"] = f"{c['title']['vi']} / {c['title']['en']}"
        v[f"cases.{i}.requirements"] = _requirements_shown(c)
        v[f"cases.{i}.evidence"] = ", ".join(c["evidence"])
        v[f"cases.{i}.verdict"] = c["verdict"]
        if "certificates" in c:
            v[f"cases.{i}.certificates"] = ", ".join(c["certificates"]) or "—"
    return v


def overall_class(claim: dict) -> str:
    """The CSS class (and PDF colour) of the overall: CONFORMANT, NOT, INCOMPLETE or INTERRUPTED."""
    return claim["overall"].split()[0]


def render(claim: dict, issuer: Issuer, signature: bytes | None = None) -> bytes:
    """The signed page: the rendered template followed by the page signature as its last line."""
    payload = canonical(claim)
    signature = signature or issuer.sign(payload)
    page = environment().get_template("certificate.html.j2").render(
        claim=claim,
        v=visible(claim, signature),
        claim_b64=base64.b64encode(payload).decode("ascii"),
        signature_b64=base64.b64encode(signature).decode("ascii"),
        overall_vi=OVERALL_VI.get(claim["overall"], claim["overall"]),
        overall_class=overall_class(claim),
        verdicts=[(k, VERDICT_VI[k]) for k in VERDICTS],
        algorithm=issuer.algorithm,
        public_key_pem=public_pem(issuer.public_key).decode("ascii"),
    ).encode("utf-8")
    if not page.endswith(b"\n"):
        page += b"\n"
    trailer = base64.b64encode(issuer.sign(page)).decode("ascii")
    return page + f"<!--ecdi-page-signature {issuer.algorithm} {trailer}-->\n".encode("ascii")


def write_certificate(out_dir: Path, results: dict, *, issuer: Issuer | None = None, evidence: dict | None = None,
                      interrupted: bool = False, catalogue: set[str] | None = None) -> Path:
    """certificate.html, then certificate.pdf from the same claim and claim signature, and the issuer's
    public key and certificate beside them (what ``ecdi verify --trust`` is given)."""
    issuer = issuer or resolve_issuer(out_dir / "work" / "issuer")
    claim = build_claim(results, issuer, evidence=evidence, interrupted=interrupted, catalogue=catalogue)
    signature = issuer.sign(canonical(claim))
    atomic_write(out_dir / "certificate-issuer.pub.pem", public_pem(issuer.public_key))
    page = atomic_write(out_dir / "certificate.html", render(claim, issuer, signature))
    try:
        chain = certificate_chain(issuer, out_dir / "work" / "issuer")
        atomic_write(out_dir / "certificate-issuer.crt.pem", b"".join(c.public_bytes(Encoding.PEM) for c in chain))
        atomic_write(out_dir / "certificate.pdf", render_pdf(claim, issuer, signature, chain))
    except (PdfUnavailable, IssuerError) as exc:  # the signed HTML stands alone; say why there is no PDF
        print(f"ecdi: {exc}", file=sys.stderr)
    return page


def render_pdf(claim: dict, issuer: Issuer, signature: bytes, chain) -> bytes:
    """certificate.pdf: the same facts laid out by ``pdf.layout``, signed as PAdES by ``pdf.sign``."""
    counts = claim.get("counts") or verdict_counts(claim["cases"])
    unsigned = pdf.layout(claim, visible(claim, signature), OVERALL_VI.get(claim["overall"], claim["overall"]),
                          overall_class(claim), counts)
    return pdf.sign(unsigned, issuer, chain, canonical(claim), signature)
