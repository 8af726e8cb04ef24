"""The conformance certificate: a printable HTML page with an embedded, signed claim.

The page is rendered server-side (Jinja2, autoescaped) rather than by pytest-html's JavaScript, so it
prints with all rows. The claim is canonical JSON (sorted keys, UTF-8) signed with Ed25519 by the
issuer's key; the visible page is derived from the same claim. A run whose timers were scaled
(s < 1) is a self-assessment, never a certification (spec §2.1).
"""

from __future__ import annotations

import base64
import hashlib
import json
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from jinja2 import Environment, PackageLoader, select_autoescape

CLAIM_FORMAT = "ecdi-certificate-claim/1"


def canonical(claim: dict) -> bytes:
    return json.dumps(claim, sort_keys=True, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def issuer_key(folder: Path) -> Ed25519PrivateKey:
    """The self-assessment issuer key, created once per work folder (customs' key comes later)."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "self-assessment-ed25519.pem"
    if path.exists():
        return serialization.load_pem_private_key(path.read_bytes(), password=None)
    key = Ed25519PrivateKey.generate()
    path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                       serialization.NoEncryption()))
    path.chmod(0o600)
    return key


def build_claim(results: dict) -> dict:
    scaled = results["time_scale"] < 1
    mutant = results["sut"].get("mutant")
    return {
        "format": CLAIM_FORMAT,
        "issuer_role": "self-assessment",
        "self_test_reason": (
            "timers scaled by time_scale < 1 (spec §2.1)" if scaled else
            "issued with a local self-assessment key, not the customs authority's"
        ) + (f"; reference DTS run with mutant {mutant}" if mutant else ""),
        "harness": results["harness"],
        "profile": results["profile"],
        "sut": results["sut"],
        "time_scale": results["time_scale"],
        "seed": results["seed"],
        "date": results["finished_at"],
        "overall": results["overall"],
        "cases": [
            {"id": c["id"], "requirements": c["requirements"], "verdict": c["verdict"], "evidence": c["evidence"]}
            for c in results["cases"]
        ],
    }


def write_certificate(out_dir: Path, results: dict) -> Path:
    claim = build_claim(results)
    key = issuer_key(out_dir / "work" / "issuer")
    payload = canonical(claim)
    signature = key.sign(payload)
    public_pem = key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    (out_dir / "certificate-issuer.pub.pem").write_bytes(public_pem)
    env = Environment(loader=PackageLoader("conformance.report", "templates"), autoescape=select_autoescape(["html", "j2"]))
    page = env.get_template("certificate.html.j2").render(
        claim=claim,
        results=results,
        claim_b64=base64.b64encode(payload).decode("ascii"),
        signature_b64=base64.b64encode(signature).decode("ascii"),
        verification_code=hashlib.sha256(signature).hexdigest()[:16].upper(),
        public_key_pem=public_pem.decode("ascii"),
    )
    path = out_dir / "certificate.html"
    path.write_text(page, encoding="utf-8")
    return path
