"""Checking a certificate file with nothing but the trusted public key (and, optionally, the evidence).

The checks run from the most specific reason to the most general, so the verdict line names what
was changed: the claim, a visible fact (the table must say what the signed claim says), or any
other byte of the page (the page signature in the last line). Only then is the issuer's role
weighed: a valid self-assessment is still not a certification. Every problem is a ``Rejected``
with a sentence for the user; nothing in a hostile file can produce a traceback.
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from lxml import etree, html

from ..issuer import key_id, verify
from .certificate import CLAIM_FORMAT, PAGE_SIGNATURE, canonical, overall_text, visible
from .evidence_db import EvidenceUnreadable, chain_head


class Rejected(Exception):
    """The certificate does not hold; ``str()`` is the reason shown to the user."""


@dataclass
class Verified:
    claim: dict
    certified: bool

    def summary(self) -> str:
        c = self.claim
        heading = "CERTIFIED" if self.certified else "SELF-ASSESSMENT"
        party = f"{c['party']} " if c.get("party") else ""     # claims before issue 16 name no party
        return (f"{heading}: {party}{c['sut'].get('product')} {c['sut'].get('version')} on {c['profile']['id']}, "
                f"{overall_text(c)}, {c['date']}")


def _single(doc, element_id: str):
    found = doc.xpath(f'//*[@id="{element_id}"]')
    if len(found) != 1:
        raise Rejected(f"the page holds {len(found)} elements with id {element_id!r}, expected exactly one")
    return found[0]


def _b64(text: str | None, what: str) -> bytes:
    """Strict base64: besides bad characters, refuse spare bits set in the last digit, which would
    let a byte of the file change without changing what it decodes to."""
    text = (text or "").strip()
    try:
        data = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise Rejected(f"the {what} is not valid base64") from None
    if base64.b64encode(data).decode("ascii") != text:
        raise Rejected(f"the {what} is not in canonical base64 (it was edited)")
    return data


def _read(data: bytes) -> tuple[bytes, str, bytes, object]:
    m = PAGE_SIGNATURE.search(data)
    if m is None:
        raise Rejected("no page signature in the last line: not an ECDI certificate, or the file was cut or edited")
    page = data[:m.start()]
    try:
        doc = html.document_fromstring(page.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise Rejected(f"the page is not UTF-8 (byte {exc.start})") from None
    except (etree.ParserError, ValueError) as exc:
        raise Rejected(f"the page is not readable HTML ({exc})") from None
    return page, m.group(1).decode("ascii"), _b64(m.group(2).decode("ascii"), "page signature"), doc


def _claim(doc) -> tuple[bytes, dict]:
    payload = _b64(_single(doc, "ecdi-claim").text, "embedded claim")
    return payload, _parse_claim(payload)


def _parse_claim(payload: bytes) -> dict:
    try:
        claim = json.loads(payload.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        raise Rejected("the embedded claim is not JSON") from None
    if not isinstance(claim, dict) or claim.get("format") != CLAIM_FORMAT:
        raise Rejected(f"the embedded claim is not an {CLAIM_FORMAT} claim")
    if canonical(claim) != payload:
        raise Rejected("the embedded claim is not in canonical form (it was re-encoded or edited)")
    return claim


def _check_visible(doc, claim: dict, signature: bytes) -> None:
    try:
        expected = visible(claim, signature)
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise Rejected(f"the signed claim lacks a field the page shows ({exc})") from None
    shown: dict[str, str] = {}
    for el in doc.xpath("//*[@data-claim]"):
        name = el.get("data-claim")
        if name in shown:
            raise Rejected(f"the page shows {name!r} twice")
        shown[name] = " ".join(el.text_content().split())
    for name, value in expected.items():
        if name not in shown:
            raise Rejected(f"the page does not show {name!r} of the signed claim (a row was removed)")
        if shown[name] != " ".join(value.split()):
            raise Rejected(f"the visible {name} reads {shown[name]!r} but the signed claim says {value!r}")
    extra = sorted(set(shown) - set(expected))
    if extra:
        raise Rejected(f"the page shows {extra[0]!r}, which the signed claim does not hold (a row was added)")


def _check_evidence(claim: dict, db: Path, chain_check: Callable[[Path], tuple[bool, int | None]]) -> None:
    try:
        head = chain_head(db)
        ok, bad = chain_check(db)
    except EvidenceUnreadable as exc:
        raise Rejected(str(exc)) from None
    if not ok:
        raise Rejected(f"the evidence log is not as recorded: its hash chain breaks at row seq {bad}")
    stated = claim.get("evidence") or {}
    if head.get("head_hash") != stated.get("head_hash") or head.get("rows") != stated.get("rows"):
        raise Rejected(f"the evidence chain head {str(head.get('head_hash'))[:16]}… ({head.get('rows')} rows) does not "
                       f"match the certificate's {str(stated.get('head_hash'))[:16]}… ({stated.get('rows')} rows)")


def verify_certificate(data: bytes, trusted_key, *, accept_self_assessment: bool = False,
                       evidence_db: Path | None = None,
                       chain_check: Callable[[Path], tuple[bool, int | None]] | None = None) -> Verified:
    """Check ``data`` (certificate.html or certificate.pdf) against ``trusted_key``; raise ``Rejected``
    with the reason."""
    if data.startswith(b"%PDF-"):
        from .verify_pdf import signed_pdf_claim  # pyhanko only for a PDF

        payload, signature, algorithm = signed_pdf_claim(data, trusted_key)
        claim = _parse_claim(payload)
        _check_claim(claim, payload, signature, algorithm, trusted_key)
        return _judge(claim, accept_self_assessment, evidence_db, chain_check)
    page, page_alg, page_sig, doc = _read(data)
    payload, claim = _claim(doc)
    sig_el = _single(doc, "ecdi-signature")
    signature = _b64(sig_el.text, "claim signature")
    algorithm = sig_el.get("data-algorithm") or ""
    _check_claim(claim, payload, signature, algorithm, trusted_key)
    _check_visible(doc, claim, signature)
    if page_alg != algorithm or not verify(trusted_key, page_alg, page_sig, page):
        raise Rejected("the page was altered after signing: its page signature does not verify")
    return _judge(claim, accept_self_assessment, evidence_db, chain_check)


def _check_claim(claim: dict, payload: bytes, signature: bytes, algorithm: str, trusted_key) -> None:
    issuer = claim.get("issuer") or {}
    if not verify(trusted_key, algorithm, signature, payload):
        if issuer.get("key_id") != key_id(trusted_key):
            raise Rejected(f"signed by another key ({str(issuer.get('key_id'))[:16]}…), not the trusted key "
                           f"({key_id(trusted_key)[:16]}…)")
        raise Rejected("the claim was altered: its signature does not verify with the trusted key")
    if issuer.get("key_id") != key_id(trusted_key):
        raise Rejected("the claim names another issuer key than the one that signed it")


def _judge(claim: dict, accept_self_assessment: bool, evidence_db: Path | None,
           chain_check: Callable[[Path], tuple[bool, int | None]] | None) -> Verified:
    """The role, then the evidence: asked only of a claim whose signatures hold."""
    issuer = claim.get("issuer") or {}
    certification = claim.get("certification") or {}
    certified = bool(certification.get("certified")) and issuer.get("role") == "customs"
    if not certified and not accept_self_assessment:
        reasons = "; ".join(certification.get("reasons") or ["no reason stated"])
        raise Rejected(f"a genuine SELF-ASSESSMENT, not a certification: {reasons}")
    if evidence_db is not None:
        if chain_check is None:
            raise Rejected("no evidence chain checker was given")
        _check_evidence(claim, Path(evidence_db), chain_check)
    return Verified(claim, certified)

