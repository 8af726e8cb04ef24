"""Hardened reading of message texts (TXT-01, TXT-02, SEC-05, RPL-07).

Every ECDI party must refuse a DOCTYPE *without processing it*, so the DOCTYPE test is a scan of
the prolog, done before any parser sees the bytes; the parser itself never loads DTDs, resolves
entities or touches the network.

Limits are ECDI's, not libxml2's defaults (docs/decisions.md, "Parser limits"): a message text is
at most ``S_max`` octets (a SOAP body 4 × ``S_max``), which bounds names and text nodes, so the
parser runs with libxml2's name and text-node limits lifted; nesting is bounded by ``MAX_DEPTH``.
A well-formed document is never called malformed because of a limit: what lies deeper than
``MAX_DEPTH`` is cut off and named (``read_message_text``), or refused as a structure error (X0002).
"""

from __future__ import annotations

import re
from xml.parsers import expat

from lxml import etree

BOM = b"\xef\xbb\xbf"
_XML_DECL = re.compile(rb"<\?xml(?P<attrs>[^?]*)\?>")
_DECL_ATTR = re.compile(rb"""(\w+)\s*=\s*(?:"([^"]*)"|'([^']*)')""")

# SEC-05's figure, used on both sides: the root Envelope is at depth 1, and no valid ECDI message text
# nests deeper than 8 (a signed certificate or an amended declaration's goods item), so a reader that
# builds 64 levels (plus the first level beyond, to name it) never misses the first offending node.
MAX_DEPTH = 64
# The deepest tree any reader here builds when its caller sets no depth limit (a DTS that parses
# replies "at any depth", the gateway rereading its own texts); deeper documents are X0002.
MAX_BUILD_DEPTH = 1024


class XmlRefused(Exception):
    """A message text refused before or while parsing. ``code`` is the ECDI result code (X0001, E0001...)."""

    def __init__(self, code: str, reason: str, field: str = ""):
        super().__init__(reason)
        self.code = code
        self.reason = reason
        self.field = field

    def __reduce__(self):                     # the gateway's CPU workers send it to the event loop
        return (type(self), (self.code, self.reason, self.field))


def hardened_parser() -> etree.XMLParser:
    """A parser that never loads a DTD, resolves an entity, follows XInclude or opens a resource.

    libxml2's name and text-node limits are lifted (a 1 MiB element name is well-formed), so callers
    bound the input's size and refuse a DOCTYPE first; nesting stays capped by libxml2 (2048
    levels), which ``read_message_text`` goes beyond. Comments and processing instructions are kept: ENV-01 forbids them and the gateway must be able
    to name their path.
    """
    return etree.XMLParser(
        resolve_entities=False,
        no_network=True,
        load_dtd=False,
        dtd_validation=False,
        huge_tree=True,              # names and text nodes are bounded by the input size instead
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


def _check_octets(data: bytes, max_bytes: int | None) -> None:
    """Size (E0001), BOM, UTF-8, XML declaration and DOCTYPE (X0001): what comes before parsing."""
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


def read_message_text(data: bytes, *, max_bytes: int | None = None,
                      max_depth: int = MAX_DEPTH) -> tuple[etree._Element, etree._Element | None]:
    """Parse a message text, keeping ``max_depth`` levels and the first level beyond.

    Returns the tree and the first element (document order) at depth ``max_depth + 1``, whose own
    children were dropped, or None if the document is no deeper than ``max_depth``. Raises XmlRefused
    E0001 or X0001 (TXT-01, TXT-02; not well-formed) — never for depth, since a deep document can be
    well-formed: what to answer is the caller's choice (the gateway: X0002 at step 7, G0001 inside
    ``ds:Signature``; a DTS reading a reply: malformed, SEC-05).
    """
    _check_octets(data, max_bytes)
    try:
        root = etree.fromstring(data, hardened_parser())
    except etree.XMLSyntaxError as exc:
        if exc.code != etree.ErrorTypes.ERR_RESOURCE_LIMIT:
            raise XmlRefused("X0001", f"message text is not well-formed XML 1.0: {exc}") from None
        root = _expat_tree(data, max_depth + 1)      # deeper than libxml2 goes: read without it
    beyond = root.xpath("/*" * (max_depth + 1))
    for el in beyond:
        del el[:]
    return root, (beyond[0] if beyond else None)


def parse_message_text(data: bytes, *, max_bytes: int | None = None, max_depth: int | None = None) -> etree._Element:
    """Parse one ECDI message text, refusing what TXT-01/TXT-02 and SEC-05 forbid.

    Raises XmlRefused with code E0001 (too large) or X0001 (BOM, not UTF-8, bad declaration,
    DOCTYPE, not well-formed) or X0002 (deeper than ``max_depth``; without one, deeper than
    ``MAX_BUILD_DEPTH``, the most any reader here builds), with the path of the first element too
    deep in ``field``.
    """
    limit = max_depth or MAX_BUILD_DEPTH
    root, beyond = read_message_text(data, max_bytes=max_bytes, max_depth=limit)
    if beyond is not None:
        from .envelope import ecdi_path

        raise XmlRefused("X0002", f"message text nests elements deeper than {limit}", ecdi_path(beyond))
    return root


def _expat_tree(data: bytes, keep_depth: int) -> etree._Element:
    """The tree of a document nested deeper than libxml2 reads, built by expat (which has no depth
    limit) without the elements deeper than ``keep_depth``. Raises XmlRefused X0001 if expat finds
    the document not well-formed. Only reached for documents over 2048 levels deep."""
    builder = etree.TreeBuilder()
    parser = expat.ParserCreate("UTF-8", namespace_separator=" ")
    parser.buffer_text = True
    parser.ordered_attributes = True
    parser.SetParamEntityParsing(expat.XML_PARAM_ENTITY_PARSING_NEVER)
    depth = 0
    pending_ns: dict[str | None, str] = {}

    def clark(name: str) -> str:
        uri, _, local = name.rpartition(" ")
        return f"{{{uri}}}{local}" if uri else local

    def start_ns(prefix, uri):
        pending_ns[prefix or None] = uri

    def start(name, attributes):
        nonlocal depth
        depth += 1
        if depth <= keep_depth:
            attrs = {clark(attributes[i]): attributes[i + 1] for i in range(0, len(attributes), 2)}
            builder.start(clark(name), attrs, dict(pending_ns))
        pending_ns.clear()

    def end(name):
        nonlocal depth
        if depth <= keep_depth:
            builder.end(clark(name))
        depth -= 1

    top_level: list[tuple[bool, etree._Element]] = []   # (after the root?, node): added once the root exists

    def kept(handler, node=None):
        def handle(*args):
            if depth == 0 and node is not None:
                top_level.append((seen_root, node(*args)))
            elif depth <= keep_depth:
                handler(*args)
        return handle

    seen_root = False

    def root_seen(name):
        nonlocal seen_root
        end(name)
        seen_root = seen_root or depth == 0

    parser.StartNamespaceDeclHandler = start_ns
    parser.StartElementHandler = start
    parser.EndElementHandler = root_seen
    parser.CharacterDataHandler = kept(builder.data)
    parser.CommentHandler = kept(builder.comment, etree.Comment)
    parser.ProcessingInstructionHandler = kept(builder.pi, etree.PI)
    try:
        parser.Parse(data, True)
    except expat.ExpatError as exc:
        raise XmlRefused("X0001", f"message text is not well-formed XML 1.0: {exc}") from None
    root = last = builder.close()
    for after, node in top_level:
        if after:
            last.addnext(node)
            last = node
        else:
            root.addprevious(node)
    return root
