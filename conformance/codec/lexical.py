"""Lexical rules that an XSD cannot express: ENV-01 (no comments or processing instructions) and
TXT-03 (character data in Unicode NFC).

Used on both sides: the gateway answers the first finding with 271 X0002 and its path (Table 7-3
steps 7 and 13), and the conformance cases apply the same rule to what a DTS sent.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass

from lxml import etree

from .envelope import ecdi_path
from .namespaces import DS


@dataclass(frozen=True)
class LexicalIssue:
    path: str
    reason: str


def _in_signature(node) -> bool:
    el = node if isinstance(node.tag, str) else node.getparent()
    while el is not None:
        if el.tag == f"{{{DS}}}Signature":
            return True
        el = el.getparent()
    return False


def lexical_problem(root: etree._Element, repeatable=frozenset()) -> LexicalIssue | None:
    """The first offending node in document order, or None.

    Nodes inside ``ds:Signature`` are left to the signature check (SIG-05 / G0001), as ENV-01 says.
    Top-level comments and PIs (outside the root) count too: they are part of the message text.
    """
    sib = root.getprevious()
    before = []
    while sib is not None:
        before.append(sib)
        sib = sib.getprevious()
    for node in reversed(before):
        issue = _node_issue(node, repeatable)
        if issue:
            return issue
    for node in root.iter():
        issue = _node_issue(node, repeatable)
        if issue:
            return issue
    sib = root.getnext()
    while sib is not None:
        issue = _node_issue(sib, repeatable)
        if issue:
            return issue
        sib = sib.getnext()
    return None


def _node_issue(node, repeatable) -> LexicalIssue | None:
    if isinstance(node, etree._Comment):
        if not _in_signature(node):
            return LexicalIssue(ecdi_path(node, repeatable), "comments are not allowed in a message text (ENV-01)")
        return None
    if isinstance(node, etree._ProcessingInstruction):
        if not _in_signature(node):
            return LexicalIssue(
                ecdi_path(node, repeatable), "processing instructions are not allowed in a message text (ENV-01)"
            )
        return None
    if not isinstance(node.tag, str) or _in_signature(node):
        return None
    # A tail is character data of the parent element, so a non-NFC tail names the parent.
    for text, target in ((node.text, node), (node.tail, node.getparent())):
        if text and target is not None and not unicodedata.is_normalized("NFC", text):
            return LexicalIssue(ecdi_path(target, repeatable), "character data is not in Unicode NFC (TXT-03)")
    return None
