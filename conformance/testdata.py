"""Per-run test data drawn from a recorded seed.

Documents come from ``fixtures/samples``; the parts a product could otherwise hard-code (invoice
numbers, goods descriptions' nonces) are varied by the seed. The seed is written into results.json,
and the same seed reproduces the same run.
"""

from __future__ import annotations

import random
from pathlib import Path

from lxml import etree

from .codec.namespaces import DEC, q
from .codec.safexml import hardened_parser
from .profile import FIXTURES


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
        """The sample document ``name`` with a seeded invoice number (declarations)."""
        path = self.samples / f"{name}.xml"
        root = etree.parse(str(path), hardened_parser()).getroot()
        invoice_number = root.find(f"{q(DEC, 'Invoice')}/{q(DEC, 'number')}")
        if invoice_number is not None:
            invoice_number.text = f"INV-{self.nonce(8)}"
        return etree.tostring(root, encoding="utf-8")
