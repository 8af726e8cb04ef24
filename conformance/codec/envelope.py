"""ECDI envelopes: request header (Table 4-1), reply header (Table 4-3) and ``e:Result`` (Table 7-1).

Builders produce *unsigned* lxml trees; signing and serialisation happen once, in
``conformance.codec.xmlsig``, so that the signed octets are the transmitted octets (SIG-02).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone

from lxml import etree

from .namespaces import DS, ENV, q

VN_TZ = timezone(timedelta(hours=7))

# Header element order shared by requests and replies (Table 4-1, ENV-10).
HEADER_LAYOUT: list[tuple[str, list[str]]] = [
    ("procedureType", []),
    ("Reference", ["version", "messageId"]),
    ("SendApplication", ["name", "version", "companyName", "companyIdentity", "createMessageIssue", "certificationId"]),
    ("From", ["name", "identity"]),
    ("To", ["name", "identity"]),
    ("Subject", ["type", "function", "reference", "sendApplication", "receiveApplication"]),
]


def new_message_id() -> str:
    """A fresh random (version 4) UUID in lower case (ENV-02)."""
    return str(uuid.uuid4())


def format_datetime(moment: datetime, tz: timezone = VN_TZ) -> str:
    """DateTime of §4.2 with its UTC offset, whole seconds (ENV-03)."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return moment.astimezone(tz).replace(microsecond=0).isoformat()


def parse_datetime(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


@dataclass
class Header:
    """The header fields, by their Table 4-1 path below ``Header`` (e.g. ``Subject/function``).

    One class for requests and replies: both use the same element order and differ only in types
    (checked by the profile's XSDs) and values (chosen by the DTS or the gateway).
    """

    fields: dict[str, str]

    def __getitem__(self, path: str) -> str:
        return self.fields[path]

    def get(self, path: str, default: str | None = None) -> str | None:
        return self.fields.get(path, default)

    @property
    def message_id(self) -> str:
        return self.fields["Reference/messageId"]

    @property
    def type(self) -> str:
        return self.fields["Subject/type"]

    @property
    def function(self) -> str:
        return self.fields["Subject/function"]

    @property
    def reference(self) -> str:
        return self.fields["Subject/reference"]

    @property
    def version(self) -> str:
        return self.fields["Reference/version"]


def build_envelope(header: Header, content_child: etree._Element) -> etree._Element:
    """An unsigned ``Envelope`` with the header in Table 4-1 order and one ``Content`` child.

    Optional fields (``certificationId``) are written only when present in ``header.fields``.
    """
    env = etree.Element(q(ENV, "Envelope"), nsmap={None: ENV})
    hdr = etree.SubElement(env, q(ENV, "Header"))
    for group, leaves in HEADER_LAYOUT:
        if not leaves:
            etree.SubElement(hdr, q(ENV, group)).text = header.fields[group]
            continue
        grp = etree.SubElement(hdr, q(ENV, group))
        for leaf in leaves:
            value = header.fields.get(f"{group}/{leaf}")
            if value is not None:
                etree.SubElement(grp, q(ENV, leaf)).text = value
    body = etree.SubElement(env, q(ENV, "Body"))
    content = etree.SubElement(body, q(ENV, "Content"))
    content.append(content_child)
    return env


def read_header(root: etree._Element) -> Header:
    """Header fields of an envelope, by path. Missing elements are simply absent (no validation here)."""
    fields: dict[str, str] = {}
    hdr = root.find(q(ENV, "Header"))
    if hdr is None:
        return Header(fields)
    for group, leaves in HEADER_LAYOUT:
        grp = hdr.find(q(ENV, group))
        if grp is None:
            continue
        if not leaves:
            fields[group] = grp.text or ""
            continue
        for leaf in leaves:
            el = grp.find(q(ENV, leaf))
            if el is not None:
                fields[f"{group}/{leaf}"] = el.text or ""
    return Header(fields)


def content_child(root: etree._Element) -> etree._Element | None:
    """The single element inside ``Body/Content``, if there is one. A ``ds:Signature`` there is not
    it: a misplaced signature is the signature check's (Table 7-3 step 7 note, SIG-05)."""
    content = root.find(f"{q(ENV, 'Body')}/{q(ENV, 'Content')}")
    if content is None:
        return None
    kids = [c for c in content if isinstance(c.tag, str) and c.tag != q(DS, "Signature")]
    return kids[0] if len(kids) == 1 else None


@dataclass
class ErrorEntry:
    code: str
    field: str
    description: str


@dataclass
class Tax:
    tax_type: str
    amount_vnd: str


@dataclass
class Result:
    """``e:Result`` of Table 7-1. Optional members left None are not written."""

    result_code: str = "00000"
    sequence: int = 0
    reception_number: str | None = None
    declaration_number: str | None = None
    channel: str | None = None
    taxes: list[Tax] = field(default_factory=list)
    taxes_total_vnd: str | None = None
    taxes_due_date: str | None = None
    cleared_at: str | None = None
    payment_order_id: str | None = None
    otp_sender: str | None = None
    otp_expires_at: str | None = None
    errors: list[ErrorEntry] = field(default_factory=list)

    _SIMPLE = [
        ("receptionNumber", "reception_number"),
        ("declarationNumber", "declaration_number"),
        ("channel", "channel"),
    ]
    _AFTER_TAXES = [
        ("clearedAt", "cleared_at"),
        ("paymentOrderId", "payment_order_id"),
        ("otpSender", "otp_sender"),
        ("otpExpiresAt", "otp_expires_at"),
    ]

    def to_element(self) -> etree._Element:
        res = etree.Element(q(ENV, "Result"), nsmap={None: ENV})
        etree.SubElement(res, q(ENV, "resultCode")).text = self.result_code
        etree.SubElement(res, q(ENV, "sequence")).text = str(self.sequence)
        for tag, attr in self._SIMPLE:
            if getattr(self, attr) is not None:
                etree.SubElement(res, q(ENV, tag)).text = getattr(self, attr)
        if self.taxes:
            taxes = etree.SubElement(res, q(ENV, "Taxes"))
            for tax in self.taxes:
                t = etree.SubElement(taxes, q(ENV, "Tax"))
                etree.SubElement(t, q(ENV, "taxType")).text = tax.tax_type
                etree.SubElement(t, q(ENV, "amountVND")).text = tax.amount_vnd
            etree.SubElement(taxes, q(ENV, "totalVND")).text = self.taxes_total_vnd or str(
                sum(int(t.amount_vnd) for t in self.taxes)
            )
            etree.SubElement(taxes, q(ENV, "dueDate")).text = self.taxes_due_date or ""
        for tag, attr in self._AFTER_TAXES:
            if getattr(self, attr) is not None:
                etree.SubElement(res, q(ENV, tag)).text = getattr(self, attr)
        if self.errors:
            errs = etree.SubElement(res, q(ENV, "Errors"))
            for e in self.errors:
                el = etree.SubElement(errs, q(ENV, "Error"))
                etree.SubElement(el, q(ENV, "code")).text = e.code
                etree.SubElement(el, q(ENV, "field")).text = e.field
                etree.SubElement(el, q(ENV, "description")).text = e.description
        return res

    @classmethod
    def from_element(cls, res: etree._Element) -> "Result":
        """Read a Result, ignoring unknown elements at any depth (RPL-11)."""

        def text(parent, tag):
            el = parent.find(q(ENV, tag))
            return None if el is None else (el.text or "")

        out = cls(result_code=text(res, "resultCode") or "", sequence=int(text(res, "sequence") or 0))
        for tag, attr in cls._SIMPLE + cls._AFTER_TAXES:
            setattr(out, attr, text(res, tag))
        taxes = res.find(q(ENV, "Taxes"))
        if taxes is not None:
            out.taxes = [Tax(text(t, "taxType") or "", text(t, "amountVND") or "") for t in taxes.findall(q(ENV, "Tax"))]
            out.taxes_total_vnd = text(taxes, "totalVND")
            out.taxes_due_date = text(taxes, "dueDate")
        errs = res.find(q(ENV, "Errors"))
        if errs is not None:
            out.errors = [
                ErrorEntry(text(e, "code") or "", text(e, "field") or "", text(e, "description") or "")
                for e in errs.findall(q(ENV, "Error"))
            ]
        return out


def ecdi_path(node: etree._Element, repeatable: frozenset[str] | set[str] = frozenset()) -> str:
    """The ``Error/field`` path of a node (spec §7.1): local names joined by ``/`` from the root,
    with ``[n]`` on steps whose element may occur more than once (``repeatable`` local names),
    and ``comment()[n]`` / ``processing-instruction()[n]`` / ``text()[n]`` as last steps.
    """
    if isinstance(node, etree._Comment) or isinstance(node, etree._ProcessingInstruction):
        kind = "comment()" if isinstance(node, etree._Comment) else "processing-instruction()"
        parent = node.getparent()
        if parent is None:
            siblings = _top_level_nodes(node)
            prefix = ""
        else:
            siblings = list(parent)
            prefix = ecdi_path(parent, repeatable)
        same = [s for s in siblings if type(s) is type(node)]
        return f"{prefix}/{kind}[{same.index(node) + 1}]"
    steps = []
    el = node
    while el is not None:
        local = etree.QName(el).localname
        parent = el.getparent()
        if parent is not None and local in repeatable:
            same = [s for s in parent if isinstance(s.tag, str) and etree.QName(s).localname == local]
            steps.append(f"{local}[{same.index(el) + 1}]")
        else:
            steps.append(local)
        el = parent
    return "/" + "/".join(reversed(steps))


def _top_level_nodes(node) -> list:
    nodes = []
    sib = node
    while sib.getprevious() is not None:
        sib = sib.getprevious()
    while sib is not None:
        nodes.append(sib)
        sib = sib.getnext()
    return nodes


def inside_signature(el: etree._Element) -> bool:
    """True if a ``ds:Signature`` is an ancestor of ``el``."""
    return any(a.tag == q(DS, "Signature") for a in el.iterancestors())


# Table 7-1: Error/field holds 0-500 characters.
FIELD_MAX = 500


def fit_field(path: str) -> str:
    """``path`` as an ``Error/field`` value: a path longer than Table 7-1 allows (a well-formed name
    may be a megabyte long) becomes that of the nearest ancestor that fits, the root's at worst ``""``."""
    while len(path) > FIELD_MAX:
        path = path.rpartition("/")[0]
    return path


def signature_elements(root: etree._Element) -> list[etree._Element]:
    """Every ``ds:Signature`` anywhere in the document (SIG-05 wants exactly one, last child of root)."""
    return list(root.iter(q(DS, "Signature")))
