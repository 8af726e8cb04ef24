"""Preparing the user's business document for signing (TXT-03, TXT-04, TXT-05, TXT-06, ENV-01, DOC-02, DOC-03).

The DTS owns these steps, not the user: whatever text was typed, pasted or imported is normalised
to NFC with CR LF turned into LF; Text(n) values lose the white space at their edges and never carry a
control character; lengths are counted in code points after NFC; goods lines are numbered and totals
computed by the DTS itself, as exact decimals in the §4.2 lexical form whatever the user-interface
locale; a declaration with too many goods items is refused before anything is built or sent.

Each decision goes through a method of ``rules`` (the reference DTS's hooks, see ``dts.py``), so that
a mutant can get exactly one of them wrong; ``ReferenceRules`` holds the reference behaviour.
"""

from __future__ import annotations

import copy
import re
import unicodedata
from dataclasses import dataclass
from decimal import Decimal
from functools import cache
from pathlib import Path

from lxml import etree

from ..codec.namespaces import DEC, PAY, q


class DocumentRefused(Exception):
    """The DTS will not send this document; ``requirement`` is the rule, ``text`` what the user is told."""

    def __init__(self, requirement: str, text: str):
        super().__init__(text)
        self.requirement = requirement
        self.text = text


_DECIMAL = re.compile(r"(0|[1-9][0-9]*)(\.[0-9]+)?", re.ASCII)
_WHITE_CONTROLS = "\t\n\r\x0b\x0c\x85"          # control characters that are white space (TAB, LF, CR, VT, FF, NEL)


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


def _is_edge_space(c: str) -> bool:
    """What Text(n) may not begin or end with: white space, a Unicode separator (Z*) or a control (Cc)."""
    return c.isspace() or unicodedata.category(c) in ("Zs", "Zl", "Zp", "Cc")


def clean_text(value: str, *, lf_allowed: bool, where: str) -> str:
    """TXT-05 for one Text(n) value (already NFC, CR LF already LF).

    White-space control characters inside (TAB, a lone CR, VT, FF, NEL; LF where LF is not allowed —
    an address pasted on two lines) become a space; white space at the edges is removed. Any other
    control character (U+0000–U+001F, U+007F–U+009F) is a mistake the user must correct: refused.
    """
    keep = "\n" if lf_allowed else ""
    value = "".join(" " if c in _WHITE_CONTROLS and c not in keep else c for c in value)
    start, end = 0, len(value)
    while start < end and _is_edge_space(value[start]):
        start += 1
    while end > start and _is_edge_space(value[end - 1]):
        end -= 1
    value = value[start:end]
    for c in value:
        if unicodedata.category(c) == "Cc" and c not in keep:
            raise DocumentRefused("TXT-05", f"{where} contains the control character U+{ord(c):04X}, which "
                                  "a customs document may not hold (often a character mis-converted from another "
                                  "encoding). Correct the text; nothing was sent.")
    return value


def exact_sum(values: list[str | None]) -> Decimal | None:
    """The exact decimal sum, or None if a value is not a §4.2 decimal (then validation reports it)."""
    if not values or any(v is None or not _DECIMAL.fullmatch(v.strip()) for v in values):
        return None
    return sum((Decimal(v.strip()) for v in values), Decimal(0))


def goods_limit_refusal(count: int, n_goods_max: int) -> DocumentRefused:
    return DocumentRefused(
        "DOC-02",
        f"The declaration has {count} goods items; at most {n_goods_max} are allowed in one declaration. "
        f"Split the shipment into several declarations of at most {n_goods_max} goods items each. "
        "Nothing was sent.")


class ReferenceRules:
    """The reference behaviour of every preparation step; ``ReferenceDTS`` exposes each as a hook."""

    def normalise_text(self, value: str | None) -> str | None:
        return normalise_text(value)

    def clean_text(self, value: str, *, lf_allowed: bool, where: str) -> str:
        return clean_text(value, lf_allowed=lf_allowed, where=where)

    def text_length(self, value: str) -> int:
        return len(value)

    def goods_limit(self, items: list, n_goods_max: int) -> list:
        if len(items) > n_goods_max:
            raise goods_limit_refusal(len(items), n_goods_max)
        return items

    def line_numbers(self, given: list[str | None]) -> list[str]:
        return [str(n) for n in range(1, len(given) + 1)]

    def sum_amounts(self, values: list[str | None]) -> Decimal | None:
        return exact_sum(values)

    def number_text(self, value: Decimal) -> str:
        return decimal_text(value)


# --- Text(n) limits, read from the profile's content schemas (one source of truth) -------------------

@dataclass(frozen=True)
class TextLimit:
    maximum: int
    lf_allowed: bool


_XS = "http://www.w3.org/2001/XMLSchema"
_TEXT_TYPE = re.compile(r"Text([0-9]+)(LF)?")


@cache
def text_limits(xsd_dir: Path) -> dict[tuple[str, str | None, str], TextLimit]:
    """(namespace, parent element's local name, element's local name) → its Text(n) type's limit."""
    limits: dict[tuple[str, str | None, str], TextLimit] = {}
    for path in sorted(Path(xsd_dir).glob("*.xsd")):
        schema = etree.parse(str(path)).getroot()
        ns = schema.get("targetNamespace")
        for el in schema.iter(f"{{{_XS}}}element"):
            match = _TEXT_TYPE.fullmatch((el.get("type") or "").split(":")[-1])
            if not match or el.get("name") is None:
                continue
            parent = el.getparent()
            while parent is not None and not (parent.tag == f"{{{_XS}}}element" and parent.get("name")):
                parent = parent.getparent()
            limits[(ns, parent.get("name") if parent is not None else None, el.get("name"))] = TextLimit(
                int(match.group(1)), bool(match.group(2)))
    return limits


def _local(tag: str) -> tuple[str, str]:
    ns, _, local = tag[1:].partition("}")
    return ns, local


def _label(el: etree._Element) -> str:
    """A path the user can find the value by, e.g. ``GoodsItem[3]/description``."""
    steps = []
    while el is not None and el.getparent() is not None:
        parent = el.getparent()
        same = [c for c in parent if c.tag == el.tag]
        name = _local(el.tag)[1]
        steps.append(f"{name}[{same.index(el) + 1}]" if len(same) > 1 else name)
        el = parent
    return "/".join(reversed(steps)) or "the document"


# --- the preparation ------------------------------------------------------------------------------

def _normalise_tree(doc: etree._Element, rules) -> None:
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
        el.text = rules.normalise_text(el.text)
        if el is not doc:
            el.tail = rules.normalise_text(el.tail)


def _clean_texts(doc: etree._Element, rules, limits) -> None:
    """TXT-05 and TXT-04 for every Text(n) value of the document."""
    for el in doc.iter():
        if not isinstance(el.tag, str) or len(el):
            continue
        ns, local = _local(el.tag)
        parent = el.getparent()
        limit = limits.get((ns, _local(parent.tag)[1] if parent is not None else None, local))
        if limit is None or el.text is None:
            continue
        where = _label(el)
        el.text = rules.clean_text(el.text, lf_allowed=limit.lf_allowed, where=where)
        length = rules.text_length(el.text)
        if length > limit.maximum:
            raise DocumentRefused("TXT-04", f"{where} has {length} characters; at most {limit.maximum} are "
                                  "allowed. Shorten it; nothing was sent.")


def _set_child_text(parent: etree._Element, tag: str, text: str, *, index: int | None = None) -> None:
    el = parent.find(tag)
    if el is None:
        el = etree.Element(tag)
        if index is None:
            parent.append(el)
        else:
            parent.insert(index, el)
    el.text = text


def _prepare_declaration(decl: etree._Element, rules) -> None:
    items = decl.findall(q(DEC, "GoodsItem"))
    numbers = rules.line_numbers([item.findtext(q(DEC, "lineNo")) for item in items])
    for item, number in zip(items, numbers):                                  # DOC-03: lineNo 1, 2, 3…
        _set_child_text(item, q(DEC, "lineNo"), number, index=0)
    total = rules.sum_amounts([item.findtext(q(DEC, "value")) for item in items])
    invoice = decl.find(q(DEC, "Invoice"))
    if invoice is not None and total is not None:                             # DOC-03: the exact sum,
        _set_child_text(invoice, q(DEC, "totalValue"), rules.number_text(total))   # TXT-06: §4.2 form


def _prepare_payment_order(order: etree._Element, rules) -> None:
    lines = order.findall(q(PAY, "TaxLine"))
    total = rules.sum_amounts([line.findtext(q(PAY, "amountVND")) for line in lines])
    if total is not None and order.find(q(PAY, "totalVND")) is not None:       # DOC-03: totalVND
        order.find(q(PAY, "totalVND")).text = rules.number_text(total)


def prepare_content(content: etree._Element, *, n_goods_max: int, rules=None,
                    xsd_dir: Path | None = None) -> etree._Element:
    """A prepared copy of ``content`` (the caller's tree is left untouched).

    ``xsd_dir`` is the profile's schema folder, from which the Text(n) fields and their limits are read;
    without it only NFC, line breaks, goods limit, numbering and totals are applied.
    """
    rules = rules or ReferenceRules()
    doc = copy.deepcopy(content)
    for decl in doc.iter(q(DEC, "Declaration")):                               # DOC-02 before anything else
        items = decl.findall(q(DEC, "GoodsItem"))
        for item in items[len(rules.goods_limit(items, n_goods_max)):]:
            decl.remove(item)
    _normalise_tree(doc, rules)
    if xsd_dir is not None:
        _clean_texts(doc, rules, text_limits(Path(xsd_dir)))
    for decl in doc.iter(q(DEC, "Declaration")):
        _prepare_declaration(decl, rules)
    for order in doc.iter(q(PAY, "PaymentOrder")):
        _prepare_payment_order(order, rules)
    return doc
