"""The user's amendments and cancellations (Table 6-2), built around a declaration number.

The harness, acting as the user, designates the declaration by the number customs issued (its 30),
as a user would copy it from the DTS's screen; the amended declaration is a complete replacement
(Table 6-2) drawn from a sample by the run's seed like every other document (``testdata``).
"""

from __future__ import annotations

from lxml import etree

from .codec.namespaces import DEC, q
from .codec.safexml import hardened_parser

CANCEL_REASONS = ("01", "02", "03", "99")   # §5.4 CancelReason


def amendment(declaration: bytes, number: str, reason: str) -> bytes:
    """``dec:Amendment``: declarationNumber, reason, then the complete replacement declaration."""
    root = etree.Element(q(DEC, "Amendment"), nsmap={None: DEC})
    etree.SubElement(root, q(DEC, "declarationNumber")).text = number
    etree.SubElement(root, q(DEC, "reason")).text = reason
    root.append(etree.fromstring(declaration, hardened_parser()))
    return etree.tostring(root, encoding="utf-8")


def cancellation(number: str, reason_code: str, reason: str) -> bytes:
    """``dec:Cancellation``: declarationNumber, reasonCode (§5.4 CancelReason), reason."""
    if reason_code not in CANCEL_REASONS:
        raise ValueError(f"reasonCode {reason_code!r} is not a CancelReason ({', '.join(CANCEL_REASONS)})")
    root = etree.Element(q(DEC, "Cancellation"), nsmap={None: DEC})
    etree.SubElement(root, q(DEC, "declarationNumber")).text = number
    etree.SubElement(root, q(DEC, "reasonCode")).text = reason_code
    etree.SubElement(root, q(DEC, "reason")).text = reason
    return etree.tostring(root, encoding="utf-8")
