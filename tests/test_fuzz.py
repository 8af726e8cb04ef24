"""Fuzzing the gateway (issue 13, item 5): valid signed envelopes and SOAP frames, mutated at byte and
tree level, are each answered within a time bound by a TRN-07 ``soap:Client`` fault or a signed reply
whose codes are the profile's — a 271 for a broken message text; a mutation that left the message
valid (whitespace in the frame) gets the answer that message deserves. Never ``soap:Server``, a
traceback, another status or silence.

CI runs ``ECDI_FUZZ_EXAMPLES`` examples per test (default 25, a few seconds); set it to thousands
for the longer mode (docs/security.md).
"""

from __future__ import annotations

import os
import time
from xml.sax.saxutils import escape

import pytest
import requests
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from lxml import etree

from conformance.codec import soap
from conformance.profile import load_profile
from test_gateway import PASSWORD, USER, Client, control, gateway, parse_reply, pki  # noqa: F401 — fixtures

EXAMPLES = int(os.environ.get("ECDI_FUZZ_EXAMPLES", "25"))
ANSWER_WITHIN_S = 10.0            # per request, on a loaded 2-core machine (S_max texts are not generated here)
FUZZ = settings(max_examples=EXAMPLES, deadline=None, derandomize=not os.environ.get("ECDI_FUZZ_EXAMPLES"),
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
PROFILE = load_profile("ecdi-1.0")


@pytest.fixture(scope="module")
def client(gateway, pki, control) -> Client:
    control.begin_case("fuzz", {"name": "default"})
    return Client(gateway, pki)


@pytest.fixture(scope="module")
def signed(client) -> bytes:
    return client.message()


def frame(text: bytes) -> bytes:
    """A Send frame around ``text`` as octets, escaped but not decoded (a mutation may break UTF-8)."""
    body = soap.send_request_body(b"@TEXT@", USER, PASSWORD)
    return body.replace(b"@TEXT@", escape(text.decode("latin-1")).encode("latin-1"))


def judge(client: Client, body: bytes) -> None:
    started = time.monotonic()
    try:
        response = client.post(body)
    except requests.RequestException as exc:
        pytest.fail(f"no answer: {exc}")
    assert time.monotonic() - started < ANSWER_WITHIN_S
    if response.status_code == 500:
        with pytest.raises(soap.SoapFault) as fault:
            soap.parse_send_response(response.content)
        assert fault.value.faultcode == "soap:Client", fault.value
        return
    assert response.status_code == 200, response.content[:300]
    header, result = parse_reply(soap.parse_send_response(response.content))
    codes = {e.code for e in result.errors} | {result.result_code}
    assert codes - {None} <= set(PROFILE.result_codes), codes
    assert header.function in ("271", "29", "30", "31"), header.function


# ------------------------------------------------------------------------------------------
# byte level


@st.composite
def byte_edits(draw, data: bytes) -> bytes:
    out = bytearray(data)
    for _ in range(draw(st.integers(1, 4))):
        at = draw(st.integers(0, len(out)))
        kind = draw(st.sampled_from(["flip", "delete", "insert", "duplicate"]))
        if kind == "flip" and at < len(out):
            out[at] ^= draw(st.integers(1, 255))
        elif kind == "delete":
            del out[at:at + draw(st.integers(1, 64))]
        elif kind == "insert":
            out[at:at] = draw(st.binary(min_size=1, max_size=16) | st.sampled_from(
                [b"<", b">", b"&", b"]]>", b"<!--", b"<?x?>", b"<!DOCTYPE a>", b"\xef\xbb\xbf", b"\x00", b"\xc3"]))
        else:
            out[at:at] = out[at:at + draw(st.integers(1, 256))]
    return bytes(out)


@FUZZ
@given(data=st.data())
def test_mutated_message_texts_are_answered_by_the_profile(client, signed, data):
    judge(client, frame(data.draw(byte_edits(signed))))


@FUZZ
@given(data=st.data())
def test_mutated_soap_frames_are_answered_by_a_client_fault_or_the_profile(client, signed, data):
    judge(client, data.draw(byte_edits(frame(signed))))


# ------------------------------------------------------------------------------------------
# tree level

TEXTS = st.text(st.characters(blacklist_categories=("Cs",)), max_size=40)
NAMES = st.from_regex(r"[A-Za-z_][A-Za-z0-9_.-]{0,12}", fullmatch=True)


@st.composite
def tree_edits(draw, data: bytes) -> bytes:
    root = etree.fromstring(data)
    for _ in range(draw(st.integers(1, 3))):
        elements = list(root.iter(etree.Element))
        el = elements[draw(st.integers(0, len(elements) - 1))]
        parent = el.getparent()
        kind = draw(st.sampled_from(["delete", "duplicate", "text", "rename", "attribute", "move", "comment"]))
        if kind == "delete" and parent is not None:
            parent.remove(el)
        elif kind == "duplicate" and parent is not None:
            parent.insert(parent.index(el), etree.fromstring(etree.tostring(el)))
        elif kind == "text":
            try:
                el.text = draw(TEXTS)
            except ValueError:                      # not XML-compatible text: lxml refuses it, fine
                pass
        elif kind == "rename":
            el.tag = etree.QName(etree.QName(el).namespace, draw(NAMES)).text if etree.QName(el).namespace \
                else draw(NAMES)
        elif kind == "attribute":
            el.set(draw(NAMES), "x")
        elif kind == "move" and parent is not None:
            target = elements[draw(st.integers(0, len(elements) - 1))]
            if el not in target.iterancestors() and target is not el:
                target.append(el)
        elif kind == "comment":
            el.insert(0, etree.Comment("c"))
    return etree.tostring(root, encoding="utf-8")


@FUZZ
@given(data=st.data())
def test_mutated_envelope_trees_are_answered_by_the_profile(client, signed, data):
    judge(client, soap.send_request_body(data.draw(tree_edits(signed)), USER, PASSWORD))


@FUZZ
@given(data=st.data())
def test_mutated_soap_trees_are_answered_by_a_client_fault_or_the_profile(client, signed, data):
    judge(client, data.draw(tree_edits(soap.send_request_body(signed, USER, PASSWORD))))
