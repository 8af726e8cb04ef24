"""Preparing the user's business document for signing (TXT-03, TXT-05, ENV-01, DOC-02, DOC-03).

The DTS owns these steps, not the user: whatever text was typed, pasted or imported is normalised
to NFC with CR LF turned into LF; goods lines are numbered and totals computed by the DTS itself;
a declaration with too many goods items is refused before anything is built or sent.
"""

from __future__ import annotations

import copy
import re
import unicodedata
from decimal import Decimal

from lxml import etree

from ..codec.namespaces import DEC, PAY, q


class DocumentRefused(Exception):
    """The DTS will not send this document; ``requirement`` is the rule, ``text`` what the user is told."""

    def __init__(self, requirement: str, text: str):
        super().__init__(text)
        self.requirement = requirement
        self.text = text


_DECIMAL = re.compile(r"(0|[1-9][0-9]*)(\.[0-9]+)?", re.ASCII)


def normalise_text(value: str | None) -> str | None:
    """TXT-05: CR LF becomes LF; TXT-03: Unicode NFC (e.g. decomposed "Hải" from a legacy font converter)."""
    if value is None:
        return None
    return unicodedata.normalize("NFC", value.replace("\r\n", "\n"))


def decimal_text(value: Decimal) -> str:
    """The §4.2 lexical form of a decimal: no exponent, no grouping, no trailing fraction zeros (TXT-06)."""
    text = format(value, "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return text


def _normalise_tree(doc: etree._Element) -> None:
    """NFC + LF for every text node; comments and processing instructions dropped (ENV-01)."""
    for node in list(doc.iter(etree.Comment, etree.ProcessingInstruction)):
        parent = node.getparent()
        if parent is not None:
            # keep the node's tail text: it belongs to the surrounding content
            previous = node.getprevious()
            if node.tail:
                if previous is not None:
                    previous.tail = (previous.tail or "") + node.tail
                else:
                    parent.text = (parent.text or "") + node.tail
            parent.remove(node)
    for el in doc.iter():
        el.text = normalise_text(el.text)
        if el is not doc:
            el.tail = normalise_text(el.tail)


def _set_child_text(parent: etree._Element, tag: str, text: str, *, index: int | None = None) -> None:
    el = parent.find(tag)
    if el is None:
        el = etree.Element(tag)
        if index is None:
            parent.append(el)
        else:
            parent.insert(index, el)
    el.text = text


def _exact_sum(values: list[str | None]) -> Decimal | None:
    """The exact decimal sum, or None if a value is not a §4.2 decimal (then validation reports it)."""
    if not values or any(v is None or not _DECIMAL.fullmatch(v.strip()) for v in values):
        return None
    return sum((Decimal(v.strip()) for v in values), Decimal(0))


def _prepare_declaration(decl: etree._Element, n_goods_max: int) -> None:
    items = decl.findall(q(DEC, "GoodsItem"))
    if len(items) > n_goods_max:
        raise DocumentRefused(
            "DOC-02",
            f"The declaration has {len(items)} goods items; at most {n_goods_max} are allowed in one declaration. "
            f"Split the shipment into several declarations of at most {n_goods_max} goods items each. "
            "Nothing was sent.")
    for number, item in enumerate(items, start=1):            # DOC-03: lineNo 1, 2, 3… in document order
        _set_child_text(item, q(DEC, "lineNo"), str(number), index=0)
    total = _exact_sum([item.findtext(q(DEC, "value")) for item in items])
    invoice = decl.find(q(DEC, "Invoice"))
    if invoice is not None and total is not None:             # DOC-03: the exact sum, no rounding
        _set_child_text(invoice, q(DEC, "totalValue"), decimal_text(total))


def _prepare_payment_order(order: etree._Element) -> None:
    lines = order.findall(q(PAY, "TaxLine"))
    total = _exact_sum([line.findtext(q(PAY, "amountVND")) for line in lines])
    if total is not None and order.find(q(PAY, "totalVND")) is not None:   # DOC-03: totalVND
        order.find(q(PAY, "totalVND")).text = decimal_text(total)


def prepare_content(content: etree._Element, *, n_goods_max: int) -> etree._Element:
    """A prepared copy of ``content`` (the caller's tree is left untouched)."""
    doc = copy.deepcopy(content)
    _normalise_tree(doc)
    for decl in doc.iter(q(DEC, "Declaration")):
        _prepare_declaration(decl, n_goods_max)
    for order in doc.iter(q(PAY, "PaymentOrder")):
        _prepare_payment_order(order)
    return doc
