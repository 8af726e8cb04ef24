"""Amendments, cancellations (DOC-04, RPL-04), tax notices (33) and payment documents (PAY-01..07),
from a plain client: requests + our own signing, never the reference DTS."""

from __future__ import annotations

import pytest
from lxml import etree

from conformance.codec.namespaces import DEC, PAY
from mock_server import Account, GatewayConfig, run_in_thread
from test_gateway import (  # noqa: F401 — fixtures: this module's own gateway, the shared client fixtures
    PASSWORD,
    TIME_SCALE,
    USER,
    case,
    client,
    control,
    ask,
    parse_reply,
    pki,
    submit,
    verify_reply,
)

CHECKER = "lethic"                  # a second user of the same company (maker/checker)
CENTRAL = "00HQ"


@pytest.fixture(scope="module")
def gateway(pki, tmp_path_factory):
    folder = tmp_path_factory.mktemp("gateway-flows")
    running = run_in_thread(GatewayConfig(
        profiles=["ecdi-1.0"], pki_folder=pki.folder, evidence_db=folder / "evidence.sqlite3", time_scale=TIME_SCALE,
        accounts=[Account(USER, PASSWORD, [pki.tax_code]), Account(CHECKER, PASSWORD, [pki.tax_code])],
        registered_certs={pki.tax_code: [pki.declarant.cert]},
    ))
    yield running
    running.stop()


def content(xml: str) -> etree._Element:
    return etree.fromstring(xml)


def cancellation(number: str) -> etree._Element:
    return content(f'<Cancellation xmlns="{DEC}"><declarationNumber>{number}</declarationNumber>'
                   "<reasonCode>02</reasonCode><reason>Khai trùng</reason></Cancellation>")


def amendment(number: str, type_code: str = "A11") -> etree._Element:
    from test_gateway import declaration

    decl = declaration()
    decl.find(f"{{{DEC}}}typeCode").text = type_code
    amend = content(f'<Amendment xmlns="{DEC}"><declarationNumber>{number}</declarationNumber>'
                    "<reason>Sửa trị giá</reason></Amendment>")
    amend.append(decl)
    return amend


def declared(client, control) -> tuple[str, str]:
    """A declaration with its number (its 30 fetched): (messageId, declarationNumber)."""
    submission_id, _ = submit(client)
    _, header, result = ask(client, control, submission_id, 1)
    assert header.function == "30"
    return submission_id, result.declaration_number


def send(client, user=USER, **kwargs):
    return parse_reply(client.send(client.message(**kwargs), user=user)[1])


# ------------------------------------------------------------------------------------------
# amendments and cancellations


def test_amendment_is_receipted_with_the_declaration_number_then_accepted(client, control, case):
    _, number = declared(client, control)
    header, result = send(client, function="5", content=amendment(number))
    assert (header.function, result.sequence, result.declaration_number) == ("29", 1, number)
    _, later, accepted = ask(client, control, header["Subject/reference"], 1)
    assert (later.function, accepted.sequence, accepted.declaration_number) == ("32", 2, number)


def test_accepted_cancellation_completes_the_declaration_history(client, control, case):
    declaration_id, number = declared(client, control)
    header, _ = send(client, function="1", content=cancellation(number))
    assert ask(client, control, header["Subject/reference"], 1)[1].function == "32"
    assert ask(client, control, declaration_id, 2)[1].function == "12"          # nothing appended (RPL-04)
    assert ask(client, control, declaration_id, 2)[1].function == "12"
    header, result = send(client, function="5", content=amendment(number))
    assert (header.function, result.result_code) == ("272", "E0075")


def test_amending_a_cleared_declaration_is_E0075(client, control, case):
    declaration_id, number = declared(client, control)
    for after in (2, 3, 4):
        ask(client, control, declaration_id, after)                           # 10, 32, 35
    header, result = send(client, function="1", content=cancellation(number))
    assert (header.function, result.result_code, result.errors[0].field) == (
        "272", "E0075", "/Envelope/Body/Content/Cancellation/declarationNumber")


@pytest.mark.parametrize("type_, number", [("929", "109999999999"), ("930", None)])
def test_a_declaration_number_not_of_this_declarant_and_type_is_S0005(client, control, case, type_, number):
    if number is None:
        number = declared(client, control)[1]                                # a 929 cancelled as a 930
    header, result = send(client, type_=type_, function="1", content=cancellation(number))
    assert (header.function, result.result_code) == ("272", "S0005")


def test_an_amendment_must_keep_the_type_code(client, control, case):
    _, number = declared(client, control)
    _, result = send(client, function="5", content=amendment(number, "G11"))
    assert result.result_code == "S0005" and result.errors[0].field.endswith("Amendment/Declaration/typeCode")


def test_a_tax_notice_33_carries_the_taxes(client, control, case):
    control.begin_case(case, {"name": "taxes", "history": [
        {"function": "30"}, {"function": "33", "taxes": [{"tax_type": "XNK", "amount_vnd": "100"},
                                                         {"tax_type": "VAT", "amount_vnd": "23"}]}]})
    submission_id, _ = submit(client)
    ask(client, control, submission_id, 1)
    _, header, result = ask(client, control, submission_id, 2)
    assert header.function == "33" and result.taxes_total_vnd == "123"
    assert [(t.tax_type, t.amount_vnd) for t in result.taxes] == [("XNK", "100"), ("VAT", "23")]


# ------------------------------------------------------------------------------------------
# payments


def order_content(tax_code: str, number: str, *, maker=USER, description=None, total=None) -> etree._Element:
    lines = (("XNK", "12500000"), ("VAT", "27500000"))
    rendered = f"ECDI+MST:{tax_code}" + "".join(f"+TK:{number}/{t}/{a}" for t, a in lines) + "+GC:Nộp thuế tháng 3"
    return content(
        f'<PaymentOrder xmlns="{PAY}"><maker>{maker}</maker><bankCode>01201001</bankCode>'
        "<accountNumber>123456789</accountNumber>"
        + "".join(f"<TaxLine><declarationNumber>{number}</declarationNumber><taxType>{t}</taxType>"
                  f"<amountVND>{a}</amountVND></TaxLine>" for t, a in lines)
        + f"<totalVND>{total or 40000000}</totalVND><description>{description or rendered}</description></PaymentOrder>")


def approval(order_id: str, otp: str, checker=CHECKER) -> etree._Element:
    return content(f'<PaymentApproval xmlns="{PAY}"><paymentOrderId>{order_id}</paymentOrderId>'
                   f"<checker>{checker}</checker><otp>{otp}</otp></PaymentApproval>")


def new_otp(order_id: str) -> etree._Element:
    return content(f'<OtpRequest xmlns="{PAY}"><paymentOrderId>{order_id}</paymentOrderId></OtpRequest>')


def ordered(client, control, pki) -> str:
    """A payment order awaiting approval; returns its paymentOrderId."""
    _, number = declared(client, control)
    header, result = send(client, type_="701", office=CENTRAL, content=order_content(pki.tax_code, number))
    assert header.function == "29", result.errors
    return result.payment_order_id


def approve(client, order_id, otp, checker=CHECKER):
    return send(client, user=checker, type_="702", office=CENTRAL, content=approval(order_id, otp, checker))


def test_order_gets_29_with_order_id_and_otp_data_and_the_otp_only_by_mail(client, control, case, pki):
    _, number = declared(client, control)
    text = client.message(type_="701", office=CENTRAL, content=order_content(pki.tax_code, number))
    _, reply = client.send(text)
    verify_reply(reply, pki)
    header, result = parse_reply(reply)
    assert header.function == "29" and result.reception_number
    assert result.payment_order_id.startswith("PO") and result.otp_sender == "thanhtoan@test.customs.example"
    (mail,) = control.mailbox(payment_order_id=result.payment_order_id)
    assert mail["sender"] == result.otp_sender and mail["expires_at"] == result.otp_expires_at
    assert mail["otp"] in mail["body"] and mail["otp"].encode() not in reply
    assert result.payment_order_id in mail["body"] and "40000000" in mail["body"]


def test_approval_by_another_user_with_the_right_otp_is_32(client, control, case, pki):
    order_id = ordered(client, control, pki)
    header, result = approve(client, order_id, control.latest_otp(order_id))
    assert (header.function, result.sequence, result.payment_order_id) == ("32", 1, order_id)
    header, result = send(client, type_="702", function="16", reference=order_id, office=CENTRAL,
                          content=new_otp(order_id))
    assert (header.function, result.result_code) == ("272", "P0004")           # no longer awaiting approval


def test_maker_as_checker_is_P0003(client, control, case, pki):
    order_id = ordered(client, control, pki)
    header, result = approve(client, order_id, control.latest_otp(order_id), checker=USER)
    assert (header.function, result.result_code, result.payment_order_id) == ("273", "P0003", order_id)


def test_wrong_otp_is_P0002_and_the_fifth_wrong_invalidates_it(client, control, case, pki):
    order_id = ordered(client, control, pki)
    otp = control.latest_otp(order_id)
    wrong = f"{(int(otp) + 1) % 1_000_000:06d}"
    codes = [approve(client, order_id, wrong)[1].result_code for _ in range(5)]
    assert codes == ["P0002"] * 5
    assert approve(client, order_id, otp)[1].result_code == "P0001"


def test_expired_otp_is_P0001_and_a_new_otp_can_be_requested(client, control, case, pki):
    order_id = ordered(client, control, pki)
    otp = control.latest_otp(order_id)
    control.advance_clock(120 * TIME_SCALE + 0.1)                              # past T_otp (scaled)
    assert approve(client, order_id, otp)[1].result_code == "P0001"
    header, result = send(client, type_="702", function="16", reference=order_id, office=CENTRAL,
                          content=new_otp(order_id))
    assert (header.function, result.payment_order_id) == ("29", order_id) and result.otp_expires_at
    fresh = control.latest_otp(order_id)
    assert len(control.mailbox(payment_order_id=order_id)) == 2
    assert approve(client, order_id, fresh)[0].function == "32"


def test_expire_otp_scenario_action(client, control, case, pki):
    order_id = ordered(client, control, pki)
    control.begin_case(case, {"name": "expired-otp", "rules": [{"when": {"type": "702", "function": "8"},
                                                                 "then": {"action": "expire_otp"}, "times": 1}]})
    assert approve(client, order_id, control.latest_otp(order_id))[1].result_code == "P0001"
    assert control.exchanges(case)[-1].gateway_verdict["fault"]["expired"] is True


@pytest.mark.parametrize("kwargs, field", [
    ({"description": "ECDI+MST:0312345678"}, "/Envelope/Body/Content/PaymentOrder/description"),
    ({"maker": CHECKER}, "/Envelope/Body/Content/PaymentOrder/maker"),
    ({"total": 1}, "/Envelope/Body/Content/PaymentOrder/totalVND"),
])
def test_order_rule_checks_are_S0005(client, control, case, pki, kwargs, field):
    _, number = declared(client, control)
    header, result = send(client, type_="701", office=CENTRAL, content=order_content(pki.tax_code, number, **kwargs))
    assert (header.function, result.result_code) == ("272", "S0005")
    assert field in [e.field for e in result.errors]


def test_payment_to_another_office_is_S0005(client, control, case, pki):
    _, number = declared(client, control)
    _, result = send(client, type_="701", content=order_content(pki.tax_code, number))
    assert (result.result_code, result.errors[0].field) == ("S0005", "/Envelope/Header/To/identity")


def test_a_payment_order_can_be_queried(client, control, case, pki):
    _, number = declared(client, control)
    header, result = send(client, type_="701", office=CENTRAL, content=order_content(pki.tax_code, number))
    control.advance_clock(0.05)
    _, reply = client.send(client.query(header["Subject/reference"], 0, type_="701"))
    queried, entry1 = parse_reply(reply)
    assert (queried.function, entry1.sequence, entry1.payment_order_id) == ("29", 1, result.payment_order_id)
