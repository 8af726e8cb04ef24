"""Business documents and text: DOC-02, DOC-03, TXT-02..TXT-06."""

from __future__ import annotations

import re

from lxml import etree

from ..case import Check
from ..codec import safexml
from ..codec.namespaces import q


# --- business documents and text (issue 6: DOC-02, DOC-03, TXT-02..06) ------------------------------

def _declaration_of(source):
    """The dec:Declaration in an exchange's message text, or in a document's octets (None if unreadable)."""
    from ..codec.namespaces import DEC
    text = source if isinstance(source, bytes) else getattr(source, "message_text", None)
    try:
        root = etree.fromstring(text or b"", safexml.hardened_parser())
    except etree.XMLSyntaxError:
        return None
    if root.tag == q(DEC, "Declaration"):
        return root
    return root.find(f".//{q(DEC, 'Declaration')}")


def document_value(source, path: str) -> str | None:
    """The text of ``path`` (e.g. ``Invoice/totalValue``) under the Declaration of ``source``: an exchange
    (what was sent) or the document octets the DTS was given."""
    from ..codec.namespaces import DEC
    decl = _declaration_of(source)
    if decl is None:
        return None
    return decl.findtext("/".join(q(DEC, step) for step in path.split("/")))


def document_values(source, path: str) -> list[str | None]:
    """The text of every ``path`` match (e.g. ``GoodsItem/value`` of each item) under the Declaration."""
    from ..codec.namespaces import DEC
    decl = _declaration_of(source)
    if decl is None:
        return []
    return [el.text for el in decl.iterfind("/".join(q(DEC, step) for step in path.split("/")))]


def text_maximum(profile, parent: str, name: str) -> int:
    """The n of the Text(n) type the profile's content schemas give ``parent/name`` (TXT-04 limits)."""
    xs = "http://www.w3.org/2001/XMLSchema"
    for path in sorted((profile.directory / "xsd").glob("*.xsd")):
        for el in etree.parse(str(path)).getroot().iter(f"{{{xs}}}element"):
            owner = next((a for a in el.iterancestors(f"{{{xs}}}element") if a.get("name")), None)
            match = re.fullmatch(r"Text([0-9]+)(LF)?", el.get("type") or "")
            if match and el.get("name") == name and owner is not None and owner.get("name") == parent:
                return int(match.group(1))
    raise KeyError(f"{profile.id} gives {parent}/{name} no Text(n) type")


def goods_count(source) -> int | None:
    from ..codec.namespaces import DEC
    decl = _declaration_of(source)
    return None if decl is None else len(decl.findall(q(DEC, "GoodsItem")))


def no_doctype(exchange) -> Check:
    """TXT-02: the message text holds no document type declaration (read without processing it)."""
    parser = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False, huge_tree=False)
    try:
        tree = etree.fromstring(exchange.message_text or b"", parser).getroottree()
    except etree.XMLSyntaxError as exc:
        return Check(False, f"request #{exchange.seq} is not well-formed XML: {exc}", {"exchange": exchange.seq})
    if tree.docinfo.doctype or tree.docinfo.internalDTD is not None:
        return Check(False, f"request #{exchange.seq} carries a DOCTYPE ({tree.docinfo.doctype!r})",
                     {"exchange": exchange.seq})
    return Check(True, f"request #{exchange.seq} has no DOCTYPE")


def character_data_nfc(exchange) -> Check:
    """TXT-03: every character data and attribute value of the message text is in Unicode NFC."""
    import unicodedata
    try:
        root = etree.fromstring(exchange.message_text or b"", safexml.hardened_parser())
    except etree.XMLSyntaxError as exc:
        return Check(False, f"request #{exchange.seq} is not well-formed XML: {exc}")
    for el in root.iter():
        values = [el.text, el.tail, *(el.attrib.values() if isinstance(el.tag, str) else ())]
        for value in values:
            if value and not unicodedata.is_normalized("NFC", value):
                where = el.tag if isinstance(el.tag, str) else el.getparent().tag
                return Check(False, f"request #{exchange.seq}: {where.split('}')[-1]} is not in NFC: "
                                    f"{ascii(value[:40])}", {"exchange": exchange.seq})
    return Check(True, f"request #{exchange.seq}: all character data is in NFC")


def same_text(label: str, expected: str | None, sent: str | None) -> Check:
    import unicodedata
    if sent is not None and sent == expected:
        return Check(True, f"{label} was sent as expected ({len(sent)} code points)")
    if sent is not None and unicodedata.normalize("NFC", sent) == expected:
        return Check(False, f"{label} was sent decomposed, not in NFC: {ascii(sent[:60])}")
    return Check(False, f"{label}: sent {sent!r}, expected {expected!r}")


def _edge_or_control(value: str, lf_allowed: bool) -> str | None:
    import unicodedata

    def edge(c):
        return c.isspace() or unicodedata.category(c) in ("Zs", "Zl", "Zp", "Cc")

    if value and (edge(value[0]) or edge(value[-1])):
        return f"white space at an edge ({value[:1]!r} … {value[-1:]!r})"
    for c in value:
        if unicodedata.category(c) == "Cc" and not (lf_allowed and c == "\n"):
            return f"the control character U+{ord(c):04X}"
    return None


def text_clean(label: str, given: str | None, sent: str | None, *, lf_allowed: bool = False) -> Check:
    """TXT-05: a Text(n) value sent without edge white space or control characters (LF only where
    allowed). That it keeps the user's words (a control character dropped or made a space, white space
    inside made a space) is no demand of TXT-05: another change is shown for review, never failed."""
    if sent is None:
        return Check(False, f"{label} is missing from the request")
    problem = _edge_or_control(sent, lf_allowed)
    if problem:
        return Check(False, f"{label} was sent with {problem}: {sent!r}")
    import unicodedata
    def words(control_as: str) -> list[str]:
        return "".join(control_as if unicodedata.category(c) == "Cc" else c for c in (given or "")).split()

    if sent.split() not in (words(" "), words("")):
        return Check(False, f"for review: {label} was cleaned into other words: given {given!r}, sent {sent!r}",
                     undecided=True)
    return Check(True, f"{label} sent as {sent!r}")


def line_breaks_kept(label: str, given: str | None, sent: str | None) -> Check:
    """TXT-05: CR LF became LF — the line breaks the user typed are kept, as LF, where LF is allowed."""
    expected = (given or "").replace("\r\n", "\n")
    if sent == expected:
        return Check(True, f"{label}: {given.count(chr(13))} CR LF sent as LF")
    if sent is not None and "\r" in sent:
        return Check(False, f"{label} was sent with CR: {sent!r}")
    return Check(False, f"{label}: sent {sent!r}, expected the user's lines joined by LF: {expected!r}")


def line_numbers(exchange) -> Check:
    """DOC-03: GoodsItem/lineNo is 1, 2, 3… in document order."""
    from ..codec.namespaces import DEC
    decl = _declaration_of(exchange)
    if decl is None:
        return Check(False, f"request #{exchange.seq} holds no readable declaration")
    numbers = [item.findtext(q(DEC, "lineNo")) for item in decl.findall(q(DEC, "GoodsItem"))]
    expected = [str(n) for n in range(1, len(numbers) + 1)]
    if numbers != expected:
        return Check(False, f"request #{exchange.seq}: lineNo {numbers}, expected {expected}", {"lineNo": numbers})
    return Check(True, f"request #{exchange.seq}: lineNo 1…{len(numbers)} in document order")


def total_exact(exchange) -> Check:
    """DOC-03: Invoice/totalValue is numerically the exact sum of GoodsItem/value (no rounding)."""
    from decimal import Decimal, InvalidOperation

    from ..codec.namespaces import DEC
    decl = _declaration_of(exchange)
    if decl is None:
        return Check(False, f"request #{exchange.seq} holds no readable declaration")
    values = [item.findtext(q(DEC, "value")) or "" for item in decl.findall(q(DEC, "GoodsItem"))]
    total = decl.findtext(f"{q(DEC, 'Invoice')}/{q(DEC, 'totalValue')}")
    try:
        exact = sum((Decimal(v) for v in values), Decimal(0))
        sent = Decimal(total or "")
    except InvalidOperation:
        return Check(False, f"request #{exchange.seq}: totalValue {total!r} or a line value is not a decimal")
    if sent != exact:
        return Check(False, f"request #{exchange.seq}: totalValue {total}, the exact sum of the lines is "
                            f"{format(exact, 'f')}", {"totalValue": total, "sum": format(exact, "f")})
    return Check(True, f"request #{exchange.seq}: totalValue {total} is the exact sum of {len(values)} line(s)")


def values_unchanged(exchange, given: bytes, paths: list[str]) -> Check:
    """TXT-06: the numbers and dates the user gave reach the wire as given (not re-read in a locale)."""
    from decimal import Decimal
    number = re.compile(r"(0|[1-9][0-9]*)(\.[0-9]+)?", re.ASCII)

    def same(a, b):
        if a is not None and b is not None and number.fullmatch(a) and number.fullmatch(b):
            return Decimal(a) == Decimal(b)          # 12.50 and 12.5 are the same §4.2 decimal
        return a == b

    changed = []
    for path in paths:
        before, after = document_values(given, path), document_values(exchange, path)
        if len(before) != len(after) or not all(same(a, b) for a, b in zip(before, after)):
            changed.append(f"{path} {before} → {after}")
    if changed:
        return Check(False, f"request #{exchange.seq}: " + "; ".join(changed[:4]), {"changed": changed})
    return Check(True, f"request #{exchange.seq}: {', '.join(paths)} sent as given")


# The words by which a user is told to split a declaration (DOC-02), in an English or Vietnamese UI.
SPLIT_WORDS = ("split", "several declarations", "tách", "chia", "nhiều tờ khai")


