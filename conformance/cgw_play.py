"""How the CGW cases play the DTS beyond one request: a request with Table 7-3 defects, a declaration
recorded, its history walked with the polling watermark (RPL-09), payments, the statement's facilities.

Everything goes through the case's CGW context (``ecdi``), and whatever needs the statement's keys or account
facts is built inside ``ecdi.build(make)``: it is on the tape, so the case replays offline (``ecdi replay``)
and never holds a password or a key. Decisions rest on recorded things only (replies, exchange times). Nothing
here judges — the cases do, with ``checks.gateway_*``.
"""

from __future__ import annotations

import time
from datetime import datetime

from . import cgw_documents as documents
from . import evaluation_order as order
from .checks import gateway_histories as gh
from .checks import gateway_replies as gr
from .codec import xmlsig
from .codec.envelope import new_message_id, read_header

WRONG_PASSWORD = "sai-mat-khau-0"       # a password no account has (the case never holds the right one)
BUSY_RETRIES = 3


def header_of(text: bytes):
    return read_header(order.unsigned(text))


def user(ecdi) -> str:
    """The statement's first account: the harness's declarant, whose pair signs every request."""
    return ecdi.statement.accounts[0].user


def account_named(ecdi, name: str):
    return next(a for a in ecdi.statement.accounts if a.user == name)


def chosen(ecdi, pick, what: str, why: str):
    """The statement account ``pick(accounts)`` names (a UserId or None), chosen on the tape; set-up
    failure ``why`` when there is none."""
    name = ecdi.build(lambda c: (pick(c.accounts) or "").encode()).decode()
    if not name:
        ecdi.setup_failed(why, what)
    return account_named(ecdi, name)


def other_account(ecdi):
    """A user of another tax code than the first account's (ENV-09's U0002)."""
    return chosen(ecdi, lambda accounts: next((a.user for a in accounts if a.tax_code != accounts[0].tax_code), None),
                  "the unauthorised user (U0002)", "no account of another tax code in the gateway statement")


def checker(ecdi):
    """A second user of the first account's tax code (maker ≠ checker)."""
    return chosen(ecdi, lambda accounts: next((a.user for a in accounts[1:] if a.tax_code == accounts[0].tax_code),
                                              None),
                  "a checker other than the maker", "no second account of the first account's tax code")


def s_max(ecdi) -> int:
    return int(ecdi.statement.parameters["s_max"])


def deployment(ecdi) -> gr.Deployment:
    """Table 4-3's placeholders as the statement publishes them."""
    p = ecdi.statement.parameters
    return gr.Deployment(tuple(p["accepted_versions"]), p["central_office"])


# ------------------------------------------------------------------------------------------ the wire


def busy(exchange) -> float | None:
    """How long to wait before sending again when the gateway said it is busy — HTTP 503 (its Retry-After,
    capped) or 271 E9001 (TRN-08, REL-02: not recorded) — else None."""
    if exchange.response_status == 503:
        try:
            return min(float({k.lower(): v for k, v in exchange.response_headers.items()}.get("retry-after", 1)), 10.0)
        except ValueError:
            return 1.0
    if exchange.reply_function == "271" and exchange.reply_codes[:1] == ["E9001"]:
        return 0.0
    return None


def exchange_of(ecdi, do, *, retry_busy: bool = True):
    """The exchange ``do()`` makes; as a DTS would, the same octets are sent again after a busy answer
    (E9001 may come at any step before recording, RPL-05), a few times at most."""
    exchange = do()
    for _ in range(BUSY_RETRIES if retry_busy else 0):
        wait = busy(exchange)
        if wait is None:
            break
        # REL-06: at least T_backoff_base, and a query's retransmission T_poll_min after its previous attempt
        time.sleep(max(wait, ecdi.timer("T_backoff_base"), ecdi.timer("T_poll_min")))
        exchange = do()
    return exchange


def send_exchange(ecdi, text: bytes, credentials: str = "", *, by=None, retry_busy: bool = True):
    """``text`` sent with the first account's credentials, ``by``'s, a wrong password (``wrong-password``) or
    another tax code's user (``other-user``)."""
    options = {"wrong-password": lambda: {"password": WRONG_PASSWORD},
               "other-user": lambda: {"account": other_account(ecdi)}}.get(credentials, dict)()
    if by is not None:
        options["account"] = by
    return exchange_of(ecdi, lambda: ecdi.send(text, **options), retry_busy=retry_busy)


def send(ecdi, text: bytes, credentials: str = "", *, by=None, retry_busy: bool = True) -> bytes | None:
    """The reply message text to ``text`` (see ``send_exchange``)."""
    return send_exchange(ecdi, text, credentials, by=by, retry_busy=retry_busy).reply_text


# ------------------------------------------------------------------------------------------ requests


def recorded(ecdi, what: str, **kwargs) -> tuple[bytes, bytes]:
    """A valid declaration (or ``kwargs``' request) sent and receipted; set-up failure otherwise."""
    text = ecdi.message(**kwargs)
    reply = send(ecdi, text)
    got = gr.read_reply(reply, ecdi.profile)
    if isinstance(got, str) or got.function not in ("29", "32"):
        ecdi.setup_failed(got if isinstance(got, str) else got.summary(), what)
    return text, reply


def inflicted(ecdi, base: bytes, defects, given: order.Given = order.Given()) -> bytes:
    """``base`` with ``defects`` made in it, signed with the client's key (or a rogue one)."""
    limit = s_max(ecdi)

    def make(client):
        rogue = order.rogue_signer(client.accounts[0].tax_code) if any(d.rogue for d in defects) else None
        return order.inflict(base, defects, signer=client.signer(), s_max=limit, given=given, rogue=rogue)
    return ecdi.build(make)


def defective(ecdi, defects, given: order.Given = order.Given()) -> tuple[bytes, bytes | None]:
    """A fresh valid request with ``defects`` made in it, sent with the credentials the earliest asks for."""
    base = ecdi.message()
    if any(d.replay for d in defects):
        base, _ = recorded(ecdi, "the submission whose messageId is re-used")
    text = inflicted(ecdi, base, defects, given)
    credentials = next((d.credentials for d in sorted(defects, key=lambda d: d.step) if d.credentials), "")
    return text, send(ecdi, text, credentials)


def given_for(ecdi, defects) -> order.Given:
    """What ``defects`` need recorded first (a receipted reference for E0074)."""
    if any(d.name == "duplicate-reference" for d in defects):
        text, _ = recorded(ecdi, "the declaration whose reference is re-used")
        return order.Given(recorded_reference=header_of(text)["Subject/reference"])
    return order.Given()


def signed_by(ecdi, certificate: str | None = None, *, signature_method: str = xmlsig.RSA_SHA256,
              digest_method: str = xmlsig.SHA256) -> bytes:
    """A fresh valid request signed with the given algorithms by the account's pair, by the statement's
    ``[certificates.<certificate>]`` (empty octets when it names none), or by a rogue CA's (``untrusted``)."""
    from .playing_dts.client import signer_of

    base = ecdi.message()

    def make(client):
        if certificate is None:
            signer = client.signer()
        elif certificate in client.statement.certificates:
            signer = signer_of(client.statement.certificates[certificate])
        elif certificate == "untrusted":
            signer = order.rogue_signer(client.accounts[0].tax_code)
        else:
            return b""
        return xmlsig.sign_envelope(order.unsigned(base), signer, signature_method=signature_method,
                                    digest_method=digest_method)
    return ecdi.build(make)


def framed(ecdi, text: bytes, *, body_password: str | None = None, elsewhere=None, path: str | None = None):
    """``text`` in the client's SOAP frame, its Password element replaced by ``body_password`` where given,
    with ``elsewhere(account)``'s extra headers (credentials where ECDI forbids them, TRN-11)."""
    import re

    from .codec import soap

    def change(body: bytes) -> bytes:
        if body_password is None:
            return body
        return re.sub(rb"(<(?:\w+:)?Password>)[^<]*(</(?:\w+:)?Password>)",
                      lambda m: m.group(1) + body_password.encode() + m.group(2), body, count=1)

    def headers(account) -> dict:
        return {"Content-Type": soap.CONTENT_TYPE, "SOAPAction": soap.SOAP_ACTION,
                **(elsewhere(account) if elsewhere else {})}
    return exchange_of(ecdi, lambda: ecdi.send_framed(text, change_body=change, headers=headers, path=path)).reply_text


# ------------------------------------------------------------------------------------------ histories


def walk(ecdi, text: bytes, reply: bytes, *, until=None, budget_s: float | None = None) -> list[gh.Delivery]:
    """Poll the submission ``text`` (answered ``reply``) with the watermark, ``T_poll_min`` apart, until its
    history is complete (or ``until(deliveries)`` holds), or ``T_poll_max_total`` has passed. The deliveries
    carry the recorded times of their queries."""
    h = header_of(text)
    kind, function = h["Subject/type"], h["Subject/function"]
    deliveries = [gh.Delivery(None, reply)]
    interval = ecdi.timer("T_poll_min")
    polls = int((budget_s if budget_s is not None else ecdi.timer("T_poll_max_total")) / interval)
    for _ in range(polls):
        if gh.complete(deliveries, ecdi.profile, kind, function) or (until and until(deliveries)):
            break
        time.sleep(interval)
        after = gh.watermark(deliveries, ecdi.profile)
        asked = ecdi.query(h["Reference/messageId"], after, type=kind)
        exchange = send_exchange(ecdi, asked)
        deliveries.append(gh.Delivery(after, exchange.reply_text, exchange.received_at, asked))
    return deliveries


def number_of(deliveries, profile) -> str | None:
    """The declaration number a history carries (from its 30 on)."""
    for d in deliveries:
        reply = gr.read_reply(d.text, profile)
        if not isinstance(reply, str) and reply.result.declaration_number:
            return reply.result.declaration_number
    return None


def declared(ecdi, what: str = "a declaration with its number") -> tuple[bytes, list[gh.Delivery], str]:
    """A declaration recorded and polled until its 30 gives it a number (set-up failure otherwise)."""
    text, reply = recorded(ecdi, what)
    deliveries = walk(ecdi, text, reply, until=lambda ds: number_of(ds, ecdi.profile) is not None)
    number = number_of(deliveries, ecdi.profile)
    if number is None:
        ecdi.setup_failed("no declaration number within T_poll_max_total", what)
    return text, deliveries, number


def varied_replies(ecdi) -> list[tuple[str, bytes | None, bytes | None, bytes | None]]:
    """Replies of every kind a CGW gives, each with what Table 4-3 reads it against: (what, request, reply,
    submission). A receipt and its whole history (entries delivered to queries: ``submission`` is the
    declaration), a 272, 271s of several steps, a transient E0002 and 12, and a 271 to an unreadable text
    (``request`` None: the placeholders)."""
    out = []
    text, reply = recorded(ecdi, "the declaration whose replies are read")
    out.append(("entry 1 (29)", text, reply, None))
    deliveries = walk(ecdi, text, reply)
    for d in deliveries[1:]:
        got = gr.read_reply(d.text, ecdi.profile)
        entry = not isinstance(got, str) and not gh.is_transient(got)      # a history entry: the submission's
        out.append((f"the reply to a query from {d.after}", d.request, d.text, text if entry else None))
    time.sleep(ecdi.timer("T_poll_min"))
    above = ecdi.query(header_of(text)["Reference/messageId"], gh.watermark(deliveries, ecdi.profile))
    out.append(("the reply to a query above the last entry (12 when complete)", above, send(ecdi, above), None))
    for name in ("wrong-total", "header-comment", "wrong-password", "future-issue"):
        defect = order.BY_NAME[name]
        sent, got = defective(ecdi, [defect])
        out.append((f"the {defect.code} to {defect.what}", sent, got, None))
    unknown = ecdi.query(new_message_id(), 0)
    out.append(("the E0002 to a query for an unknown submission", unknown, send(ecdi, unknown), None))
    broken = ecdi.message()[:-3]
    out.append(("the X0001 to a text that is not XML", None, send(ecdi, broken), None))
    return out


# ------------------------------------------------------------------------------------------ payments


def payment(ecdi, content, *, type: str = "701", function: str = "8", by=None, reference: str | None = None):
    """A payment document — ``content(client)``, built with the statement's facts — sent to central_office
    (ENV-06), signed and sent by ``by`` (default the first account): (request, reply)."""
    name = by.user if by is not None else user(ecdi)

    def make(client):
        account = next(a for a in client.accounts if a.user == name)
        return client.message(content(client), type=type, function=function, account=account,
                              **({"reference": reference} if reference else {}))
    text = ecdi.build(make)
    return text, send(ecdi, text, by=by)


def ordered(ecdi, number: str | None = None, what: str = "a payment order awaiting approval",
            maker: str | None = None):
    """A payment order recorded (29): (its exchange, paymentOrderId); ``number``: the declaration it pays."""
    if number is None:
        _, _, number = declared(ecdi, "the declaration the order pays")
    _, reply = payment(ecdi, lambda c: documents.payment_order(c.accounts[0].tax_code, maker or c.accounts[0].user,
                                                               number))
    exchange = ecdi.exchanges()[-1]
    got = gr.read_reply(reply, ecdi.profile)
    if isinstance(got, str) or got.function != "29" or not got.result.payment_order_id:
        ecdi.setup_failed(got if isinstance(got, str) else got.summary(), what)
    return exchange, got.result.payment_order_id


def otp(ecdi, order_id: str) -> str:
    """The order's latest OTP, read from its e-mail (the statement's OTP mailbox; NOT-APPLICABLE without)."""
    mails = ecdi.otp_mails(order_id)
    if not mails:
        ecdi.setup_failed("no OTP e-mail", f"the OTP of order {order_id}")
    return mails[-1]["otp"]


def approve(ecdi, order_id: str, value: str, by=None):
    """A 702/8 approving ``order_id`` with OTP ``value``, by ``by`` (default the checker) as its checker:
    its exchange."""
    by = by or checker(ecdi)
    payment(ecdi, lambda c: documents.approval(order_id, by.user, value), type="702", by=by)
    return ecdi.exchanges()[-1]


# ------------------------------------------------------------------------------------------ SIG-10


def crl_next_update(ecdi) -> datetime | str:
    """The nextUpdate of the CRL at the account certificate's distribution point, read on the tape, or why it
    cannot be read."""
    def make(client) -> bytes:
        import requests
        from cryptography import x509

        from .codec import certs

        urls = certs.crl_urls(client.signer().chain[0])
        if not urls:
            return b"!the account's certificate names no CRL distribution point"
        try:
            response = requests.get(urls[0], timeout=30)
            response.raise_for_status()
            crl = x509.load_der_x509_crl(response.content)
        except (requests.RequestException, ValueError) as exc:
            return f"!the CRL at {urls[0]} cannot be read: {exc}".encode()
        if crl.next_update_utc is None:
            return b"!the CRL has no nextUpdate"
        if client.signer().chain[0].not_valid_after_utc <= crl.next_update_utc:
            return b"!the certificate expires before its CRL's nextUpdate"
        return crl.next_update_utc.isoformat().encode()
    said = ecdi.build(make).decode()
    return said[1:] if said.startswith("!") else datetime.fromisoformat(said)
