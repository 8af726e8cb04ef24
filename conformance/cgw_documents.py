"""The business documents the harness sends a CGW beyond a declaration (Tables 6-2 to 6-4): amendments,
cancellations, payment orders, approvals, OTP requests and queries. Built from the fixtures' samples and the
request they follow, so a CGW case names what it sends, never how its XML is spelt.
"""

from __future__ import annotations

import copy
from pathlib import Path

from lxml import etree

from .codec import safexml
from .codec.envelope import content_child
from .codec.namespaces import DEC, ENV, PAY, q

SAMPLES = Path(__file__).resolve().parents[1] / "fixtures" / "samples"


def _element(xml: str) -> etree._Element:
    return etree.fromstring(xml.encode("utf-8"), safexml.hardened_parser())


def _sub(parent: etree._Element, ns: str, tag: str, text: str) -> etree._Element:
    el = etree.SubElement(parent, q(ns, tag))
    el.text = text
    return el


def query(after: int) -> etree._Element:
    """Table 6-3: ``e:Query`` with ``afterSequence``."""
    el = etree.Element(q(ENV, "Query"), nsmap={None: ENV})
    _sub(el, ENV, "afterSequence", str(after))
    return el


def declaration_of(request_text: bytes) -> etree._Element:
    """A copy of the ``dec:Declaration`` a declaration request carried (an amendment replaces it whole)."""
    content = content_child(safexml.parse_message_text(request_text))
    if content is None or content.tag != q(DEC, "Declaration"):
        raise ValueError("the request holds no dec:Declaration")
    return copy.deepcopy(content)


def amendment(number: str, declaration: etree._Element, reason: str = "Sửa trị giá hóa đơn") -> etree._Element:
    """Table 6-2: ``dec:Amendment`` of declaration ``number`` with ``declaration`` as its replacement."""
    el = etree.Element(q(DEC, "Amendment"), nsmap={None: DEC})
    _sub(el, DEC, "declarationNumber", number)
    _sub(el, DEC, "reason", reason)
    el.append(copy.deepcopy(declaration))
    return el


def cancellation(number: str, reason_code: str = "02", reason: str = "Khai trùng tờ khai") -> etree._Element:
    """Table 6-2: ``dec:Cancellation`` of declaration ``number``."""
    el = etree.Element(q(DEC, "Cancellation"), nsmap={None: DEC})
    _sub(el, DEC, "declarationNumber", number)
    _sub(el, DEC, "reasonCode", reason_code)
    _sub(el, DEC, "reason", reason)
    return el


TAX_LINES = (("XNK", "12500000"), ("VAT", "27500000"))
NOTE = "Nộp thuế tờ khai tháng 3"


def description(tax_code: str, lines, note: str | None = NOTE) -> str:
    """PAY-01's canonical rendering: ``ECDI+MST:`` taxcode, one ``+TK:`` per tax line in order, ``+GC:`` note."""
    text = f"ECDI+MST:{tax_code}" + "".join(f"+TK:{number}/{tax}/{amount}" for number, tax, amount in lines)
    return text + (f"+GC:{note}" if note else "")


def payment_order(tax_code: str, maker: str, declaration_number: str, *, rendered: str | None = None,
                  bank_code: str | None = None) -> etree._Element:
    """Table 6-4: ``pay:PaymentOrder`` after the fixtures' sample, paying ``TAX_LINES`` of the declaration,
    with the canonical description (or ``rendered`` in its place, for PAY-01's negative cases)."""
    sample = etree.parse(str(SAMPLES / "payment-order.xml"), safexml.hardened_parser()).getroot()
    el = etree.Element(q(PAY, "PaymentOrder"), nsmap={None: PAY})
    _sub(el, PAY, "maker", maker)
    _sub(el, PAY, "bankCode", bank_code or sample.findtext(q(PAY, "bankCode")))
    _sub(el, PAY, "accountNumber", sample.findtext(q(PAY, "accountNumber")))
    lines = [(declaration_number, tax, amount) for tax, amount in TAX_LINES]
    for number, tax, amount in lines:
        line = etree.SubElement(el, q(PAY, "TaxLine"))
        _sub(line, PAY, "declarationNumber", number)
        _sub(line, PAY, "taxType", tax)
        _sub(line, PAY, "amountVND", amount)
    _sub(el, PAY, "totalVND", str(sum(int(a) for _, _, a in lines)))
    _sub(el, PAY, "description", rendered if rendered is not None else description(tax_code, lines))
    return el


def approval(order_id: str, checker: str, otp: str) -> etree._Element:
    """Table 6-4: ``pay:PaymentApproval``."""
    el = etree.Element(q(PAY, "PaymentApproval"), nsmap={None: PAY})
    _sub(el, PAY, "paymentOrderId", order_id)
    _sub(el, PAY, "checker", checker)
    _sub(el, PAY, "otp", otp)
    return el


def otp_request(order_id: str) -> etree._Element:
    """Table 6-4: ``pay:OtpRequest`` (702/16; its Subject/reference is the order id, ENV-05)."""
    el = etree.Element(q(PAY, "OtpRequest"), nsmap={None: PAY})
    _sub(el, PAY, "paymentOrderId", order_id)
    return el
