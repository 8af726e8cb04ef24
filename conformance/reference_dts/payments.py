"""E-tax payments (§10) and local users (SEC-08) of the reference DTS: a mixin of ``ReferenceDTS``.

Read the three user actions top to bottom:

    pay_create   complete the order (maker = the acting UserId, PAY-02; description rendered, PAY-01)
                 → 701/8 to central_office (ENV-06) → on 29 show order id, OTP expiry in local time,
                 the OTP sender and "do not block it" (PAY-08)
    request_otp  702/16 for an order known to be awaiting approval, also after P0001 (PAY-09)
                 → on 29 the same notice (PAY-08)
    approve      checker = the acting UserId (PAY-02); never the maker's own order (PAY-11); never an
                 OTP customs already refused (PAY-10) → 702/8 → 32, or 273 P0001: "expired or
                 invalidated, request a new one" (PAY-10)

Every behaviour a requirement asks for goes through a hook listed in ``PAYMENT_HOOKS`` (part of
``ReferenceDTS.HOOKS``), so that a mutant can break exactly one of them.

What the DTS knows of its orders (maker, state, OTP expiry, the hashes of OTP values customs refused)
is kept in ``payments.json`` in its state folder; OTP values themselves are never stored.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from datetime import datetime

from lxml import etree

from ..codec.envelope import VN_TZ, new_message_id, parse_datetime
from ..codec.namespaces import PAY, q
from .sender import GOT_REPLY, Operation

PAYMENT_HOOKS = frozenset({"account_for", "payment_user_id", "payment_description", "otp_notice", "shown_otp_expiry",
                           "offers_new_otp", "maker_approval_refusal", "otp_refused_before", "expired_otp_notice"})

AWAITING, APPROVED, CLOSED = "awaiting approval", "approved", "closed"


@dataclass
class KnownOrder:
    """A payment order as this DTS knows it (PAY-09: which orders await approval; PAY-11: its maker)."""

    order_id: str
    submission: str                 # messageId of the 701
    maker: str                      # UserId that made it (PAY-02)
    maker_user: str                 # local user that made it (SEC-08)
    total_vnd: str
    state: str = AWAITING
    otp_sender: str | None = None
    otp_expires_at: str | None = None   # as received (DateTime of the 29)
    refused_otps: list[str] = field(default_factory=list)   # sha-256 of OTP values answered P0001/P0002


class PaymentBook:
    """The DTS's payment orders, durable in ``payments.json``."""

    def __init__(self, path):
        self.path = path

    def _load(self) -> dict[str, KnownOrder]:
        if not self.path.exists():
            return {}
        return {k: KnownOrder(**v) for k, v in json.loads(self.path.read_text(encoding="utf-8")).items()}

    def get(self, order_id: str) -> KnownOrder | None:
        return self._load().get(order_id)

    def save(self, order: KnownOrder) -> None:
        orders = self._load()
        orders[order.order_id] = order
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps({k: asdict(v) for k, v in orders.items()}, ensure_ascii=False), encoding="utf-8")
        tmp.replace(self.path)


def otp_digest(order_id: str, otp: str) -> str:
    return hashlib.sha256(f"{order_id}:{otp}".encode("utf-8")).hexdigest()


def _stop(state: str, kind: str, code: str | None, text: str) -> Exception:
    from .dts import _Stop   # dts imports this module

    return _Stop(state, kind, code, text)


def local_text(moment: datetime, timespec: str = "seconds") -> str:
    """A moment as the user reads it: local (Vietnam) time with its offset."""
    return moment.astimezone(VN_TZ).isoformat(timespec=timespec)


class PaymentFlows:
    """Mixed into ``ReferenceDTS``: local users (SEC-08) and the payment actions (§10)."""

    # ============================================================================================
    # Hooks (see PAYMENT_HOOKS)

    def account_for(self, local_user: str):
        """SEC-08: each local user submits with his or her own UserId and password, never another's."""
        return self.config.user(local_user)

    def payment_user_id(self) -> str:
        """PAY-02: ``maker`` (701) and ``checker`` (702) are the UserId of the same SOAP request — the
        acting local user's own (SEC-08)."""
        return self.user.user_id

    def payment_description(self, order: etree._Element, tax_code: str, note: str | None) -> str:
        """PAY-01: the canonical rendering — taxcode = From/identity, one taxline per TaxLine in document
        order with the same values, and the user's note (TXT-05) as ``+GC:``."""
        text = f"ECDI+MST:{tax_code}" + "".join(
            f"+TK:{ln.findtext(q(PAY, 'declarationNumber'))}/{ln.findtext(q(PAY, 'taxType'))}/"
            f"{ln.findtext(q(PAY, 'amountVND'))}" for ln in order.findall(q(PAY, "TaxLine")))
        return text + (f"+GC:{note}" if note else "")

    def shown_otp_expiry(self, otp_expires_at: str, received: datetime) -> datetime:
        """PAY-08: the OTP expires when the reply's ``otpExpiresAt`` says (shown in local time)."""
        return parse_datetime(otp_expires_at)

    def otp_notice(self, order_id: str, expires: datetime, sender: str) -> str:
        """PAY-08: the order id, the OTP expiry in local time, that the OTP was e-mailed from ``otpSender``
        and that mail from that address must not be blocked."""
        return (f"Payment order {order_id}: a one-time password (OTP) was e-mailed from {sender} to the addresses "
                f"registered with customs for payment approval. It is valid until {local_text(expires)} (local time). "
                f"Do not block mail from {sender}: make sure your spam filter lets it through. If it does not "
                "arrive, request a new OTP.")

    def offers_new_otp(self, order: KnownOrder) -> bool:
        """PAY-09: "request new OTP" is offered for every order known to await approval, P0001 included."""
        return order.state == AWAITING

    def maker_approval_refusal(self, order: KnownOrder, checker: str) -> str | None:
        """PAY-11 (MUST in 1.1, SHOULD in 1.0 — the reference DTS refuses in both): the maker of the order,
        as known here, may not approve it; the user is told why. None lets the approval go."""
        if checker != order.maker:
            return None
        return (f"You made payment order {order.order_id} (user {order.maker}); it must be approved by another "
                "user (maker and checker must differ). Nothing was sent.")

    def otp_refused_before(self, order: KnownOrder, otp: str) -> bool:
        """PAY-10: an OTP value customs answered P0001 or P0002 is never sent in a new approval."""
        return otp_digest(order.order_id, otp) in order.refused_otps

    def expired_otp_notice(self, order: KnownOrder) -> str:
        """PAY-10: after P0001 the user learns the OTP expired or was invalidated and is offered a new one."""
        return (f"The OTP for payment order {order.order_id} has expired or was invalidated (P0001). Request a "
                "new OTP for this order and approve with the new one.")

    # ============================================================================================
    # Local users (SEC-08)

    def login(self, local_user: str | None = None) -> None:
        """The local user ``local_user`` (None: the first) acts from now on, with his or her own CGW
        credentials; the journal attributes every event to that user and UserId (SEC-06, SEC-08)."""
        name = local_user if local_user is not None else self.config.users[0].name
        self.config.user(name)            # KeyError: no such local user
        if name == self.user_name:
            return
        senders = self.__dict__.setdefault("_senders_by_user", {})
        senders[self.user_name] = self._sender                # each user keeps a sender with his or her
        self._sender = senders.get(name)                      # own credentials (built on first use)
        self.user = self.account_for(name)
        self.user_name = name
        self.journal.act_as(name, self.user.user_id)

    # ============================================================================================
    # User actions

    def pay_create(self, content, *, user: str | None = None):
        """Create a payment order (701/8) from the user's entry: tax lines, bank, account and a note."""
        return self._act(lambda: self._as(user, lambda: self._pay_create(content)))

    def request_otp(self, order_id: str, *, user: str | None = None):
        """Request a new OTP for an order awaiting approval (702/16, PAY-09)."""
        return self._act(lambda: self._as(user, lambda: self._request_otp(order_id)))

    def approve(self, order_id: str, otp: str, *, user: str | None = None):
        """Approve an order with the OTP from the e-mail (702/8)."""
        return self._act(lambda: self._as(user, lambda: self._approve(order_id, otp)))

    def _as(self, user, action):
        if user is not None:
            try:
                self.login(user)
            except KeyError:
                raise _stop("refused", "local-error", "SEC-08", f"No local user {user!r}: log in first.") from None
        return action()

    # -- the flows -------------------------------------------------------------------------------

    def _pay_create(self, content):
        self._sender_for_use()                                                   # TRN-10
        self._refuse_unclaimed("701", "8")                                       # CAP-04
        document = self._prepare(content)                                        # TXT-03/05, DOC-03
        maker = document.find(q(PAY, "maker"))
        if maker is None or document.find(q(PAY, "description")) is None:
            raise _stop("refused", "local-error", "DOC-01", "The payment order lacks maker or description.")
        maker.text = self.payment_user_id()                                      # PAY-02
        description = document.find(q(PAY, "description"))
        note = (description.text or "").strip() or None                          # the user's note (TXT-05)
        description.text = self.payment_description(document, self.config.tax_code, note)   # PAY-01
        ref = self._business_reference("701", "8", None)                         # ENV-05
        draft = self._draft("701", "8", ref, document, new_message_id())         # ENV-06: central_office
        self._check_content(draft)                                               # DOC-01
        sub, result, state = self._submit(draft)
        report = self._report(sub, state)
        reply = self._fresh_reply(sub, result, "29")
        if reply is not None and reply.result.payment_order_id:
            order = KnownOrder(reply.result.payment_order_id, sub.message_id, maker.text, self.user_name,
                               document.findtext(q(PAY, "totalVND")) or "")
            self._otp_issued(order, reply, report, sub)
        return report

    def _request_otp(self, order_id: str):
        order = self._known_order(order_id)
        self._sender_for_use()
        self._refuse_unclaimed("702", "16")
        if not self.offers_new_otp(order):                                       # PAY-09
            raise _stop("refused", "local-error", "PAY-09",
                        f"Payment order {order_id} is {order.state}; no new OTP can be requested. Nothing was sent.")
        request = etree.Element(q(PAY, "OtpRequest"), nsmap={None: PAY})
        etree.SubElement(request, q(PAY, "paymentOrderId")).text = order_id
        draft = self._draft("702", "16", order_id, request, new_message_id())   # ENV-05: reference = order id
        self._check_content(draft)
        sub, result, state = self._submit(draft)
        report = self._report(sub, state)
        reply = self._fresh_reply(sub, result, "29")
        if reply is not None:
            self._otp_issued(order, reply, report, sub)
        else:
            self._closed_if_unknown(order, result)
            report.payment_order_id = order_id
        return report

    def _approve(self, order_id: str, otp: str):
        order = self._known_order(order_id)
        otp = (otp or "").strip()
        checker = self.payment_user_id()                                         # PAY-02
        refusal = self.maker_approval_refusal(order, checker)                    # PAY-11
        if refusal:
            raise _stop("refused", "local-error", "PAY-11", refusal)
        if order.state != AWAITING:
            raise _stop("refused", "local-error", "PAY-09",
                        f"Payment order {order_id} is {order.state}; it cannot be approved. Nothing was sent.")
        if self.otp_refused_before(order, otp):                                  # PAY-10
            raise _stop("refused", "local-error", "PAY-10",
                        f"Customs already refused this OTP for payment order {order_id}; it is not sent again. "
                        "Request a new OTP and approve with the new one. Nothing was sent.")
        self._sender_for_use()
        self._refuse_unclaimed("702", "8")
        approval = etree.Element(q(PAY, "PaymentApproval"), nsmap={None: PAY})
        etree.SubElement(approval, q(PAY, "paymentOrderId")).text = order_id
        etree.SubElement(approval, q(PAY, "checker")).text = checker
        etree.SubElement(approval, q(PAY, "otp")).text = otp
        ref = self._business_reference("702", "8", None)
        draft = self._draft("702", "8", ref, approval, new_message_id())
        self._check_content(draft)
        sub, result, state = self._submit(draft)
        report = self._report(sub, state)
        report.payment_order_id = order_id
        reply = result.reply if result.state == GOT_REPLY else None
        if reply is None or reply.transient:
            return report
        if reply.function == "32":
            order.state = APPROVED
            self._tell("customs-result", "32", f"Payment order {order_id} is approved.", sub)
        elif reply.has_code("P0001", "P0002"):
            order.refused_otps.append(otp_digest(order_id, otp))                 # PAY-10
            if reply.has_code("P0001"):
                self._tell("customs-error", "P0001", self.expired_otp_notice(order), sub)
            else:
                self._tell("customs-error", "P0002", f"The OTP entered for payment order {order_id} is wrong. "
                           "Check the e-mail and enter it again, or request a new OTP.", sub)
        elif reply.has_code("P0004"):
            order.state = CLOSED
        self.payments.save(order)
        return self._finish(report)

    # -- helpers --------------------------------------------------------------------------------

    @property
    def payments(self) -> PaymentBook:
        return PaymentBook(self.config.state_dir / "payments.json")

    def _known_order(self, order_id: str) -> KnownOrder:
        order = self.payments.get(order_id)
        if order is None:
            raise _stop("refused", "local-error", "PAY-09", f"This DTS knows no payment order {order_id!r}.")
        return order

    def _submit(self, draft):
        """Sign, store, send and conclude one payment request (no polling: Table 7-2 has no later entries)."""
        text = self.compose(draft)                                               # SIG-12, SIG-01/04
        sub = self._store_request(draft, text)                                   # REL-09
        result = self._send(Operation(sub.message_id, sub.message_id, text, self._expect(sub), is_query=False,
                                      draft=draft))                              # REL-03..07
        return sub, result, self._conclude(sub, result)                          # RPL-06..15

    @staticmethod
    def _fresh_reply(sub, result, function: str):
        entry = sub.entries.get(1)
        if result.state != GOT_REPLY or entry is None or entry.function != function:
            return None
        if entry.reply_id != result.reply.message_id:
            return None
        return result.reply

    def _otp_issued(self, order: KnownOrder, reply, report, sub) -> None:
        """PAY-08 on a 29 to 701 or 702/16: remember the order and tell the user about the OTP."""
        r = reply.result
        order.otp_sender, order.otp_expires_at, order.state = r.otp_sender, r.otp_expires_at, AWAITING
        self.payments.save(order)
        shown = self.shown_otp_expiry(r.otp_expires_at, self.clock.now()) if r.otp_expires_at else None
        if shown is not None:
            self._tell("info", "PAY-08", self.otp_notice(order.order_id, shown, r.otp_sender or "?"), sub)
        report.payment_order_id = order.order_id
        report.otp_expires_at = local_text(shown, "milliseconds") if shown is not None else None
        self._finish(report)

    def _closed_if_unknown(self, order: KnownOrder, result) -> None:
        reply = result.reply if result.state == GOT_REPLY else None
        if reply is not None and reply.has_code("P0004"):
            order.state = CLOSED
            self.payments.save(order)
