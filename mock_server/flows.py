"""Amendments, cancellations and payment documents: their Table 7-3 checks (steps 16-18) and what
recording them does (step 19). Declarations and queries are in ``pipeline``; this module holds the
flows whose state lives outside one submission (DOC-04, RPL-04, PAY-01..07).

Step functions have the pipeline's signature ``(gateway, exchange) -> outcome | None``; the
pipeline lists them in ``CHECKS``.
"""

from __future__ import annotations

import re
from collections import Counter

from lxml import etree

from conformance.codec.envelope import ErrorEntry, content_child, ecdi_path
from conformance.codec.namespaces import DEC, PAY, q
from conformance.codec.safexml import parse_message_text

from .payments import format_precise

_NOTE = re.compile(r"[\x20-\x2a\x2c-\x7e\u00a0-\U0010ffff]{1,100}")      # PAY-01 notechar, no "+"
_CONTENT = "/Envelope/Body/Content"


def _kind(ex) -> str:
    h = ex.header
    return f"{h['Subject/type']}/{h['Subject/function']}"


def _s0005(gw, path: str, description: str) -> ErrorEntry:
    return ErrorEntry("S0005", path, description)


# ------------------------------------------------------------------------------------------
# Step 16: Rule-column checks (S0005), all found


def field_errors(gw, ex) -> list[ErrorEntry]:
    kind, child = _kind(ex), content_child(ex.root)
    if kind in ("929/5", "930/5", "929/1", "930/1"):
        return _change_errors(gw, ex, child)
    if kind == "701/8":
        return _order_errors(gw, ex, child)
    if kind == "702/8":
        checker = child.find(q(PAY, "checker"))
        if checker.text != ex.call.user_id:
            return [_s0005(gw, f"{_CONTENT}/PaymentApproval/checker", "Người duyệt phải là người dùng gửi yêu cầu (PAY-02)")]
    return []


def _change_errors(gw, ex, child) -> list[ErrorEntry]:
    """DOC-04: the declaration number designates a declaration of the same From/identity and type;
    an amendment keeps the declaration's typeCode (Table 6-2)."""
    number_el = child.find(q(DEC, "declarationNumber"))
    target = gw.store.declaration(number_el.text)
    h = ex.header
    if target is None or target.from_identity != h["From/identity"] or target.type != h["Subject/type"]:
        return [_s0005(gw, ecdi_path(number_el, ex.profile.repeatable),
                       "Số tờ khai không tồn tại hoặc không thuộc người khai này")]
    amended = child.find(q(DEC, "Declaration"))
    if amended is not None:
        original = parse_message_text(target.request_text).find(f".//{q(DEC, 'typeCode')}")
        type_code = amended.find(q(DEC, "typeCode"))
        if original is not None and type_code.text != original.text:
            return [_s0005(gw, ecdi_path(type_code, ex.profile.repeatable),
                           f"Không được thay đổi mã loại hình của tờ khai ({original.text})")]
    return []


def _order_errors(gw, ex, order) -> list[ErrorEntry]:
    """Table 6-4 and PAY-01/PAY-02 for a PaymentOrder."""
    rep, found = ex.profile.repeatable, []
    base = f"{_CONTENT}/PaymentOrder"
    skipped = gw.behaviour.skipped_checks
    if order.findtext(q(PAY, "maker")) != ex.call.user_id and "maker_is_user" not in skipped:
        found.append(_s0005(gw, f"{base}/maker", "Người lập phải là người dùng gửi yêu cầu (PAY-02)"))
    if order.findtext(q(PAY, "bankCode")) not in ex.profile.codes.get("bank", {}):
        found.append(_s0005(gw, f"{base}/bankCode", "Mã ngân hàng không có trong danh sách của Ngân hàng Nhà nước"))
    lines = order.findall(q(PAY, "TaxLine"))
    pairs = Counter((ln.findtext(q(PAY, "declarationNumber")), ln.findtext(q(PAY, "taxType"))) for ln in lines)
    for line in lines:
        number = line.find(q(PAY, "declarationNumber"))
        declaration = gw.store.declaration(number.text)
        if declaration is None or declaration.from_identity != ex.header["From/identity"]:
            found.append(_s0005(gw, ecdi_path(number, rep), "Số tờ khai không thuộc người nộp thuế này"))
        if pairs[(number.text, line.findtext(q(PAY, "taxType")))] > 1:
            found.append(_s0005(gw, ecdi_path(line.find(q(PAY, "taxType")), rep),
                                "Cặp số tờ khai và sắc thuế bị lặp trong lệnh nộp"))
    total = sum(int(ln.findtext(q(PAY, "amountVND"))) for ln in lines)
    if int(order.findtext(q(PAY, "totalVND"))) != total:
        found.append(_s0005(gw, f"{base}/totalVND", f"Tổng số tiền không bằng tổng các dòng thuế ({total})"))
    if (not _canonical_description(order.findtext(q(PAY, "description")), ex.header["From/identity"], lines)
            and "payment_description" not in skipped):
        found.append(_s0005(gw, f"{base}/description", "Nội dung nộp tiền không đúng cú pháp ECDI (PAY-01)"))
    return found


def _canonical_description(text: str, tax_code: str, lines) -> bool:
    """PAY-01: exactly the canonical rendering of the order, with an optional ``+GC:`` note."""
    canonical = f"ECDI+MST:{tax_code}" + "".join(
        f"+TK:{ln.findtext(q(PAY, 'declarationNumber'))}/{ln.findtext(q(PAY, 'taxType'))}/{ln.findtext(q(PAY, 'amountVND'))}"
        for ln in lines)
    if text == canonical:
        return True
    return text.startswith(canonical + "+GC:") and bool(_NOTE.fullmatch(text[len(canonical) + 4:]))


# ------------------------------------------------------------------------------------------
# Steps 17 and 18


def step_state(gw, ex):
    """17. State of the referenced declaration (DOC-04: E0075) or order (PAY-05/06: P0004)."""
    from .pipeline import Answer, error

    kind, child = _kind(ex), content_child(ex.root)
    if kind in ("929/5", "930/5", "929/1", "930/1"):
        number_el = child.find(q(DEC, "declarationNumber"))
        if not history_open(gw, number_el.text):
            return Answer("272", (error(gw, "E0075", ecdi_path(number_el, ex.profile.repeatable)),))
    if kind in ("702/8", "702/16"):
        order = gw.payments.order(child.findtext(q(PAY, "paymentOrderId")))
        ex.order = order
        if order is None or order.from_identity != ex.header["From/identity"] or order.state != "awaiting":
            path = f"{_CONTENT}/{etree.QName(child).localname}/paymentOrderId"
            return Answer("272", (error(gw, "P0004", path),))
    return None


def history_open(gw, number: str) -> bool:
    """DOC-04: the declaration's history holds no final reply and no accepted cancellation."""
    declaration = gw.store.declaration(number)
    final = {"35", "272", "273"}
    return (declaration is not None and not any(e.function in final for e in gw.store.entries(declaration.message_id))
            and not gw.store.cancellation_accepted(number))


def step_approval(gw, ex):
    """18. PAY-06/07 for a 702/8: maker = checker (P0003, per profile and deployment), OTP current
    (P0001), OTP value (P0002). Answers are 273s, recorded with the order id."""
    from .pipeline import Answer, error

    if _kind(ex) != "702/8":
        return None
    order, child = ex.order, content_child(ex.root)
    base = f"{_CONTENT}/PaymentApproval"
    ex.reply_fields = {"payment_order_id": order.order_id}
    refuses = (ex.profile.params.get("MC_required") == "mandatory"
               or bool(ex.profile.deployment.get("refuses_maker_as_checker"))) and not gw.behaviour.maker_may_approve
    if refuses and child.findtext(q(PAY, "checker")) == order.maker:
        return Answer("273", (error(gw, "P0003", f"{base}/checker"),))
    code = gw.payments.check_otp(order, child.findtext(q(PAY, "otp")), ex.now.timestamp(),
                                 gw.behaviour.otp_attempt_limit or int(ex.profile.params["N_otp_attempts"]))
    if code:
        return Answer("273", (error(gw, code, f"{base}/otp"),))
    return None


# ------------------------------------------------------------------------------------------
# Step 19: what recording does


def on_record(gw, ex, function: str) -> dict:
    """Side effects of recording entry 1 and the extra Result fields it carries (Table 7-1).
    Runs inside the store transaction that records the submission."""
    kind, child = _kind(ex), content_child(ex.root)
    if kind in ("929/5", "930/5", "929/1", "930/1"):          # Table 7-1: in every entry of these
        return {"declaration_number": child.findtext(q(DEC, "declarationNumber"))}
    if function == "29" and kind == "701/8":
        order_id = gw.payments.create(message_id=ex.header.message_id, from_identity=ex.header["From/identity"],
                                      maker=ex.call.user_id, total_vnd=child.findtext(q(PAY, "totalVND")),
                                      next_number=gw.store.next_number("payment-order"))
        return _issue(gw, ex, order_id)
    if function == "29" and kind == "702/16":
        return _issue(gw, ex, ex.order.order_id) if gw.behaviour.issues_new_otp else {"payment_order_id": ex.order.order_id}
    if function == "32" and kind == "702/8":
        gw.payments.approve(ex.order.order_id)
        return {"payment_order_id": ex.order.order_id}
    return dict(getattr(ex, "reply_fields", None) or {})


def _issue(gw, ex, order_id: str) -> dict:
    """PAY-04: a new OTP valid T_otp (the message's profile, scaled), e-mailed, never in the reply."""
    otp = gw.payments.issue_otp(order_id, ex.now.timestamp(), otp_validity(gw, ex.profile))
    sender = ex.profile.deployment["otp_sender"]
    expires = format_precise(otp.expires_at)
    order = gw.payments.order(order_id)
    tax_code = ex.header["From/identity"]
    ex.mail = dict(sent_at=format_precise(ex.now.timestamp()), sender=sender, to=tuple(gw.approval_emails(tax_code)),
                   subject=f"Mã OTP phê duyệt lệnh nộp thuế {order_id}",
                   body=(f"Lệnh nộp thuế {order_id}, tổng số tiền {order.total_vnd} VND.\n"
                         f"Mã OTP: {otp.value}\nCó hiệu lực đến {expires}."),
                   tax_code=tax_code, payment_order_id=order_id, otp=otp.value, expires_at=expires)
    if not gw.behaviour.otp_data_in_reply:
        return {"payment_order_id": order_id}
    return {"payment_order_id": order_id, "otp_sender": sender, "otp_expires_at": expires}


def otp_validity(gw, profile) -> float:
    """T_otp in seconds on the gateway clock: the profile's, scaled (§2.1), unless its behaviour sets another."""
    seconds = gw.behaviour.otp_validity_s
    return profile.timer("T_otp", gw.time_scale) if seconds is None else seconds * gw.time_scale


def after_reveal(gw, sub, function: str) -> None:
    """RPL-04: a 32 to a cancellation is final for the cancelled declaration's history too."""
    if sub.function == "1" and function == "32" and sub.declaration_number and gw.behaviour.cancellation_closes_history:
        declaration = gw.store.declaration(sub.declaration_number)
        if declaration is not None:
            gw.store.close_history(declaration.message_id)
