"""Issue 13: the right answer for every input, strict SOAP framing, bounded error explanation.

Each request comes from a plain client to a real gateway on loopback; the codec tests below them pin
the seams (SOAP reading, the message-text reader's limits, the explanation's bounds).
"""

from __future__ import annotations

import pytest
from lxml import etree

from conformance import profile as profile_module
from conformance.codec import envelope, safexml, soap
from conformance.codec.namespaces import DEC, DS, ENV, SOAP, SVC, q
from conformance.profile import load_profile
from test_gateway import PASSWORD, USER, Client, case, control, gateway, parse_reply, pki  # noqa: F401 — fixtures

SOAP_OPEN = f'<soap:Envelope xmlns:soap="{SOAP}">'.encode()


@pytest.fixture(scope="module")
def client(gateway, pki) -> Client:
    return Client(gateway, pki)


def answer(client: Client, text: bytes) -> tuple[str, str, str]:
    """(reply function, result code, first Error/field) of the gateway's reply to ``text``."""
    _, reply = client.send(text)
    header, result = parse_reply(reply)
    return header.function, result.result_code, result.errors[0].field if result.errors else ""


def fault(client: Client, body: bytes) -> str:
    """The faultcode of a HTTP 500 answer to ``body``."""
    response = client.post(body)
    assert response.status_code == 500, response.content[:300]
    with pytest.raises(soap.SoapFault) as exc:
        soap.parse_send_response(response.content)
    return exc.value.faultcode


def framed(text: bytes, password: str = PASSWORD) -> bytes:
    return soap.send_request_body(text, USER, password)


def with_signature_in_content(text: bytes) -> bytes:
    root = etree.fromstring(text)
    root.find(f"{q(ENV, 'Body')}/{q(ENV, 'Content')}").append(root.find(q(DS, "Signature")))
    return etree.tostring(root, encoding="utf-8")


def nested(depth: int) -> bytes:
    return b"<x>" * depth + b"</x>" * depth


# ------------------------------------------------------------------------------------------
# well-formed documents, the right code (Table 7-3, §5.3)


def test_a_document_that_is_no_envelope_is_X0002_at_its_root(client, case):
    assert answer(client, b"<a/>") == ("271", "X0002", "/a")


def test_an_envelope_without_a_version_is_X0002_not_X0003(client, case):
    text = f'<Envelope xmlns="{ENV}"><Header/></Envelope>'.encode()
    function, code, _ = answer(client, text)
    assert (function, code) == ("271", "X0002")


@pytest.mark.parametrize("depth", [300, 10_000])
def test_deep_nesting_is_a_structure_error_at_the_first_offending_node(client, case, depth):
    # 300 levels libxml2 reads, 10,000 it does not: the same answer for both
    text = client.message().replace(b"<Trader>", b"<Trader>" + nested(depth), 1)
    assert answer(client, text) == ("271", "X0002", "/Envelope/Body/Content/Declaration/Trader/x")


def test_deep_nesting_inside_the_signature_is_G0001(client, case):
    text = client.message().replace(b"</ds:Signature>", b"<ds:Object>" + nested(3000) + b"</ds:Object></ds:Signature>", 1)
    assert answer(client, text)[:2] == ("271", "G0001")


def test_a_megabyte_element_name_is_well_formed_and_X0002(client, case):
    text = f'<Envelope xmlns="{ENV}"><{"N" * 2**20}/></Envelope>'.encode()
    # the first offending node's path is too long for Error/field (Table 7-1): its parent's is given
    assert answer(client, text) == ("271", "X0002", "/Envelope")


def test_a_message_text_beyond_libxml2s_text_node_limit_is_E0001(client, case):
    # 11 MB of character data: within the 4 x S_max body a gateway must read (TRN-13)
    assert answer(client, b"<a>" + b"x" * 11_000_000 + b"</a>")[:2] == ("271", "E0001")


def test_a_signature_inside_content_is_left_to_the_signature_step(client, case):
    assert answer(client, with_signature_in_content(client.message()))[:2] == ("271", "G0001")


@pytest.mark.parametrize("count", [2_000, 4_000, 50_000])
def test_many_attributes_get_the_first_one_named_and_a_bounded_explanation(client, control, case, count):
    attributes = b" ".join(b'a%d="x"' % i for i in range(count))
    text = client.message().replace(b"<procedureType>", b"<procedureType " + attributes + b">", 1)
    assert answer(client, text) == ("271", "X0002", "/Envelope/Header/procedureType/@a0")
    (row,) = control.exchanges(case)
    assert len(row.gateway_verdict["schema"]) <= profile_module.EXPLAIN_MAX_ISSUES


# ------------------------------------------------------------------------------------------
# SOAP framing (TRN-04, TRN-05, TRN-07; SOAP 1.1 §3, §4.2.3)


def test_a_processing_instruction_in_the_soap_envelope_is_a_client_fault(client, case):
    body = framed(client.message()).replace(b"<soap:Body>", b"<?pi data?><soap:Body>", 1)
    assert fault(client, body) == "soap:Client"


def test_a_mandatory_header_block_is_a_must_understand_fault(client, case):
    header = b'<soap:Header><h:Trace xmlns:h="urn:x" soap:mustUnderstand="1"/></soap:Header>'
    body = framed(client.message()).replace(b"<soap:Body>", header + b"<soap:Body>", 1)
    assert fault(client, body) == "soap:MustUnderstand"


def test_an_element_inside_message_xml_is_a_client_fault(client, case):
    text = client.message()
    as_elements = _send(b"<svc:MessageXML>" + text[text.index(b"<Envelope"):] + b"</svc:MessageXML><svc:UserId>"
                        + USER.encode() + b"</svc:UserId><svc:Password>" + PASSWORD.encode() + b"</svc:Password>")
    assert fault(client, as_elements) == "soap:Client"


def test_the_password_is_its_whole_value_never_a_prefix(client, case):
    exact = PASSWORD.encode()
    split = exact[:4] + b"<!---->" + exact[4:]
    padded = exact + b"<!---->JUNK"
    text = client.message()
    ok = client.post(framed(text).replace(b">" + exact + b"<", b">" + split + b"<", 1))
    assert parse_reply(soap.parse_send_response(ok.content))[0].function == "29"
    wrong = client.post(framed(client.message()).replace(b">" + exact + b"<", b">" + padded + b"<", 1))
    assert parse_reply(soap.parse_send_response(wrong.content))[1].result_code == "U0001"


def test_message_xml_is_read_whole_across_comments_and_cdata(client, case):
    text = client.message()
    body = framed(text)
    cut = body.index(b"&lt;Body")
    with_comment = body[:cut] + b"<!-- a comment -->" + body[cut:]
    assert parse_reply(soap.parse_send_response(client.post(with_comment).content))[0].function == "29"
    second = client.message()
    start = framed(second).index(b"<svc:MessageXML>") + len(b"<svc:MessageXML>")
    end = framed(second).index(b"</svc:MessageXML>")
    as_cdata = framed(second)[:start] + b"<![CDATA[" + second + b"]]>" + framed(second)[end:]   # TRN-05
    assert parse_reply(soap.parse_send_response(client.post(as_cdata).content))[0].function == "29"


# ------------------------------------------------------------------------------------------
# the codec seams


def _send(fields: bytes, *, header: bytes = b"", before: bytes = b"") -> bytes:
    return (before + SOAP_OPEN + header + f'<soap:Body><svc:Send xmlns:svc="{SVC}">'.encode() + fields
            + b"</svc:Send></soap:Body></soap:Envelope>")


FIELDS = b"<svc:MessageXML>&lt;a/&gt;</svc:MessageXML><svc:UserId>u</svc:UserId><svc:Password>p</svc:Password>"


@pytest.mark.parametrize("body, code, named", [
    (_send(FIELDS, before=b"<?pi x?>"), "soap:Client", "processing instruction"),
    (_send(FIELDS.replace(b"<svc:UserId>u", b"<svc:UserId><?pi x?>u")), "soap:Client", "processing instruction"),
    (_send(FIELDS.replace(b">p<", b"><b/>p<")), "soap:Client", "Password holds an element"),
    (_send(FIELDS, header=b'<soap:Header><h xmlns="urn:h" soap:mustUnderstand="1"/></soap:Header>'),
     "soap:MustUnderstand", "mandatory"),
    (_send(FIELDS, header=b'<soap:Header><h xmlns="urn:h" soap:mustUnderstand="true"/></soap:Header>'),
     "soap:Client", "not 0 or 1"),
    (SOAP_OPEN + f'<soap:Body><svc:Send xmlns:svc="{SVC}">'.encode() + FIELDS
     + b"</svc:Send></soap:Body><soap:Header/></soap:Envelope>", "soap:Client", "first child"),
])
def test_strict_soap_reading_names_the_cause(body, code, named):
    with pytest.raises(soap.SoapFault) as exc:
        soap.parse_send_request(body)
    assert exc.value.faultcode == code and named in exc.value.faultstring


def test_header_blocks_for_another_actor_or_optional_are_recorded_not_refused():
    header = (b'<soap:Header><h xmlns="urn:h" soap:mustUnderstand="1" soap:actor="urn:someone-else"/>'
              b'<g xmlns="urn:h" soap:mustUnderstand="0"/></soap:Header>')
    call, has_header = soap.parse_send_request(_send(FIELDS, header=header))
    assert (call.message_text, has_header) == (b"<a/>", True)


def test_fields_are_whole_string_values():
    body = _send(b"<svc:MessageXML>&lt;a&gt;<!--c-->x<![CDATA[<b/>]]>&lt;/a&gt;</svc:MessageXML>"
                 b"<svc:UserId>u</svc:UserId><svc:Password>right<!---->JUNK</svc:Password>")
    call, _ = soap.parse_send_request(body)
    assert (call.message_text, call.password) == (b"<a>x<b/></a>", "rightJUNK")


def test_a_send_result_is_read_whole_and_holds_no_element():
    response = soap.send_response_body(b"<a/>").replace(b"&lt;a/&gt;", b"&lt;a<!---->/&gt;")
    assert soap.parse_send_response(response) == b"<a/>"
    with pytest.raises(soap.NotSendResponse):
        soap.parse_send_response(soap.send_response_body(b"x").replace(b">x<", b"><a/><", 1))


@pytest.mark.parametrize("depth", [65, 300, 3000, 100_000])
def test_the_reader_keeps_max_depth_levels_and_names_the_first_beyond(depth):
    data = b"<!--c--><r>" + nested(depth) + b"<y/></r>"
    root, beyond = safexml.read_message_text(data)
    assert envelope.ecdi_path(beyond) == "/r" + "/x" * safexml.MAX_DEPTH
    assert len(beyond) == 0 and root[-1].tag == "y" and isinstance(root.getprevious(), etree._Comment)


def test_deep_but_not_well_formed_is_still_X0001():
    with pytest.raises(safexml.XmlRefused) as exc:
        safexml.read_message_text(b"<x>" * 3000 + b"</x>" * 2999 + b"</y>")
    assert exc.value.code == "X0001"


def test_parse_limits_are_ours_not_libxml2s():
    assert safexml.parse_message_text(f'<{"n" * 2**20}/>'.encode()).tag == "n" * 2**20
    assert len(safexml.parse_message_text(b"<a>" + b"x" * 11_000_000 + b"</a>").text) == 11_000_000
    safexml.parse_message_text(nested(safexml.MAX_BUILD_DEPTH))        # as deep as a lenient caller asks
    with pytest.raises(safexml.XmlRefused) as exc:
        safexml.parse_message_text(nested(safexml.MAX_BUILD_DEPTH + 1))
    assert exc.value.code == "X0002" and exc.value.field.count("/x") == safexml.MAX_BUILD_DEPTH + 1


def test_an_error_field_path_is_cut_to_an_ancestor_that_fits_table_7_1():
    assert envelope.fit_field("/Envelope/Header/" + "N" * 600) == "/Envelope/Header"
    assert envelope.fit_field("/" + "N" * 600) == ""
    assert envelope.fit_field("/Envelope/Body") == "/Envelope/Body"


def test_the_explanation_of_a_refused_document_is_bounded(monkeypatch):
    """Many invalid values: xmlschema is asked for at most EXPLAIN_MAX_ISSUES of them, and past the
    bound the first issue alone is reported."""
    explained = []
    real = profile_module._explain
    monkeypatch.setattr(profile_module, "_explain", lambda *a: explained.append(1) or real(*a))
    items = "".join(f"<GoodsItem><lineNo>{n}</lineNo><hsCode>bad</hsCode></GoodsItem>" for n in range(1, 500))
    decl = etree.fromstring(f'<Declaration xmlns="{DEC}"><typeCode>A11</typeCode>{items}</Declaration>')
    issues = load_profile("ecdi-1.0").validate_content(decl)
    assert len(explained) <= profile_module.EXPLAIN_MAX_ISSUES
    assert len(issues) == 1 and issues[0].path == "/Declaration/GoodsItem[1]"   # expected Trader, the first offending node


def test_a_large_refused_document_is_named_by_libxml2_without_xmlschema(monkeypatch):
    """Above EXPLAIN_MAX_ELEMENTS xmlschema (which reads a whole subtree before its first error) is not asked."""
    explained = []
    monkeypatch.setattr(profile_module, "_explain", lambda *a: explained.append(1))
    items = "<GoodsItem><lineNo>1</lineNo><hsCode>bad</hsCode></GoodsItem>" * (profile_module.EXPLAIN_MAX_ELEMENTS // 2)
    decl = etree.fromstring(f'<Declaration xmlns="{DEC}"><typeCode>A11</typeCode>{items}</Declaration>')
    issues = load_profile("ecdi-1.0").validate_content(decl)
    assert explained == [] and [i.path for i in issues] == ["/Declaration/GoodsItem[1]"]
