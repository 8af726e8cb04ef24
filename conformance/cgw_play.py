"""How the CGW cases play the DTS beyond one request: a request with Table 7-3 defects, a declaration
recorded, its history walked with the polling watermark (RPL-09), a declaration number obtained.

Everything goes through the case's CGW context (``ecdi``); nothing here judges — the cases do, with
``checks.gateway_replies`` and ``checks.gateway_histories``.
"""

from __future__ import annotations

import time

from . import evaluation_order as order
from .case import CaseFailure
from .checks import gateway_histories as gh
from .checks import gateway_replies as gr
from .codec.envelope import new_message_id, read_header


def header_of(text: bytes):
    return read_header(order.unsigned(text))


def account(ecdi):
    """The statement's first account: the harness's declarant, whose pair signs every request."""
    return ecdi.statement.accounts[0]


def signer(ecdi):
    return ecdi.client.signer(account(ecdi))


def s_max(ecdi) -> int:
    return int(ecdi.statement.parameters["s_max"])


def deployment(ecdi) -> gr.Deployment:
    """Table 4-3's placeholders as the statement publishes them."""
    p = ecdi.statement.parameters
    return gr.Deployment(tuple(p["accepted_versions"]), p["central_office"])


def query(ecdi, submission: str, after: int, type: str = "929") -> bytes:
    return ecdi.client.query(submission, after, type=type)


def send(ecdi, text: bytes, credentials: str = "") -> bytes | None:
    """The reply message text to ``text`` sent with the first account's credentials, a wrong password
    (``wrong-password``) or another tax code's user (``other-user``)."""
    if credentials == "wrong-password":
        return ecdi.send(text, password=account(ecdi).password + "-wrong").reply_text
    if credentials == "other-user":
        return ecdi.send(text, account=other_account(ecdi)).reply_text
    return ecdi.send(text).reply_text


def other_account(ecdi):
    """A statement account not registered for the first account's tax code (ENV-09), or INCONCLUSIVE."""
    first = account(ecdi)
    other = next((a for a in ecdi.statement.accounts if a.tax_code != first.tax_code), None)
    if other is None:
        ecdi.setup_failed("no account of another tax code", "the unauthorised user (U0002)",
                          "the gateway statement lists accounts of one tax code only")
    return other


def recorded(ecdi, what: str, **kwargs) -> tuple[bytes, bytes]:
    """A valid declaration (or ``kwargs``' request) sent and receipted; set-up failure otherwise."""
    text = ecdi.message(**kwargs)
    reply = send(ecdi, text)
    got = gr.read_reply(reply, ecdi.profile)
    if isinstance(got, str) or got.function not in ("29", "32"):
        ecdi.setup_failed(got if isinstance(got, str) else got.summary(), what)
    return text, reply


def defective(ecdi, defects, given: order.Given = order.Given()) -> tuple[bytes, bytes | None]:
    """A fresh valid request with ``defects`` made in it, sent with the credentials the earliest asks for."""
    base = ecdi.message()
    if any(d.replay for d in defects):
        base, _ = recorded(ecdi, "the submission whose messageId is re-used")
    rogue = order.rogue_signer(account(ecdi).tax_code) if any(d.rogue for d in defects) else None
    text = order.inflict(base, defects, signer=signer(ecdi), s_max=s_max(ecdi), given=given, rogue=rogue)
    credentials = next((d.credentials for d in sorted(defects, key=lambda d: d.step) if d.credentials), "")
    return text, send(ecdi, text, credentials)


def given_for(ecdi, defects) -> order.Given:
    """What ``defects`` need recorded first (a receipted reference for E0074)."""
    if any(d.name == "duplicate-reference" for d in defects):
        text, _ = recorded(ecdi, "the declaration whose reference is re-used")
        return order.Given(recorded_reference=header_of(text)["Subject/reference"])
    return order.Given()


def walk(ecdi, text: bytes, reply: bytes, *, until=None, budget_s: float | None = None) -> list[gh.Delivery]:
    """Poll the submission ``text`` (answered ``reply``) with the watermark, ``T_poll_min`` apart, until its
    history is complete (or ``until(deliveries)`` holds), or ``T_poll_max_total`` has passed."""
    h = header_of(text)
    kind, function = h["Subject/type"], h["Subject/function"]
    deliveries = [gh.Delivery(None, reply, time.monotonic())]
    interval = ecdi.timer("T_poll_min")
    deadline = time.monotonic() + (budget_s if budget_s is not None else ecdi.timer("T_poll_max_total"))
    while not gh.complete(deliveries, ecdi.profile, kind, function) and not (until and until(deliveries)):
        if time.monotonic() + interval > deadline:
            break
        time.sleep(interval)
        after = gh.watermark(deliveries, ecdi.profile)
        started = time.monotonic()
        asked = query(ecdi, h["Reference/messageId"], after, kind)
        deliveries.append(gh.Delivery(after, send(ecdi, asked), started, asked))
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


def stop(message: str) -> None:
    raise CaseFailure(message)


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
        entry = not gh.is_transient(r) if not isinstance(r := gr.read_reply(d.text, ecdi.profile), str) else False
        out.append((f"the reply to a query from {d.after}", d.request, d.text, text if entry else None))
    time.sleep(ecdi.timer("T_poll_min"))
    above = query(ecdi, header_of(text)["Reference/messageId"], gh.watermark(deliveries, ecdi.profile))
    out.append(("the reply to a query above the last entry (12 when complete)", above, send(ecdi, above), None))
    for name in ("wrong-total", "header-comment", "wrong-password", "future-issue"):
        defects = [order.BY_NAME[name]]
        sent, got = defective(ecdi, defects)
        out.append((f"the {order.BY_NAME[name].code} to {order.BY_NAME[name].what}", sent, got, None))
    unknown = query(ecdi, new_message_id(), 0)
    out.append(("the E0002 to a query for an unknown submission", unknown, send(ecdi, unknown), None))
    broken = ecdi.message()[:-3]
    out.append(("the X0001 to a text that is not XML", None, send(ecdi, broken), None))
    return out


def signed_by(ecdi, signer, *, signature_method: str | None = None, digest_method: str | None = None) -> bytes:
    """A fresh valid request signed by ``signer`` with the given algorithms (default RSA-SHA256, SHA-256)."""
    from .codec import xmlsig

    return xmlsig.sign_envelope(order.unsigned(ecdi.message()), signer,
                                signature_method=signature_method or xmlsig.RSA_SHA256,
                                digest_method=digest_method or xmlsig.SHA256)


def stated_signer(ecdi, name: str):
    """The signer of the statement's ``[certificates.<name>]``, or None when the statement names none."""
    from .playing_dts.client import signer_of

    pair = ecdi.statement.certificates.get(name)
    return signer_of(pair) if pair is not None else None


# ------------------------------------------------------------------------------------------ payments


def control(ecdi, facility: str):
    """A client of the statement's facility (``test_clock`` or ``otp_mailbox``: the control protocol of
    docs/contracts.md); the case ends NOT-APPLICABLE when the statement offers none."""
    from .gateway_control import GatewayControl

    offered = ecdi.facility(facility)
    return GatewayControl(offered.url, token=offered.token, ca_pem=ecdi.statement.tls_anchor)


def checker(ecdi):
    """A second user of the first account's tax code (maker ≠ checker), or set-up failure."""
    first = account(ecdi)
    other = next((a for a in ecdi.statement.accounts[1:] if a.tax_code == first.tax_code), None)
    if other is None:
        ecdi.setup_failed("one user of the tax code", "a checker other than the maker",
                          "the gateway statement lists no second account of the first account's tax code")
    return other


def payment(ecdi, content, *, type: str = "701", function: str = "8", by=None, reference: str | None = None):
    """Send a payment document (to central_office, ENV-06) signed and sent by ``by`` (default the maker)."""
    text = ecdi.client.message(content, type=type, function=function, account=by,
                               **({"reference": reference} if reference else {}))
    return text, (ecdi.send(text, account=by).reply_text if by else send(ecdi, text))


def ordered(ecdi, number: str | None = None, what: str = "a payment order awaiting approval"):
    """A payment order recorded (29): (its reply, paymentOrderId); ``number``: the declaration it pays."""
    from . import cgw_documents as documents

    if number is None:
        _, _, number = declared(ecdi, "the declaration the order pays")
    _, reply = payment(ecdi, documents.payment_order(account(ecdi).tax_code, account(ecdi).user, number))
    got = gr.read_reply(reply, ecdi.profile)
    if isinstance(got, str) or got.function != "29" or not got.result.payment_order_id:
        ecdi.setup_failed(got if isinstance(got, str) else got.summary(), what)
    return reply, got.result.payment_order_id


def approve(ecdi, order_id: str, otp: str, by=None) -> bytes | None:
    """A 702/8 approving ``order_id`` with ``otp``, by ``by`` (default the checker) as its checker."""
    from . import cgw_documents as documents

    by = by or checker(ecdi)
    return payment(ecdi, documents.approval(order_id, by.user, otp), type="702", by=by)[1]


def crl_next_update(cert):
    """The nextUpdate of the CRL at ``cert``'s distribution point (SIG-10), or why it cannot be read."""
    import requests
    from cryptography import x509

    from .codec import certs

    urls = certs.crl_urls(cert)
    if not urls:
        return "the account's certificate names no CRL distribution point"
    try:
        response = requests.get(urls[0], timeout=30)
        response.raise_for_status()
        crl = x509.load_der_x509_crl(response.content)
    except (requests.RequestException, ValueError) as exc:
        return f"the CRL at {urls[0]} cannot be read: {exc}"
    return crl.next_update_utc or "the CRL has no nextUpdate"


def credentials_elsewhere(user: str, password: str) -> dict:
    """Credentials where ECDI forbids them (TRN-11): an Authorization header, a cookie, the URL's query."""
    import base64
    from urllib.parse import urlencode

    basic = base64.b64encode(f"{user}:{password}".encode()).decode("ascii")
    return {"Authorization": f"Basic {basic}", "Cookie": f"UserId={user}; Password={password}",
            "query": urlencode({"UserId": user, "Password": password})}


def post_send(ecdi, text: bytes, user: str, password: str, elsewhere: dict) -> bytes | None:
    """A well-framed Send of ``text`` with ``user``/``password`` in its body and ``elsewhere``'s credentials
    in the header, cookie and query; the reply message text."""
    from urllib.parse import urlsplit

    from .codec import soap

    headers = {"Content-Type": soap.CONTENT_TYPE, "SOAPAction": soap.SOAP_ACTION,
               **{k: v for k, v in elsewhere.items() if k != "query"}}
    path = urlsplit(ecdi.statement.endpoint).path + (f"?{elsewhere['query']}" if elsewhere.get("query") else "")
    return ecdi.post(soap.send_request_body(text, user, password), headers=headers, path=path).reply_text
