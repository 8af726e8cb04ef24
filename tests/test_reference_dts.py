"""Unit tests of the reference DTS (conformance/reference_dts).

Pure parts run with an injected clock and RNG; the DTS's send flow runs against a small in-process
fake gateway that answers with replies signed by the test PKI's gateway certificate (so SIG-15 and
SEC-04 are exercised for real); the transport runs against a loopback TLS server spun up here. The
full end-to-end behaviour against the mock gateway is the conformance cases' job; one smoke test
at the end checks that the two meet on the wire.
"""

from __future__ import annotations

import json
import random
import socket
import ssl
import threading
import time
import unicodedata
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from email.utils import format_datetime as http_date
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import SimpleNamespace

import pytest
from lxml import etree

from conformance.codec import soap, xmlsig
from conformance.codec.envelope import (ErrorEntry, Header, Result, build_envelope, format_datetime,
                                        new_message_id, read_header)
from conformance.codec.namespaces import DEC, ENV, q
from conformance.codec.safexml import parse_message_text
from conformance.profile import load_profile
from conformance.reference_dts import MUTANTS, DtsConfig, ReferenceDTS, build_dts, reference_statement
from conformance.reference_dts.config import Timings
from conformance.reference_dts.documents import prepare_content
from conformance.reference_dts.journal import EXTRA_MEMBERS, NOTIFICATION_MEMBERS, TABLE_12_1
from conformance.reference_dts.replies import Expectation, correlation_problem
from conformance.reference_dts.sender import backoff_wait
from conformance.reference_dts.store import HistoryEntry, Store, Submission
from conformance.reference_dts.transport import (FINAL, REPLY, RETRYABLE, TLS_FAILURE, AttemptOutcome, Transport,
                                                 classify_exception, classify_response, endpoint_problem,
                                                 parse_retry_after)

TAX = "0312345678"
OFFICE = "03TG"
PASSWORD = "Mật-khẩu_bí mật 123"   # must never appear in any DTS file (SEC-01)
VIET = "Người dùng không được phép khai cho mã số thuế này"


# ------------------------------------------------------------------------------------------------
# Test doubles: profile, clock, RNG


PROFILE = load_profile("ecdi-1.0")


class FakeClock:
    """Wall clock and monotonic clock that advance only when the DTS sleeps (or a test says so)."""

    def __init__(self, start: datetime | None = None):
        # "now" by default: the test PKI's certificates are valid from one day before generation
        start = start or datetime.now(timezone.utc).replace(microsecond=0)
        self.start, self.offset, self.sleeps = start, 0.0, []

    def now(self):
        return self.start + timedelta(seconds=self.offset)

    def monotonic(self):
        return self.offset

    def sleep(self, seconds):
        self.sleeps.append(seconds)
        if seconds > 0:
            self.offset += seconds


class NoJitter(random.Random):
    def uniform(self, a, b):
        return a


def timings(scale=1.0, **pixit) -> Timings:
    """The effective timings of the reference statement with some PIXIT values changed."""
    config = SimpleNamespace(effective_scale=scale, pixit={**reference_statement()["pixit"], **pixit}, profile=PROFILE)
    return Timings.from_config(config)


# ------------------------------------------------------------------------------------------------
# REL-06 backoff


@pytest.mark.parametrize("scale", [1.0, 0.1])
def test_backoff_schedule_is_2_4_8_16_32_times_scale(scale):
    t = timings(scale)
    waits = [backoff_wait(k, t, NoJitter()) for k in range(1, 6)]
    assert waits == pytest.approx([w * scale for w in (2, 4, 8, 16, 32)])


def test_backoff_is_capped_by_backoff_max_and_honours_retry_after_and_e9002():
    t = timings()
    assert backoff_wait(7, t, NoJitter()) == 60                           # min(60, 2·2^6)
    assert backoff_wait(1, t, NoJitter(), retry_after=17) == 17            # at least Retry-After (not scaled)
    assert backoff_wait(1, timings(0.1), NoJitter(), retry_after=17) == 17
    assert backoff_wait(1, t, NoJitter(), after_e9002=True) == 4           # at least T_poll_min after E9002


def test_backoff_never_below_the_profile_minimum():
    t = timings(backoff_base_s=1, backoff_max_s=10)                       # a statement below the floor
    assert [backoff_wait(k, t, NoJitter()) for k in range(1, 7)] == [2, 4, 8, 16, 32, 60]


def test_backoff_jitter_is_at_most_ten_percent_and_seedable():
    t = timings()
    first = [backoff_wait(k, t, random.Random(7)) for k in range(1, 6)]
    assert first == [backoff_wait(k, t, random.Random(7)) for k in range(1, 6)]
    for k, wait in enumerate(first, start=1):
        assert 2 ** k <= wait <= 2 ** k * 1.10


# ------------------------------------------------------------------------------------------------
# REL-03 / REL-04 classification


NOW = datetime(2025, 3, 14, 2, 15, 2, tzinfo=timezone.utc)


def _fault(code):
    return soap.fault_body(code, "lỗi")


@pytest.mark.parametrize("status,body,headers,category,cause", [
    (200, soap.send_response_body(b"<Envelope/>"), {}, REPLY, "reply"),
    (200, b"<html>not soap</html>", {}, RETRYABLE, "not-send-response"),
    (200, _fault("soap:Server"), {}, RETRYABLE, "not-send-response"),
    (301, b"", {"Location": "https://elsewhere/"}, FINAL, "redirect"),
    (302, b"", {}, FINAL, "redirect"),
    (307, b"", {}, FINAL, "redirect"),
    (400, b"", {}, FINAL, "http-400"),
    (404, b"", {}, FINAL, "http-404"),
    (413, b"", {}, FINAL, "http-413"),
    (429, b"", {"Retry-After": "3"}, RETRYABLE, "http-429"),
    (500, _fault("soap:Client"), {}, FINAL, "soap-client-fault"),
    (500, _fault("SOAP-ENV:Client.Authentication"), {}, FINAL, "soap-client-fault"),
    (500, _fault("soap:Server"), {}, RETRYABLE, "soap-server-fault"),
    (500, b"Internal Server Error", {}, RETRYABLE, "http-500"),
    (502, b"", {}, RETRYABLE, "http-502"),
    (503, b"", {"Retry-After": "120"}, RETRYABLE, "http-503"),
    (504, b"", {}, RETRYABLE, "http-504"),
    (507, b"", {}, RETRYABLE, "http-507"),
])
def test_response_classification(status, body, headers, category, cause):
    outcome = classify_response(status, headers, body, NOW)
    assert (outcome.category, outcome.cause) == (category, cause)


def test_retry_after_is_read_from_503_and_429():
    assert classify_response(503, {"Retry-After": "120"}, b"", NOW).retry_after == 120
    later = http_date(NOW + timedelta(seconds=30), usegmt=True)
    assert classify_response(429, {"Retry-After": later}, b"", NOW).retry_after == pytest.approx(30)


@pytest.mark.parametrize("value,expected", [
    ("0", 0), ("45", 45), (" 7 ", 7), (http_date(NOW + timedelta(seconds=90), usegmt=True), 90),
    (http_date(NOW - timedelta(seconds=90), usegmt=True), 0), ("soon", None), ("-5", None), (None, None),
])
def test_parse_retry_after(value, expected):
    assert parse_retry_after(value, NOW) == (pytest.approx(expected) if expected is not None else None)


def test_exception_classification():
    import requests
    import urllib3

    verify = requests.exceptions.SSLError(urllib3.exceptions.MaxRetryError(
        None, "/", urllib3.exceptions.SSLError(ssl.SSLCertVerificationError(1, "certificate verify failed"))))
    assert classify_exception(verify, timed_out=False).category == TLS_FAILURE
    assert classify_exception(verify, timed_out=True).category == TLS_FAILURE   # verification failure wins
    refused = requests.exceptions.ConnectionError(urllib3.exceptions.MaxRetryError(
        None, "/", urllib3.exceptions.NewConnectionError(None, "refused")))
    assert classify_exception(refused, timed_out=False).cause == "connect"
    assert classify_exception(requests.exceptions.ReadTimeout("t"), timed_out=False).cause == "timeout"
    assert classify_exception(ConnectionResetError(), timed_out=True).cause == "timeout"
    assert classify_exception(ConnectionResetError(), timed_out=False).category == RETRYABLE
    alert = requests.exceptions.SSLError(ssl.SSLError(1, "[SSL: TLSV1_ALERT_PROTOCOL_VERSION] alert"))
    assert (classify_exception(alert, timed_out=False).category, classify_exception(alert, timed_out=False).cause) \
        == (FINAL, "tls-negotiation")
    broken = requests.exceptions.SSLError(ssl.SSLEOFError(8, "EOF occurred in violation of protocol"))
    assert classify_exception(broken, timed_out=False).category == RETRYABLE


def test_only_https_endpoints_are_accepted():
    assert endpoint_problem("http://127.0.0.1/ecdi/CISService")
    assert endpoint_problem("ftp://x/ecdi/CISService")
    assert endpoint_problem("https:///ecdi/CISService")
    assert endpoint_problem("https://127.0.0.1:8443/ecdi/CISService") is None


# ------------------------------------------------------------------------------------------------
# SEC-04 correlation


EXPECT = Expectation(reference="3f2b8c1e-7a4d-4e2f-9b1a-5c6d7e8f9a0b", to_identity=TAX, type="929", version="1.0")


def _reply_header(**over):
    fields = {"Subject/reference": EXPECT.reference, "To/identity": TAX, "Subject/type": "929",
              "Reference/version": "1.0", "Subject/function": "29"}
    fields.update(over)
    return Header(fields)


@pytest.mark.parametrize("field_path,value", [
    ("Subject/reference", "00000000-0000-4000-8000-000000000000"),
    ("Subject/reference", ""),
    ("To/identity", "0399999999"),
    ("Subject/type", "930"),
    ("Reference/version", "1.1"),
])
def test_correlation_refuses_forged_or_misrouted_replies(field_path, value):
    assert correlation_problem(_reply_header(**{field_path: value}), EXPECT)


def test_correlation_accepts_the_right_reply_and_271_placeholders():
    assert correlation_problem(_reply_header(), EXPECT) is None
    placeholder_271 = _reply_header(**{"Subject/function": "271", "Subject/reference": "", "To/identity": "0000000000",
                                       "Subject/type": "000", "Reference/version": "1.1"})
    assert correlation_problem(placeholder_271, EXPECT, version_placeholders=frozenset({"1.1"})) is None
    # ...but a 271 with a real, wrong value is still refused
    assert correlation_problem(_reply_header(**{"Subject/function": "271", "To/identity": "0399999999"}), EXPECT)


# ------------------------------------------------------------------------------------------------
# RPL-09 / RPL-10 submission state


def _entry(seq, function, **result):
    return HistoryEntry(seq, function, new_message_id(), Result(sequence=seq, **result))


def _submission(**over):
    base = dict(message_id=new_message_id(), type="929", function="8", business_ref="HD-1", version="1.0",
                from_identity=TAX, to_identity=OFFICE, to_name="Chi cục", created="2025-03-14T09:15:02+07:00",
                final_functions=sorted(PROFILE.reply_flows[("929", "8")].final))
    base.update(over)
    return Submission(**base)


def test_history_is_ordered_by_sequence_with_watermark_and_merge():
    sub = _submission()
    assert sub.add_entry(_entry(1, "29", reception_number="3000123456"))
    assert sub.watermark == 1
    assert sub.add_entry(_entry(3, "10", channel="2"))                     # 3 arrives before 2
    assert (sub.watermark, sub.status_function) == (1, "10")
    assert sub.add_entry(_entry(2, "30", declaration_number="105123456789"))
    assert (sub.watermark, sub.status_function) == (3, "10")             # late lower entry: status stays 10
    assert (sub.merged.declaration_number, sub.merged.channel, sub.merged.reception_number) == \
        ("105123456789", "2", "3000123456")
    assert not sub.add_entry(_entry(2, "30", declaration_number="999999999999"))   # never replaced
    assert sub.merged.declaration_number == "105123456789"
    assert not sub.complete
    sub.add_entry(_entry(5, "35", cleared_at="2025-03-14T10:00:00+07:00"))
    assert not sub.complete                                               # 4 still missing
    sub.add_entry(_entry(4, "32"))
    assert sub.complete and sub.status_function == "35"


def test_unknown_function_is_recorded_and_not_final():
    sub = _submission()
    sub.add_entry(_entry(1, "29"))
    sub.add_entry(_entry(2, "77"))
    assert sub.status_function == "77" and not sub.complete


def test_store_is_durable_and_installation_id_stable(tmp_path):
    store = Store(tmp_path)
    iid = store.installation_id()
    sub = _submission()
    sub.add_entry(_entry(1, "33", taxes=[], taxes_total_vnd="10"))
    store.create(sub, b"<Envelope/>")
    store.mark_processed("r1")
    again = Store(tmp_path)
    assert again.installation_id() == iid
    assert again.load(sub.message_id).to_json() == sub.to_json()
    assert again.message_text(sub.message_id) == b"<Envelope/>"
    assert again.processed("r1") and not again.processed("r2")
    with pytest.raises(KeyError):
        again.load("../../etc")


# ------------------------------------------------------------------------------------------------
# TXT-03, TXT-05, DOC-02, DOC-03


def declaration(n_items=2, *, description="Máy tính xách tay, mới 100%", values=("8500", "800.25")) -> etree._Element:
    d = etree.Element(q(DEC, "Declaration"), nsmap={None: DEC})

    def sub(parent, name, text=None):
        el = etree.SubElement(parent, q(DEC, name))
        el.text = text
        return el

    sub(d, "typeCode", "A11")
    trader = sub(d, "Trader")
    sub(trader, "taxCode", TAX)
    sub(trader, "name", "Công ty TNHH Thương mại Hải Đăng")
    sub(trader, "address", "12 Nguyễn Huệ, Quận 1, TP. Hồ Chí Minh")
    partner = sub(d, "Partner")
    sub(partner, "name", "Shenzhen Example Electronics Co., Ltd.")
    sub(partner, "countryCode", "CN")
    sub(d, "transportMode", "1")
    sub(d, "packageCount", "12")
    sub(d, "grossMassKg", "386.5")
    inv = sub(d, "Invoice")
    sub(inv, "number", "INV-88231")
    sub(inv, "date", "2025-03-02")
    sub(inv, "currency", "USD")
    sub(inv, "totalValue", "1")
    for i in range(n_items):
        item = sub(d, "GoodsItem")
        sub(item, "lineNo", "99")
        sub(item, "hsCode", "84713020")
        sub(item, "description", description)
        sub(item, "originCountry", "CN")
        sub(item, "quantity", "20")
        sub(item, "unit", "H87")
        sub(item, "value", values[i % len(values)])
    return d


def test_content_is_nfc_lf_numbered_and_totalled():
    decomposed = unicodedata.normalize("NFD", "Bộ sạc Hải Đăng")
    doc = declaration(3, description=decomposed, values=("0.1", "0.2", "1234567890.0005"))
    doc.append(etree.Comment("ghi chú"))
    etree.SubElement(doc, q(DEC, "notes")).text = "dòng 1\r\ndòng 2"
    prepared = prepare_content(doc, n_goods_max=50)
    descriptions = [d.text for d in prepared.iter(q(DEC, "description"))]
    assert descriptions == [unicodedata.normalize("NFC", decomposed)] * 3
    assert all(unicodedata.is_normalized("NFC", t) for t in prepared.itertext())
    assert prepared.findtext(q(DEC, "notes")) == "dòng 1\ndòng 2"
    assert [el.text for el in prepared.iter(q(DEC, "lineNo"))] == ["1", "2", "3"]
    assert prepared.findtext(f"{q(DEC, 'Invoice')}/{q(DEC, 'totalValue')}") == "1234567890.3005"
    assert not list(prepared.iter(etree.Comment))
    assert doc.findtext(f"{q(DEC, 'Invoice')}/{q(DEC, 'totalValue')}") == "1"      # caller's tree untouched


# ------------------------------------------------------------------------------------------------
# A fake gateway for the DTS flow (replies signed by the PKI's gateway certificate)


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    from conformance.pki import TestPKI

    return TestPKI.ensure(tmp_path_factory.mktemp("dts-pki"))


def sign_reply(pki, request: Header, *, function: str, sequence: int, reference: str | None = None,
               message_id: str | None = None, to_identity: str | None = None, created: datetime | None = None,
               **result) -> bytes:
    fields = {
        "procedureType": request["procedureType"], "Reference/version": request.version,
        "Reference/messageId": message_id or new_message_id(),
        "SendApplication/name": "ECDI-CGW-TEST", "SendApplication/version": "1.0",
        "SendApplication/companyName": "Cổng thông tin hải quan (thử)", "SendApplication/companyIdentity": "0100000000",
        "SendApplication/createMessageIssue": format_datetime(created or datetime.now(timezone.utc)),
        "From/name": request["To/name"], "From/identity": request["To/identity"],
        "To/name": request["From/name"], "To/identity": to_identity or request["From/identity"],
        "Subject/type": request.type, "Subject/function": function,
        "Subject/reference": request.reference if reference is None and request.function == "13"
        else reference if reference is not None else request.message_id,
        "Subject/sendApplication": "CGW", "Subject/receiveApplication": request["Subject/sendApplication"],
    }
    root = build_envelope(Header(fields), Result(sequence=sequence, **result).to_element())
    return xmlsig.sign_envelope(root, pki.gateway_signer.signer())


@dataclass
class Call:
    headers: dict
    body: bytes
    text: bytes
    header: Header
    root: etree._Element


@dataclass
class FakeGateway:
    """Stands in for ``Transport``: records every call and answers with ``respond(call)``."""

    respond: object
    calls: list[Call] = field(default_factory=list)

    def post(self, body, headers):
        call, _ = soap.parse_send_request(body)
        root = parse_message_text(call.message_text)
        record = Call(dict(headers), body, call.message_text, read_header(root), root)
        self.calls.append(record)
        answer = self.respond(record)
        if isinstance(answer, AttemptOutcome):
            return answer
        return AttemptOutcome(REPLY, "reply", "SendResponse received", 200, answer)

    def queries(self):
        return [c for c in self.calls if c.header.function == "13"]

    def lodgements(self):
        return [c for c in self.calls if c.header.function != "13"]


TIMEOUT = AttemptOutcome(RETRYABLE, "timeout", "no complete response within t_send (REL-01)")


def after_sequence(call: Call) -> int:
    return int(call.root.findtext(f".//{q(ENV, 'afterSequence')}"))


def make_config(pki, tmp_path, *, statement=None, time_scale=1.0, p12=None, endpoint="https://127.0.0.1:9/ecdi/CISService",
                crl_dir=None):
    return DtsConfig(
        endpoint=endpoint, tls_ca_pem=pki.tls_ca_pem, sign_anchor_pem=pki.sign_anchor_pem,
        ca_trust_list_pem=pki.trust_list_pem, p12=p12 or pki.declarant.p12, p12_password=pki.p12_password,
        user_id="nguyenvana", password=PASSWORD, profile=PROFILE, tax_code=TAX,
        declarant_name="Công ty TNHH Thương mại Hải Đăng", office=OFFICE, office_name=PROFILE.offices[OFFICE],
        statement=statement or reference_statement(), time_scale=time_scale, state_dir=tmp_path / "state",
        crl_dir=crl_dir)


def make_dts(pki, tmp_path, respond, *, mutant=None, rng=None, **config_kw):
    clock = FakeClock()
    dts = build_dts(make_config(pki, tmp_path, **config_kw), mutant, clock=clock, rng=rng or NoJitter())
    gateway = FakeGateway(respond)
    dts._sender_for_use().transport = gateway
    return dts, gateway, clock


def journal(dts) -> list[dict]:
    return [json.loads(line) for line in dts.journal_export().splitlines()]


def told(dts, kind=None) -> list[dict]:
    return [e for e in journal(dts) if e["event"] == "notification" and (kind is None or e["kind"] == kind)]


def test_full_flow_orders_history_by_sequence_and_polls_with_watermark(pki, tmp_path):
    """RPL-09's own test: entry 3 (10) before entry 2 (30); queries carry afterSequence 1, 1, then 3."""
    entries = {}

    def respond(call):
        if call.header.function != "13":
            return sign_reply(pki, call.header, function="29", sequence=1, reception_number="3000123456")
        n = len(gateway.queries())
        sub = call.header.reference
        plan = {1: ("10", 3, {"channel": "1", "declaration_number": "105123456789"}),
                2: ("30", 2, {"declaration_number": "105123456789"}),
                3: ("12", 0, {}),
                4: ("32", 4, {"declaration_number": "105123456789"}),
                5: ("35", 5, {"declaration_number": "105123456789", "cleared_at": "2025-03-14T10:00:00+07:00"})}
        function, seq, result = plan[n]
        if seq and seq in entries:
            return entries[seq]
        text = sign_reply(pki, call.header, function=function, sequence=seq, reference=sub, **result)
        if seq:
            entries[seq] = text
        return text

    dts, gateway, clock = make_dts(pki, tmp_path, respond)
    report = dts.lodge(declaration(), type="929", business_ref="HD-2025/0315")
    assert report.state == "cleared", report.notifications
    assert (report.status_function, report.declaration_number, report.channel, report.reception_number) == \
        ("35", "105123456789", "1", "3000123456")
    assert [after_sequence(c) for c in gateway.queries()] == [1, 1, 3, 3, 4]
    # REL-13: first query T_poll_min after the 29, then every poll_interval between starts
    starts = [e["time"] for e in journal(dts) if e["event"] == "attempt" and e["messageId"] != report.message_id]
    seconds = [datetime.fromisoformat(s).timestamp() - clock.start.timestamp() for s in starts]
    interval = reference_statement()["pixit"]["poll_interval_s"]
    assert seconds == pytest.approx([4 + k * interval for k in range(5)])
    # every query is a fresh message about the submission
    assert len({c.header.message_id for c in gateway.queries()}) == 5
    assert {c.header.reference for c in gateway.queries()} == {report.message_id}
    # 12 is never a failure (RPL-13); status 10 shown when entry 2 arrived late (RPL-09)
    assert not told(dts, "transport-error") and not told(dts, "customs-error")
    assert [n.code for n in report.notifications] == ["29", "10", "30", "32", "35"]


def test_header_is_table_4_1_from_config_and_statement(pki, tmp_path):
    dts, gateway, clock = make_dts(pki, tmp_path, lambda call: sign_reply(pki, call.header, function="272",
                                   sequence=1, errors=[ErrorEntry("S0005", "/x", "Sai")]))
    dts.lodge(declaration(), type="930", business_ref="B-1")
    first = gateway.calls[0]
    st = reference_statement()
    h = first.header.fields
    assert h["procedureType"] == "1" and h["Reference/version"] == "1.0"
    assert (h["SendApplication/name"], h["SendApplication/version"], h["SendApplication/companyName"],
            h["SendApplication/companyIdentity"]) == (st["product"], st["version"], st["vendor"], st["vendor_tax_code"])
    assert "SendApplication/certificationId" not in h                                      # ENV-08, 1.0
    assert h["SendApplication/createMessageIssue"] == format_datetime(clock.start)          # ENV-03
    assert h["SendApplication/createMessageIssue"].endswith("+07:00")
    assert (h["From/identity"], h["To/identity"], h["Subject/type"], h["Subject/function"]) == (TAX, OFFICE, "930", "8")
    assert h["Subject/sendApplication"] == dts.store.installation_id() and h["Subject/receiveApplication"] == "CGW"
    assert first.headers == {"Content-Type": "text/xml; charset=utf-8", "SOAPAction": '"urn:ecdi:service:1#Send"'}
    xmlsig.verify_envelope(first.text, methods=(xmlsig.RSA_SHA256,), digests=(xmlsig.SHA256,))   # SIG-01/04


def test_duplicate_reply_message_id_is_processed_once(pki, tmp_path):
    thirty = {}

    def respond(call):
        if call.header.function != "13":
            return sign_reply(pki, call.header, function="29", sequence=1, reception_number="3000123456")
        n = len(gateway.queries())
        if n <= 2:   # the same 30 delivered twice (RPL-08's own test)
            thirty.setdefault("t", sign_reply(pki, call.header, function="30", sequence=2,
                                              declaration_number="105123456789"))
            return thirty["t"]
        return sign_reply(pki, call.header, function="35", sequence=3, declaration_number="105123456789",
                          cleared_at="2025-03-14T10:00:00+07:00")

    dts, gateway, _ = make_dts(pki, tmp_path, respond)
    report = dts.lodge(declaration(), type="929")
    assert report.state == "cleared"
    assert [n.code for n in report.notifications].count("30") == 1
    discarded = [e for e in journal(dts) if e["event"] == "reply-discarded"]
    assert len(discarded) == 1 and "RPL-08" in discarded[0]["reason"]


def test_rejection_is_shown_verbatim_and_not_recorded(pki, tmp_path):
    errors = [ErrorEntry("U0002", "/Envelope/Header/From/identity", VIET), ErrorEntry("W0002", "", "Chứng thư số sắp hết hạn")]

    dts, gateway, _ = make_dts(pki, tmp_path, lambda call: sign_reply(
        pki, call.header, function="271", sequence=0, result_code="U0002", errors=errors))
    report = dts.lodge(declaration(), type="929")
    assert report.state == "rejected" and report.errors == errors[:1] and report.warnings == errors[1:]
    texts = [e["text"] for e in told(dts, "customs-error")]
    assert any(VIET in t and "U0002" in t and "/Envelope/Header/From/identity" in t for t in texts)   # RPL-14
    assert [e["text"] for e in told(dts, "warning")] == ["W0002: Chứng thư số sắp hết hạn"]        # RPL-15
    assert len(gateway.calls) == 1 and not gateway.queries()                                     # RPL-12


def test_ascii_folding_mutant_loses_the_diacritics(pki, tmp_path):
    dts, _, _ = make_dts(pki, tmp_path, lambda call: sign_reply(
        pki, call.header, function="271", sequence=0, result_code="U0002",
        errors=[ErrorEntry("U0002", "/Envelope/Header/From/identity", VIET)]), mutant="errors-ascii-folded")
    dts.lodge(declaration(), type="929")
    texts = " ".join(e["text"] for e in told(dts))
    assert VIET not in texts and "Nguoi dung khong duoc phep khai cho ma so thue nay" in texts


def test_timeouts_exhaust_retries_byte_identically_then_outcome_unknown(pki, tmp_path):
    dts, gateway, clock = make_dts(pki, tmp_path, lambda call: TIMEOUT)
    report = dts.lodge(declaration(), type="929")
    assert report.state == "unknown"
    assert len(gateway.calls) == 6                                              # 1 + n_retry (REL-07)
    assert len({c.text for c in gateway.calls}) == 1                            # REL-05
    assert len({c.body for c in gateway.calls}) == 1
    assert [s for s in clock.sleeps if s > 0] == [2, 4, 8, 16, 32]             # REL-06
    notice = told(dts, "transport-error")[-1]
    assert notice["code"] == "REL-07" and "unknown" in notice["text"] and "not rejected" in notice["text"]
    # REL-08: nothing new with that business reference until a query settles it
    ref = gateway.calls[0].header.reference
    again = dts.lodge(declaration(), type="929", business_ref=ref)
    assert again.state == "refused" and again.notifications[-1].code == "REL-08" and len(gateway.calls) == 6


def test_query_of_unknown_outcome_waits_t_send_then_retransmits_on_e0002(pki, tmp_path):
    calls = {"n": 0}

    def respond(call):
        calls["n"] += 1
        if call.header.function == "13":
            return sign_reply(pki, call.header, function="272", sequence=0, result_code="E0002",
                              errors=[ErrorEntry("E0002", "/Envelope/Header/Subject/reference", "Không tìm thấy")])
        if calls["n"] <= 6:
            return TIMEOUT
        return sign_reply(pki, call.header, function="272", sequence=1, result_code="S0005",
                          errors=[ErrorEntry("S0005", "/x", "Sai mã HS")])

    dts, gateway, clock = make_dts(pki, tmp_path, respond)
    first = dts.lodge(declaration(), type="929")
    assert first.state == "unknown" and clock.offset == 2 + 4 + 8 + 16 + 32     # the 6th attempt started at 62 s
    report = dts.query(first.message_id)
    assert [c.header.function for c in gateway.calls[6:]] == ["13", "8"]
    query_attempt = [e for e in journal(dts) if e["event"] == "attempt"][6]
    assert datetime.fromisoformat(query_attempt["time"]).timestamp() - clock.start.timestamp() >= 62 + 60   # REL-08
    assert after_sequence(gateway.calls[6]) == 0
    lodged = gateway.lodgements()
    assert lodged[-1].text == lodged[0].text                                    # REL-08: the original text
    assert report.state == "business-error"


def test_crash_during_an_attempt_resumes_with_the_same_message_id(pki, tmp_path):
    """REL-09's own test: kill the DTS during an attempt, restart it, observe the same messageId."""
    def crash(call):
        raise KeyboardInterrupt("killed during the attempt")

    dts, gateway, _ = make_dts(pki, tmp_path, crash)
    with pytest.raises(KeyboardInterrupt):
        dts.lodge(declaration(), type="929")
    sent = gateway.calls[0]

    def answer(call):
        if call.header.function != "13":
            return sign_reply(pki, call.header, function="29", sequence=1, reception_number="3000123456")
        return sign_reply(pki, call.header, function="35", sequence=2, cleared_at="2025-03-14T10:00:00+07:00")

    restarted, gateway2, _ = make_dts(pki, tmp_path, answer)        # same state_dir: a restart
    assert restarted.installation_id == dts.installation_id          # ENV-07
    [report] = restarted.resume()
    assert gateway2.calls[0].text == sent.text                         # retransmission, never a new messageId
    assert report.message_id == sent.header.message_id and report.state == "cleared"


def test_e9001_is_retried_and_malformed_reply_is_retryable(pki, tmp_path):
    replies = iter(["busy", "malformed", "ok"])

    def respond(call):
        what = next(replies)
        if what == "busy":
            return sign_reply(pki, call.header, function="271", sequence=0, result_code="E9001",
                              errors=[ErrorEntry("E9001", "", "Cổng đang bận")])
        if what == "malformed":
            return b"<Envelope xmlns='urn:ecdi:envelope:1'><Header>"
        return sign_reply(pki, call.header, function="272", sequence=1, result_code="S0005",
                          errors=[ErrorEntry("S0005", "/x", "Sai")])

    dts, gateway, clock = make_dts(pki, tmp_path, respond)
    report = dts.lodge(declaration(), type="929")
    assert len(gateway.calls) == 3 and report.state == "business-error"
    assert [s for s in clock.sleeps if s > 0] == [2, 4]
    assert [e["event"] for e in journal(dts)].count("reply-discarded") == 1


@pytest.mark.parametrize("forgery", ["wrong-tax-code", "altered", "wrong-reference"])
def test_forged_or_altered_reply_is_a_security_error_without_state_change(pki, tmp_path, forgery):
    def respond(call):
        if forgery == "wrong-tax-code":
            return sign_reply(pki, call.header, function="29", sequence=1, reception_number="3000123456",
                              to_identity="0399999999")
        if forgery == "wrong-reference":
            return sign_reply(pki, call.header, function="29", sequence=1, reception_number="3000123456",
                              reference=new_message_id())
        text = sign_reply(pki, call.header, function="29", sequence=1, reception_number="3000123456")
        return text.replace(b"3000123456", b"3000123457")

    dts, gateway, _ = make_dts(pki, tmp_path, respond)
    report = dts.lodge(declaration(), type="929")
    assert report.state == "security-error" and report.reception_number is None
    assert len(gateway.calls) == 1                                               # REL-04: not retransmitted
    assert not told(dts, "customs-result") and told(dts, "security-error")
    assert dts.store.load(report.message_id).entries == {}


def test_polling_stops_at_poll_max_total_and_says_query_later(pki, tmp_path):
    def respond(call):
        if call.header.function != "13":
            return sign_reply(pki, call.header, function="29", sequence=1, reception_number="3000123456")
        return sign_reply(pki, call.header, function="12", sequence=0)

    statement = reference_statement()
    statement["pixit"].update(poll_interval_s=60, poll_max_total_s=300)
    dts, gateway, clock = make_dts(pki, tmp_path, respond, statement=statement)
    report = dts.lodge(declaration(), type="929")
    assert report.state == "accepted" and report.status_function == "29"
    assert len(gateway.queries()) == 5                                           # at 4, 64, 124, 184, 244 s
    assert report.notifications[-1].code == "REL-14" and "later" in report.notifications[-1].text
    assert not told(dts, "transport-error")


def test_warning_codes_are_shown_and_not_failures(pki, tmp_path):
    def respond(call):
        if call.header.function != "13":
            return sign_reply(pki, call.header, function="29", sequence=1, reception_number="3000123456",
                              errors=[ErrorEntry("W0001", "", "SHA-1 sắp ngừng"), ErrorEntry("W9999", "", "Mới")])
        return sign_reply(pki, call.header, function="35", sequence=2, declaration_number="105123456789",
                          cleared_at="2025-03-14T10:00:00+07:00")

    dts, _, _ = make_dts(pki, tmp_path, respond)
    report = dts.lodge(declaration(), type="929")
    assert report.state == "cleared" and [w.code for w in report.warnings] == ["W0001", "W9999"]


def test_doc02_too_many_goods_items_sends_nothing(pki, tmp_path):
    dts, gateway, _ = make_dts(pki, tmp_path, lambda call: pytest.fail("nothing may be sent"))
    report = dts.lodge(declaration(51), type="929")
    assert report.state == "refused" and not gateway.calls
    notice = report.notifications[-1]
    assert (notice.kind, notice.code) == ("local-error", "DOC-02") and "Split" in notice.text
    assert not [e for e in journal(dts) if e["event"] in ("request-stored", "attempt")]


def test_expired_certificate_is_refused_before_signing(pki, tmp_path):
    expired = pki.issue_declarant("expired-dts", TAX, not_before=pki.start - timedelta(days=60),
                                  not_after=pki.start - timedelta(days=1))
    dts, gateway, _ = make_dts(pki, tmp_path, lambda call: pytest.fail("nothing may be sent"), p12=expired.p12)
    report = dts.lodge(declaration(), type="929")
    assert report.state == "refused" and not gateway.calls
    assert report.notifications[-1].code == "SIG-12" and "expired" in report.notifications[-1].text


def test_wrong_tax_code_certificate_is_refused(pki, tmp_path):
    other = pki.issue_declarant("other-dts", "0399999999")
    dts, gateway, _ = make_dts(pki, tmp_path, lambda call: pytest.fail("nothing may be sent"), p12=other.p12)
    report = dts.lodge(declaration(), type="929")
    assert report.state == "refused" and "wrong tax code" in report.notifications[-1].text


def test_revoked_certificate_is_refused_when_its_distribution_point_answers(pki, tmp_path):
    """SIG-12: the DTS fetches the CRL from the URL in the certificate, as a product would."""
    from conformance.crl_server import CrlServer

    revoked = pki.issue_declarant("revoked-dts", TAX, revoked=True)
    server = CrlServer(pki.folder, pki.crl_port)
    assert server.start() is None
    try:
        dts, gateway, _ = make_dts(pki, tmp_path, lambda call: pytest.fail("nothing may be sent"), p12=revoked.p12)
        report = dts.lodge(declaration(), type="929")
    finally:
        server.stop()
    assert report.state == "refused" and not gateway.calls
    assert report.notifications[-1].code == "SIG-12" and "revoked" in report.notifications[-1].text
    assert "/crl/declarant-ca.crl" in server.fetches


def test_revoked_certificate_is_refused_from_the_local_crl_folder_when_the_distribution_point_is_down(
        pki, tmp_path, monkeypatch):
    from conformance.reference_dts import signing

    revoked = pki.issue_declarant("revoked-dts", TAX, revoked=True)
    monkeypatch.setattr(signing, "_fetch_crl", lambda url: None)          # nothing listens on the port
    dts, gateway, _ = make_dts(pki, tmp_path, lambda call: pytest.fail("nothing may be sent"), p12=revoked.p12,
                               crl_dir=pki.folder)
    report = dts.lodge(declaration(), type="929")
    assert report.state == "refused" and "revoked" in report.notifications[-1].text


def test_without_a_reachable_crl_the_revocation_check_is_skipped(pki, tmp_path, monkeypatch):
    """SIG-12 asks for the CRL check only "when that CRL is reachable at signing time"."""
    from conformance.reference_dts import signing

    revoked = pki.issue_declarant("revoked-dts", TAX, revoked=True)
    monkeypatch.setattr(signing, "_fetch_crl", lambda url: None)
    dts = ReferenceDTS(make_config(pki, tmp_path, p12=revoked.p12), clock=FakeClock())
    dts.check_certificate(datetime.now(timezone.utc))                     # no CertificateUnfit raised


def test_unclaimed_capability_is_refused(pki, tmp_path):
    statement = reference_statement()
    statement["capabilities"] = [c for c in statement["capabilities"] if c != "amend"]
    dts, gateway, _ = make_dts(pki, tmp_path, lambda call: pytest.fail("nothing may be sent"), statement=statement)
    report = dts.lodge(declaration(), type="929", function="5")
    assert report.state == "refused" and report.notifications[-1].code == "CAP-04" and not gateway.calls


def test_plain_http_endpoint_is_refused(pki, tmp_path):
    dts = ReferenceDTS(make_config(pki, tmp_path, endpoint="http://127.0.0.1:9/ecdi/CISService"), clock=FakeClock())
    report = dts.lodge(declaration(), type="929")
    assert report.state == "local-error" and report.notifications[-1].code == "TRN-10"


def test_journal_has_table_12_1_members_and_never_the_password(pki, tmp_path):
    def respond(call):
        if call.header.function != "13":
            return sign_reply(pki, call.header, function="29", sequence=1, reception_number="3000123456")
        return sign_reply(pki, call.header, function="35", sequence=2, declaration_number="105123456789",
                          cleared_at="2025-03-14T10:00:00+07:00")

    dts, _, _ = make_dts(pki, tmp_path, respond)
    dts.lodge(declaration(), type="929")
    events = journal(dts)
    assert {e["event"] for e in events} >= {"request-stored", "attempt", "attempt-outcome", "reply-received",
                                            "notification"}
    for e in events:
        keys = list(e)
        base = list(TABLE_12_1) + (list(NOTIFICATION_MEMBERS) if e["event"] == "notification" else [])
        assert keys[:len(base)] == base, keys
        assert set(keys[len(base):]) <= set(EXTRA_MEMBERS), keys
        assert isinstance(e["time"], str) and datetime.fromisoformat(e["time"]).utcoffset() is not None
        assert e["user"] == "operator" and e["userId"] == "nguyenvana"
        if e["event"] == "notification":
            assert e["kind"] in ("customs-result", "customs-error", "warning", "transport-error", "security-error",
                                 "local-error", "info")
    assert dts.journal_export().endswith("\n")
    for path in (tmp_path / "state").rglob("*"):                                 # SEC-01
        if path.is_file():
            data = path.read_bytes()
            assert PASSWORD.encode() not in data and pki.p12_password.encode() not in data, path


@pytest.mark.parametrize("name", sorted(MUTANTS))
def test_mutants_are_registered_with_one_overridden_hook(name):
    m = MUTANTS[name]
    assert m.breaks and m.caught_by and m.summary
    overridden = [k for k, v in vars(m.cls).items() if callable(v) and not k.startswith("__")]
    assert len(overridden) == 1 and overridden[0] in ReferenceDTS.HOOKS and issubclass(m.cls, ReferenceDTS)


def test_every_declared_hook_is_a_method_of_the_reference_dts():
    assert all(callable(getattr(ReferenceDTS, h, None)) for h in ReferenceDTS.HOOKS)


def test_build_dts_unknown_mutant_names_the_valid_ones(pki, tmp_path):
    with pytest.raises(ValueError) as info:
        build_dts(make_config(pki, tmp_path), "no-such-mutant")
    assert "no-such-mutant" in str(info.value) and "signs-sha1" in str(info.value)


@pytest.mark.parametrize("mutant,same_text,same_id", [
    (None, True, True), ("resigns-on-retry", False, True), ("new-message-id-on-retry", False, False)])
def test_retransmission_mutants_change_what_is_retransmitted(pki, tmp_path, mutant, same_text, same_id):
    dts, gateway, _ = make_dts(pki, tmp_path, lambda call: TIMEOUT, mutant=mutant)
    dts.lodge(declaration(), type="929")
    texts = [c.text for c in gateway.calls[:2]]
    assert (texts[0] == texts[1]) is same_text
    assert (gateway.calls[0].header.message_id == gateway.calls[1].header.message_id) is same_id


def test_no_retry_mutant_gives_up_after_a_timeout(pki, tmp_path):
    dts, gateway, _ = make_dts(pki, tmp_path, lambda call: TIMEOUT, mutant="no-retry")
    report = dts.lodge(declaration(), type="929")
    assert len(gateway.calls) == 1 and report.state == "transport-error"


def test_header_mutants(pki, tmp_path):
    reply = lambda call: sign_reply(pki, call.header, function="272", sequence=1, errors=[ErrorEntry("S0005", "", "x")])  # noqa: E731
    dts, gateway, _ = make_dts(pki, tmp_path / "a", reply, mutant="soapaction-unquoted")
    dts.lodge(declaration(), type="929")
    assert gateway.calls[0].headers["SOAPAction"] == "urn:ecdi:service:1#Send"
    dts, gateway, _ = make_dts(pki, tmp_path / "b", reply, mutant="creation-time-without-offset")
    dts.lodge(declaration(), type="929")
    assert gateway.calls[0].header["SendApplication/createMessageIssue"] == format_datetime(dts.clock.start)[:-6]
    dts, gateway, _ = make_dts(pki, tmp_path / "c", reply, mutant="signs-sha1")
    dts.lodge(declaration(), type="929")
    assert xmlsig.verify_envelope(gateway.calls[0].text, methods=(xmlsig.RSA_SHA1,),
                                  digests=(xmlsig.SHA1,)).uses_sha1


# ------------------------------------------------------------------------------------------------
# Transport against a loopback TLS server


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    behaviour = None    # set per server

    def do_POST(self):  # noqa: N802
        length = int(self.headers.get("Content-Length", 0))
        body = self.rfile.read(length)
        self.server.seen.append((dict(self.headers), body))
        self.server.behaviour(self, body)

    def log_message(self, *args):
        pass


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address):
        pass


@pytest.fixture
def tls_server(pki):
    servers = []

    def start(behaviour, identity=None):
        identity = identity or pki.tls_server
        server = _Server(("127.0.0.1", 0), _Handler)
        server.seen, server.behaviour = [], behaviour
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(identity.cert_pem, identity.key_pem)
        server.socket = context.wrap_socket(server.socket, server_side=True)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return server, f"https://127.0.0.1:{server.server_address[1]}/ecdi/CISService"

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


def _send(handler, status, body=b"", headers=None):
    handler.send_response(status)
    for k, v in (headers or {}).items():
        handler.send_header(k, v)
    handler.send_header("Content-Length", str(len(body)))
    handler.end_headers()
    handler.wfile.write(body)


def _transport(pki, url, t_send=2.0, ca=None):
    return Transport(url, ca or pki.tls_ca_pem, t_send=t_send, user_agent="test/1")


def test_transport_posts_exactly_the_trn_03_headers_and_reads_the_reply(pki, tls_server):
    server, url = tls_server(lambda h, body: _send(h, 200, soap.send_response_body("<Envelope>ơ</Envelope>".encode())))
    headers = {"Content-Type": soap.CONTENT_TYPE, "SOAPAction": soap.SOAP_ACTION}
    outcome = _transport(pki, url).post(soap.send_request_body(b"<Envelope/>", "u", PASSWORD), headers)
    assert outcome.category == REPLY and outcome.reply_text == "<Envelope>ơ</Envelope>".encode()
    seen_headers, body = server.seen[0]
    assert seen_headers["Content-Type"] == "text/xml; charset=utf-8"
    assert seen_headers["SOAPAction"] == '"urn:ecdi:service:1#Send"'
    assert not {"Authorization", "Cookie"} & set(seen_headers)                  # TRN-11
    assert soap.parse_send_request(body)[0].password == PASSWORD


def test_transport_cuts_a_dripping_body_at_the_deadline(pki, tls_server):
    def drip(handler, body):
        handler.send_response(200)
        handler.send_header("Content-Length", "1000")
        handler.end_headers()
        try:
            for _ in range(100):
                handler.wfile.write(b" ")
                handler.wfile.flush()
                time.sleep(0.05)
        except OSError:
            pass

    _, url = tls_server(drip)
    started = time.monotonic()
    outcome = _transport(pki, url, t_send=0.6).post(b"x", {})
    elapsed = time.monotonic() - started
    assert (outcome.category, outcome.cause) == (RETRYABLE, "timeout")
    assert 0.5 <= elapsed < 1.5


def test_transport_cuts_stalled_headers_at_the_deadline(pki, tls_server):
    def stall(handler, body):
        handler.wfile.write(b"HTTP/1.1 200 OK\r\n")
        handler.wfile.flush()
        for _ in range(40):   # drips header bytes: each read would succeed on its own
            time.sleep(0.05)
            try:
                handler.wfile.write(b"X-Slow: 1\r\n")
                handler.wfile.flush()
            except OSError:
                return

    _, url = tls_server(stall)
    started = time.monotonic()
    outcome = _transport(pki, url, t_send=0.6).post(b"x", {})
    assert outcome.cause == "timeout" and time.monotonic() - started < 1.5


def test_transport_does_not_follow_redirects(pki, tls_server):
    server, url = tls_server(lambda h, body: _send(h, 302, headers={"Location": "/elsewhere"}))
    outcome = _transport(pki, url).post(b"x", {})
    assert (outcome.category, outcome.status) == (FINAL, 302) and len(server.seen) == 1


def test_transport_reads_retry_after_of_a_503(pki, tls_server):
    _, url = tls_server(lambda h, body: _send(h, 503, headers={"Retry-After": "7"}))
    outcome = _transport(pki, url).post(b"x", {})
    assert (outcome.category, outcome.retry_after) == (RETRYABLE, 7)


def test_transport_short_body_is_retryable(pki, tls_server):
    def short(handler, body):
        handler.send_response(200)
        handler.send_header("Content-Length", "500")
        handler.end_headers()
        handler.wfile.write(b"<soap:Envelope")
        handler.close_connection = True

    _, url = tls_server(short)
    outcome = _transport(pki, url).post(b"x", {})
    assert outcome.category == RETRYABLE and outcome.cause in ("incomplete", "connection-lost")


def test_transport_untrusted_or_wrong_host_certificate_sends_nothing(pki, tls_server):
    server, url = tls_server(lambda h, body: _send(h, 200))
    outcome = _transport(pki, url, ca=pki.sign_anchor_pem).post(b"x", {})       # not the TLS anchor
    assert outcome.category == TLS_FAILURE and not server.seen
    server2, url2 = tls_server(lambda h, body: _send(h, 200), identity=pki.gateway_signer)   # no SAN for 127.0.0.1
    outcome = _transport(pki, url2, ca=pki.sign_anchor_pem).post(b"x", {})
    assert outcome.category == TLS_FAILURE and not server2.seen


def test_transport_connection_refused_is_retryable(pki):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    outcome = _transport(pki, f"https://127.0.0.1:{port}/ecdi/CISService").post(b"x", {})
    assert (outcome.category, outcome.cause) == (RETRYABLE, "connect")


# ------------------------------------------------------------------------------------------------
# RPL-07 / RPL-11 reply reading, DOC-01 before signing


def test_unknown_elements_attributes_functions_and_w_codes_are_ignored(pki, tmp_path):
    def respond(call):
        if call.header.function != "13":
            root = build_envelope(Header({**read_header(sign_reply_root(pki, call.header)).fields}),
                                  Result(sequence=1, reception_number="3000123456",
                                         errors=[ErrorEntry("W0777", "", "Cảnh báo mới")]).to_element())
            extra = etree.SubElement(root.find(q(ENV, "Header")), "{urn:vendor:x}trace")
            extra.text = "42"
            etree.SubElement(root.find(f".//{q(ENV, 'Result')}"), q(ENV, "futureField")).text = "x"
            root.find(q(ENV, "Header")).set("{urn:vendor:x}hint", "1")
            return xmlsig.sign_envelope(root, pki.gateway_signer.signer())
        n = len(gateway.queries())
        if n == 1:
            return sign_reply(pki, call.header, function="77", sequence=2)          # unknown function
        return sign_reply(pki, call.header, function="35", sequence=3, cleared_at="2025-03-14T10:00:00+07:00")

    dts, gateway, _ = make_dts(pki, tmp_path, respond)
    report = dts.lodge(declaration(), type="929")
    assert report.state == "cleared" and report.reception_number == "3000123456"
    assert [w.code for w in report.warnings] == ["W0777"]
    assert any(n.text == "status 77" for n in report.notifications)               # RPL-11
    assert not [e for e in journal(dts) if e["event"] == "reply-discarded"]


def sign_reply_root(pki, request: Header) -> etree._Element:
    return parse_message_text(sign_reply(pki, request, function="29", sequence=1, reception_number="3000123456"))


def test_reply_missing_a_required_element_is_malformed_and_retried(pki, tmp_path):
    answers = iter(["broken", "ok"])

    def respond(call):
        if next(answers) == "broken":
            root = build_envelope(Header({**read_header(sign_reply_root(pki, call.header)).fields}),
                                  Result(sequence=1, reception_number="3000123456").to_element())
            result = root.find(f".//{q(ENV, 'Result')}")
            result.remove(result.find(q(ENV, "sequence")))
            return xmlsig.sign_envelope(root, pki.gateway_signer.signer())
        return sign_reply(pki, call.header, function="272", sequence=1, errors=[ErrorEntry("S0005", "/x", "Sai")])

    dts, gateway, _ = make_dts(pki, tmp_path, respond)
    report = dts.lodge(declaration(), type="929")
    assert len(gateway.calls) == 2 and report.state == "business-error"
    discarded = [e for e in journal(dts) if e["event"] == "reply-discarded"]
    assert len(discarded) == 1 and "sequence" in discarded[0]["reason"]


def test_invalid_document_is_refused_before_signing(pki, tmp_path):
    doc = declaration()
    doc.find(f"{q(DEC, 'GoodsItem')}/{q(DEC, 'hsCode')}").text = "8471"
    dts, gateway, _ = make_dts(pki, tmp_path, lambda call: pytest.fail("nothing may be sent"))
    report = dts.lodge(doc, type="929")
    assert report.state == "refused" and not gateway.calls
    assert report.notifications[-1].code == "DOC-01" and "GoodsItem[1]/hsCode" in report.notifications[-1].text


def test_statement_shipped_is_valid_for_the_profile():
    statement = reference_statement()
    assert PROFILE.check_statement_pixit(statement["pixit"]) == []
    from conformance import __version__
    assert statement["version"] == __version__                       # ENV-08: SendApplication/version


# ------------------------------------------------------------------------------------------------
# Smoke test against the real mock gateway, on the wire


def test_smoke_against_the_mock_gateway(pki, tmp_path):
    mock_server = pytest.importorskip("mock_server")
    gateway = mock_server.run_in_thread(mock_server.GatewayConfig(
        profiles=["ecdi-1.0"], pki_folder=pki.folder, evidence_db=tmp_path / "evidence.sqlite3", time_scale=0.05,
        accounts=[mock_server.Account("nguyenvana", PASSWORD, [TAX])], registered_certs={TAX: [pki.declarant.cert]}))
    try:
        dts = ReferenceDTS(make_config(pki, tmp_path, endpoint=gateway.endpoint_url, time_scale=0.05))
        sample = Path(PROFILE.directory).parents[1] / "samples" / "declaration-import.xml"
        content = etree.fromstring(sample.read_bytes()) if sample.exists() else declaration()
        report = dts.lodge(content, type="929")
        assert report.reception_number, report.notifications
        assert report.state in ("accepted", "cleared"), report.notifications
        assert not [n for n in report.notifications if n.kind in ("security-error", "transport-error", "local-error")]
    finally:
        gateway.stop()
