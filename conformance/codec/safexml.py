"""Hardened reading of message texts (TXT-01, TXT-02, SEC-05, RPL-07).

Every ECDI party must refuse a DOCTYPE *without processing it*, so the DOCTYPE test is a scan of
the prolog, done before any parser sees the bytes; the parser itself never loads DTDs, resolves
entities or touches the network.
"""

from __future__ import annotations

import re

from lxml import etree

BOM = b"\xef\xbb\xbf"
_XML_DECL = re.compile(rb"<\?xml(?P<attrs>[^?]*)\?>")
_DECL_ATTR = re.compile(rb"""(\w+)\s*=\s*(?:"([^"]*)"|'([^']*)')""")


class XmlRefused(Exception):
    """A message text refused before or while parsing. ``code`` is the ECDI result code (X0001, E0001...)."""

    def __init__(self, code: str, reason: str, field: str = ""):
        super().__init__(reason)
        self.code = code
        self.reason = reason
        self.field = field


def hardened_parser() -> etree.XMLParser:
    """A parser that never loads a DTD, resolves an entity, follows XInclude or opens a resource.

    Comments and processing instructions are kept: ENV-01 forbids them and the gateway must be able
    to name their path.
    """
    return etree.XMLParser(
        resolve_entities=False,
        no_network=True,
        load_dtd=False,
        dtd_validation=False,
        huge_tree=False,
        remove_comments=False,
        remove_pis=False,
        remove_blank_text=False,
        collect_ids=False,
    )


def _skip_prolog_item(data: bytes, i: int) -> int | None:
    """Index after a comment or PI starting at i, or None if none starts there."""
    for start, end in ((b"<!--", b"-->"), (b"<?", b"?>")):
        if data.startswith(start, i):
            j = data.find(end, i + len(start))
            return None if j < 0 else j + len(end)
    return None


def has_doctype(data: bytes) -> bool:
    """True if a DOCTYPE declaration stands in the prolog (before the root element)."""
    i = 0
    if data.startswith(BOM):
        i = len(BOM)
    n = len(data)
    while i < n:
        while i < n and data[i] in b" \t\r\n":
            i += 1
        if data.startswith(b"<!DOCTYPE", i):
            return True
        j = _skip_prolog_item(data, i)
        if j is None:
            return False
        i = j
    return False


def check_xml_declaration(data: bytes) -> str | None:
    """TXT-01: if an XML declaration is present it must say version 1.0 and, if any, encoding UTF-8."""
    if not data.startswith(b"<?xml"):
        return None
    m = _XML_DECL.match(data)
    if not m:
        return "unterminated XML declaration"
    attrs = {k.decode(): (a or b).decode("ascii", "replace") for k, a, b in _DECL_ATTR.findall(m.group("attrs"))}
    if attrs.get("version") != "1.0":
        return f"XML declaration states version {attrs.get('version')!r}, not 1.0"
    enc = attrs.get("encoding")
    if enc is not None and enc.upper() != "UTF-8":
        return f"XML declaration names encoding {enc!r}, not UTF-8"
    return None


def element_depth(root: etree._Element) -> int:
    """Depth of the deepest element, the root being at depth 1 (SEC-05)."""
    deepest = 0
    stack = [(root, 1)]
    while stack:
        el, d = stack.pop()
        deepest = max(deepest, d)
        stack.extend((c, d + 1) for c in el if isinstance(c.tag, str))
    return deepest


def parse_message_text(data: bytes, *, max_bytes: int | None = None, max_depth: int | None = None) -> etree._Element:
    """Parse one ECDI message text, refusing what TXT-01/TXT-02 and SEC-05 forbid.

    Raises XmlRefused with code E0001 (too large) or X0001 (BOM, not UTF-8, bad declaration,
    DOCTYPE, not well-formed) or X0002 (too deep; a structural problem).
    """
    if max_bytes is not None and len(data) > max_bytes:
        raise XmlRefused("E0001", f"message text is {len(data)} octets, more than the maximum {max_bytes}")
    if data.startswith(BOM):
        raise XmlRefused("X0001", "message text starts with a byte-order mark")
    try:
        data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise XmlRefused("X0001", f"message text is not valid UTF-8 (octet {exc.start})") from None
    problem = check_xml_declaration(data)
    if problem:
        raise XmlRefused("X0001", problem)
    if has_doctype(data):
        raise XmlRefused("X0001", "message text contains a DOCTYPE")
    try:
        root = etree.fromstring(data, hardened_parser())
    except etree.XMLSyntaxError as exc:
        raise XmlRefused("X0001", f"message text is not well-formed XML 1.0: {exc}") from None
    if max_depth is not None and element_depth(root) > max_depth:
        raise XmlRefused("X0002", f"message text nests elements deeper than {max_depth}")
    return root
