"""Rates of the codec's hot paths: signing, verifying and validating a declaration request."""

from __future__ import annotations

import copy
import sys
import tempfile
import timeit
from pathlib import Path

from lxml import etree

from conformance.codec import envelope, safexml, xmlsig
from conformance.codec.namespaces import DEC, q
from conformance.pki import TestPKI
from conformance.profile import FIXTURES, load_profile


def request(goods: int, pki: TestPKI) -> tuple[etree._Element, bytes]:
    """An unsigned request envelope with ``goods`` items, and its signed message text."""
    decl = etree.parse(str(FIXTURES / "samples" / "declaration-import.xml"), safexml.hardened_parser()).getroot()
    item = decl.find(q(DEC, "GoodsItem"))
    for i in range(goods - len(decl.findall(q(DEC, "GoodsItem")))):
        decl.append(copy.deepcopy(item))
    header = envelope.Header({
        "procedureType": "1", "Reference/version": "1.0", "Reference/messageId": envelope.new_message_id(),
        "SendApplication/name": "bench", "SendApplication/version": "1", "SendApplication/companyName": "Bench",
        "SendApplication/companyIdentity": "0100000009",
        "SendApplication/createMessageIssue": envelope.format_datetime(__import__("datetime").datetime.now()),
        "From/name": pki.declarant_name, "From/identity": pki.declarant_tax_code, "To/name": "Chi cục", "To/identity": "03TG",
        "Subject/type": "929", "Subject/function": "8", "Subject/reference": "BENCH-1",
        "Subject/sendApplication": "6a1c0b7e-2d3f-4c5b-8e9a-0f1e2d3c4b5a", "Subject/receiveApplication": "CGW",
    })
    unsigned = envelope.build_envelope(header, decl)
    return unsigned, xmlsig.sign_envelope(copy.deepcopy(unsigned), pki.declarant.signer())


def rate(fn, seconds: float = 1.0) -> float:
    n, elapsed = 0, 0.0
    while elapsed < seconds:
        elapsed += timeit.timeit(fn, number=10)
        n += 10
    return n / elapsed


def main() -> int:
    profile = load_profile("ecdi-1.0")
    with tempfile.TemporaryDirectory() as tmp:
        pki = TestPKI.ensure(Path(tmp))
        signer = pki.declarant.signer()
        for goods in (2, 50):
            unsigned, text = request(goods, pki)
            root = safexml.parse_message_text(text)
            print(f"{len(text) / 1024:.0f} KB request ({goods} goods items):")
            print(f"  sign       {rate(lambda: xmlsig.sign_envelope(copy.deepcopy(unsigned), signer)):8.0f}/s")
            print(f"  verify     {rate(lambda: xmlsig.verify_envelope(text)):8.0f}/s")
            print(f"  validate   {rate(lambda: (profile.validate_envelope(root, 'request'), profile.validate_content(root))):8.0f}/s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
