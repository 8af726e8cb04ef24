"""Mutants of the document and text cases (see ``mutants.py`` for what a mutant is): one hook override each."""

from __future__ import annotations

from decimal import Decimal

from lxml import etree

from .dts import ReferenceDTS
from .mutants import MUTANTS, Mutant


class SendsFirstGoodsItems(ReferenceDTS):
    def goods_limit(self, items: list, n_goods_max: int) -> list:
        return items[:n_goods_max]          # DOC-02: silently drops the lines beyond the limit and sends


class KeepsUsersLineNumbers(ReferenceDTS):
    def line_numbers(self, given: list[str | None]) -> list[str]:
        return [g if g else str(n) for n, g in enumerate(given, start=1)]   # DOC-03: lineNo as the user typed it


class TotalsInFloatToCents(ReferenceDTS):
    def sum_amounts(self, values: list[str | None]) -> Decimal | None:
        try:
            return Decimal(str(round(sum(float(v) for v in values), 2)))     # DOC-03: binary float, cents
        except (TypeError, ValueError):
            return None


class NoNfc(ReferenceDTS):
    def normalise_text(self, value: str | None) -> str | None:
        return None if value is None else value.replace("\r\n", "\n")        # TXT-03: no NFC


class CountsOctets(ReferenceDTS):
    def text_length(self, value: str) -> int:
        return len(value.encode("utf-8"))                                   # TXT-04: octets, not code points


class FlattensLineBreaks(ReferenceDTS):
    def clean_text(self, value: str, *, lf_allowed: bool, where: str) -> str:
        return super().clean_text(value, lf_allowed=False, where=where)     # TXT-05: CR LF became a space


class LocaleNumbers(ReferenceDTS):
    def number_text(self, value: Decimal) -> str:
        text = super().number_text(value)
        if not self.config.ui_locale.startswith("vi"):
            return text
        whole, _, fraction = text.partition(".")
        grouped = f"{int(whole):,}".replace(",", ".")                        # TXT-06: "1.234.567,5" in vi-VN
        return grouped + ("," + fraction if fraction else "")


class DoctypeInMessage(ReferenceDTS):
    def signed_text(self, root: etree._Element, signature_method: str, digest_method: str) -> bytes:
        text = super().signed_text(root, signature_method, digest_method)
        head, sep, rest = text.partition(b"?>")                              # TXT-02: a DOCTYPE after the
        return head + sep + b"\n<!DOCTYPE Envelope>" + rest if sep else b"<!DOCTYPE Envelope>\n" + text


MUTANTS.update({m.name: m for m in [
    Mutant("sends-first-goods-items", "sends the first N_goods_max goods items of a longer declaration, "
           "dropping the rest without a word", ["DOC-02"], "document.goods-limit", SendsFirstGoodsItems),
    Mutant("keeps-users-line-numbers", "sends lineNo as the user typed it (10, 20, …) instead of numbering "
           "1, 2, 3…", ["DOC-03"], "document.lines-and-totals", KeepsUsersLineNumbers),
    Mutant("totals-in-float-to-cents", "adds line values in binary floating point and rounds the total to cents",
           ["DOC-03"], "document.lines-and-totals", TotalsInFloatToCents),
    Mutant("no-nfc", "signs pasted text as it came (decomposed, NFD) without normalising to NFC",
           ["TXT-03"], "text.nfc", NoNfc),
    Mutant("counts-octets", "counts Text(n) lengths in UTF-8 octets, refusing a 200-character Vietnamese "
           "description", ["TXT-04"], "text.lengths-in-code-points", CountsOctets),
    Mutant("flattens-line-breaks", "turns CR LF into a space even where LF is allowed (notes)",
           ["TXT-05"], "text.no-control-or-edge-space", FlattensLineBreaks),
    Mutant("locale-numbers", "writes the totals it computes in the user-interface locale (vi-VN: 1.234.567,5)",
           ["TXT-06"], "text.locale-independent", LocaleNumbers),
    Mutant("doctype-in-message", "puts <!DOCTYPE Envelope> in the message text it sends",
           ["TXT-02"], "text.no-doctype", DoctypeInMessage),
]})


class BomPrefixed(ReferenceDTS):
    def signed_text(self, root, signature_method: str, digest_method: str) -> bytes:
        return b"\xef\xbb\xbf" + super().signed_text(root, signature_method, digest_method)   # TXT-01: no BOM


MUTANTS.update({m.name: m for m in [
    Mutant("bom-prefixed", "writes a UTF-8 byte order mark before every message text", ["TXT-01"],
           "schema.requests-validate", BomPrefixed),
]})
