"""Per-run test data drawn from a recorded seed (anti-gaming).

Documents come from ``fixtures/samples``; the parts a product could otherwise hard-code — the
declarant's tax code, invoice number, goods quantities and values, gross mass, a lot nonce in each
goods description — are varied by the seed, and totals are recomputed exactly (DOC-03: no rounding
tolerance), so every document a product receives is valid and new. The seed is written into
results.json; the same seed reproduces the same documents and the same tax code (the harness issues
the run's declarant certificate for it: ``TestPKI.for_tax_code``).
"""

from __future__ import annotations

import copy
import random
import unicodedata
from decimal import Decimal
from pathlib import Path

from lxml import etree

from .codec.namespaces import DEC, PAY, q
from .codec.safexml import hardened_parser
from .pki_matrix import OTHER_TAX_CODE
from .profile import FIXTURES

SAMPLE_TAX_CODE = "0312345678"   # the declarant in fixtures/samples (and in the spec's Annex examples)


def _dec(value: Decimal) -> str:
    """§4.2 Dec lexical form: no exponent, no trailing zeros after the point."""
    text = format(value.normalize(), "f")
    return text


class TestData:
    __test__ = False  # not a pytest test class

    def __init__(self, seed: int, samples: Path | None = None):
        self.seed = seed
        self.samples = samples or FIXTURES / "samples"
        self._rng = random.Random(seed)
        self.tax_code = self._draw_tax_code(random.Random(f"{seed}/tax-code"))

    @staticmethod
    def _draw_tax_code(rng: random.Random) -> str:
        """A TaxCode (§3, 10 digits) for the run's declarant: a province prefix 01–96 and 8 digits, never
        all zero (so never an operator-like code such as 0100000000 or Table 4-3's 0000000000), nor the
        certificate matrix's other enterprise. Its own generator: the documents' draws stay as they were."""
        while True:
            code = f"{rng.randint(1, 96):02d}{rng.randint(1, 99_999_999):08d}"
            if code != OTHER_TAX_CODE:
                return code

    def nonce(self, digits: int = 6) -> str:
        return "".join(self._rng.choice("0123456789") for _ in range(digits))

    def choice(self, items):
        items = sorted(items)
        return items[self._rng.randrange(len(items))]

    def document(self, name: str, **changes) -> bytes:
        """The sample document ``name``, varied by the seed (declarations), totals exact.

        ``changes`` name what the user typed, pasted or imported differently (``DOCUMENT_CHANGES``),
        each drawn from the same seed, e.g. ``document("declaration-import", goods=51)``.
        """
        unknown = sorted(set(changes) - set(DOCUMENT_CHANGES))
        if unknown:
            raise ValueError(f"unknown document change(s) {unknown}; known: {', '.join(sorted(DOCUMENT_CHANGES))}")
        path = self.samples / f"{name}.xml"
        root = etree.parse(str(path), hardened_parser()).getroot()
        for element in root.iter(q(DEC, "taxCode")):          # the declarant, not the sample's
            if element.text == SAMPLE_TAX_CODE:
                element.text = self.tax_code
        if root.tag == q(PAY, "PaymentOrder") and not changes:
            self._vary_payment_entry(root)
        if root.tag == q(DEC, "Declaration"):
            self._vary_declaration(root)
        elif changes:
            raise ValueError(f"document changes apply to declarations; {name!r} is {root.tag}")
        for key in sorted(changes, key=list(DOCUMENT_CHANGES).index):
            if DOCUMENT_CHANGES[key] and changes[key] not in (None, False):
                getattr(self, DOCUMENT_CHANGES[key])(root, changes[key])
        text = etree.tostring(root, encoding="utf-8")
        if changes.get("doctype"):
            text = b"<!DOCTYPE Declaration>\n" + text
        return text

    def _vary_payment_entry(self, order: etree._Element) -> None:
        """A payment order as its user enters it (PAY-01/02): 1 to 4 tax lines of distinct tax types in a
        drawn order with drawn amounts, the note with a nonce; ``maker`` and ``totalVND`` left to the DTS."""
        rng = self._rng
        lines = order.findall(q(PAY, "TaxLine"))
        template = lines[0]
        for line in lines:
            order.remove(line)
        types = ["XNK", "VAT", "TTDB", "BVMT"]
        rng.shuffle(types)
        anchor = order.find(q(PAY, "accountNumber"))
        for tax_type in types[:rng.randint(1, 4)]:
            line = copy.deepcopy(template)
            line.find(q(PAY, "taxType")).text = tax_type
            line.find(q(PAY, "amountVND")).text = str(rng.randint(10_000, 9_999_999_999))
            anchor.addnext(line)
            anchor = line
        order.find(q(PAY, "maker")).text = None
        order.find(q(PAY, "totalVND")).text = "0"
        note = order.find(q(PAY, "description"))
        note.text = f"{(note.text or '').strip().replace(SAMPLE_TAX_CODE, self.tax_code)} (lô {self.nonce(6)})"

    def _vary_declaration(self, decl: etree._Element) -> None:
        rng = self._rng
        decl.find(f"{q(DEC, 'Invoice')}/{q(DEC, 'number')}").text = f"INV-{self.nonce(8)}"
        decl.find(q(DEC, "grossMassKg")).text = _dec(Decimal(rng.randint(1000, 9_999_999)) / 1000)
        total = Decimal(0)
        for item in decl.iter(q(DEC, "GoodsItem")):
            item.find(q(DEC, "quantity")).text = str(rng.randint(1, 500))
            value = Decimal(rng.randint(100, 99_999_999)) / 100
            item.find(q(DEC, "value")).text = _dec(value)
            total += value
            desc = item.find(q(DEC, "description"))
            desc.text = f"{desc.text[:180]} (lô {self.nonce(6)})"
        decl.find(f"{q(DEC, 'Invoice')}/{q(DEC, 'totalValue')}").text = _dec(total)

    # --- what a user typed, pasted or imported (document changes; DOC-02/03, TXT-02..06) ---------

    def _goods(self, decl: etree._Element, count: int) -> None:
        """``count`` goods items, cloned from the sample's and varied by the seed; lineNo 1..n, total exact."""
        items = decl.findall(q(DEC, "GoodsItem"))
        last = items[-1]
        for extra in range(count - len(items)):
            clone = copy.deepcopy(items[extra % len(items)])
            last.addnext(clone)
            last = clone
        for item in decl.findall(q(DEC, "GoodsItem"))[count:]:
            decl.remove(item)
        total = Decimal(0)
        for number, item in enumerate(decl.findall(q(DEC, "GoodsItem")), start=1):
            item.find(q(DEC, "lineNo")).text = str(number)
            item.find(q(DEC, "quantity")).text = str(self._rng.randint(1, 500))
            value = Decimal(self._rng.randint(100, 9_999_999)) / 100
            item.find(q(DEC, "value")).text = _dec(value)
            total += value
            desc = item.find(q(DEC, "description"))
            desc.text = f"{desc.text.split(' (lô ')[0]} (lô {self.nonce(6)})"
        decl.find(f"{q(DEC, 'Invoice')}/{q(DEC, 'totalValue')}").text = _dec(total)

    def _wrong_numbers(self, decl: etree._Element, on: bool) -> None:
        """DOC-03: line values with four fraction digits and 12 or 13 integer digits, so a float sum or a
        sum rounded to cents is visibly wrong; the user's lineNo (10, 20, …) and total (rounded) are wrong."""
        items = decl.findall(q(DEC, "GoodsItem"))
        while True:
            values = [Decimal(self._rng.randint(10**15, 10**17 - 1)) / 10_000 for _ in items]
            exact = sum(values, Decimal(0))
            floated = sum(float(v) for v in values)
            wrong = (Decimal(format(floated, ".4f")), Decimal(repr(floated)), round(exact, 2))
            if exact not in wrong:
                break
        for number, (item, value) in enumerate(zip(items, values), start=1):
            item.find(q(DEC, "lineNo")).text = str(number * 10)
            item.find(q(DEC, "value")).text = _dec(value)
        decl.find(f"{q(DEC, 'Invoice')}/{q(DEC, 'totalValue')}").text = _dec(round(exact, 2) + 1)

    def _large_amounts(self, decl: etree._Element, on: bool) -> None:
        """TXT-06: numbers a vi-VN locale would write otherwise — thousands and fractions (1234567.8912 is
        "1.234.567,8912" there); the total given is exact."""
        decl.find(q(DEC, "grossMassKg")).text = _dec(Decimal(self._rng.randint(1_000_001, 99_999_999)) / 1000)
        total = Decimal(0)
        for item in decl.findall(q(DEC, "GoodsItem")):
            value = Decimal(self._rng.randint(10**9, 10**11 - 1) * 10 + self._rng.randint(1, 9)) / 10_000
            item.find(q(DEC, "value")).text = _dec(value)
            item.find(q(DEC, "quantity")).text = _dec(Decimal(self._rng.randint(1_001_001, 9_999_999)) / 1000)
            total += value
        decl.find(f"{q(DEC, 'Invoice')}/{q(DEC, 'totalValue')}").text = _dec(total)

    def _description_length(self, decl: etree._Element, length: int) -> None:
        """TXT-04: the first goods description is Vietnamese text of exactly ``length`` code points in
        NFC (1 to 3 UTF-8 octets each), given decomposed (NFD) so that it is longer before NFC."""
        words = ["Máy", "tính", "xách", "tay", "mới", "100%", "bộ", "sạc", "điện", "thoại", "Hải", "Đăng",
                 "nhựa", "thép", "không", "gỉ", "đồng", "hồ", "đèn", "hướng", "dẫn", "sử", "dụng", "ổ", "cứng"]
        text = f"lô {self.nonce(6)}"
        while len(text) < length:
            text = f"{self._rng.choice(words)} {text}"
        text = text[len(text) - length:].lstrip()
        text = ("Ư" * (length - len(text))) + text
        assert len(text) == length and text == unicodedata.normalize("NFC", text)
        decl.find(f"{q(DEC, 'GoodsItem')}/{q(DEC, 'description')}").text = unicodedata.normalize("NFD", text)

    def _decomposed(self, decl: etree._Element, on: bool) -> None:
        """TXT-03: every character data decomposed (NFD), as pasted from a legacy font converter."""
        for el in decl.iter():
            if el.text:
                el.text = unicodedata.normalize("NFD", el.text)

    def _line_breaks(self, decl: etree._Element, on: bool) -> None:
        """TXT-05: ``notes`` typed on three lines in a Windows editor: CR LF between them."""
        notes = decl.find(q(DEC, "notes"))
        if notes is None:
            notes = etree.SubElement(decl, q(DEC, "notes"))
            notes.tail = "\n"
        notes.text = "\r\n".join([f"Hàng đóng trong {self._rng.randint(2, 40)} kiện gỗ",
                                   f"Lô số {self.nonce(6)}", "Liên hệ: phòng xuất nhập khẩu"])

    def _edge_spaces(self, decl: etree._Element, on: bool) -> None:
        """TXT-05: white space a user pastes with text: spaces and a no-break space at the edges, a TAB
        inside a description, an address pasted on two lines into a one-line field."""
        trader = decl.find(q(DEC, "Trader"))
        name = trader.find(q(DEC, "name"))
        name.text = f"  {name.text}\u00a0"
        address = trader.find(q(DEC, "address"))
        first, _, rest = address.text.partition(", ")
        address.text = f"{first},\n{rest} "
        desc = decl.find(f"{q(DEC, 'GoodsItem')}/{q(DEC, 'description')}")
        desc.text = "\t" + desc.text.replace(" ", "\t", 1)
        number = decl.find(f"{q(DEC, 'Invoice')}/{q(DEC, 'number')}")
        number.text = f" {number.text} "

    def _control_character(self, decl: etree._Element, on: bool) -> None:
        """TXT-05: U+0096, what an en dash copied from a Windows-1252 text becomes when read as Latin-1."""
        desc = decl.find(f"{q(DEC, 'GoodsItem')}/{q(DEC, 'description')}")
        desc.text = desc.text.replace(" ", " \u0096 ", 1)


# What ``TestData.document`` can change, in the order the changes are applied: name → builder method.
# ``doctype`` is applied to the serialised octets (an imported file's ``<!DOCTYPE Declaration>`` line).
DOCUMENT_CHANGES = {
    "goods": "_goods",
    "wrong_numbers": "_wrong_numbers",
    "large_amounts": "_large_amounts",
    "description_length": "_description_length",
    "line_breaks": "_line_breaks",
    "edge_spaces": "_edge_spaces",
    "control_character": "_control_character",
    "decomposed": "_decomposed",
    "doctype": None,
}

# The fields ``edge_spaces`` fills with white space (paths under the Declaration); none allows LF.
EDGE_SPACE_FIELDS = ("Trader/name", "Trader/address", "GoodsItem/description", "Invoice/number")
