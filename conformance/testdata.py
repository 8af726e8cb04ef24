"""Per-run test data drawn from a recorded seed (anti-gaming).

Documents come from ``fixtures/samples``; the parts a product could otherwise hard-code — invoice
number, goods quantities and values, gross mass, a lot nonce in each goods description — are varied
by the seed, and totals are recomputed exactly (DOC-03: no rounding tolerance), so every document a
product receives is valid and new. The seed is written into results.json; the same seed reproduces
the same documents.
"""

from __future__ import annotations

import random
from decimal import Decimal
from pathlib import Path

from lxml import etree

from .codec.namespaces import DEC, q
from .codec.safexml import hardened_parser
from .profile import FIXTURES


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

    def nonce(self, digits: int = 6) -> str:
        return "".join(self._rng.choice("0123456789") for _ in range(digits))

    def choice(self, items):
        items = sorted(items)
        return items[self._rng.randrange(len(items))]

    def document(self, name: str) -> bytes:
        """The sample document ``name``, varied by the seed (declarations), totals exact."""
        path = self.samples / f"{name}.xml"
        root = etree.parse(str(path), hardened_parser()).getroot()
        if root.tag == q(DEC, "Declaration"):
            self._vary_declaration(root)
        return etree.tostring(root, encoding="utf-8")

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
