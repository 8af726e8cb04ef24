"""Issue 6, transport: the gateway's REL-04 actions and the WSDL switch from a plain client, and the
TLS probe met by plain ``ssl`` clients (never the reference DTS)."""

from __future__ import annotations

import socket
import ssl
import warnings

import pytest
import requests

from conformance.codec import soap
from conformance.gateway_control import ScenarioRefused
from mock_server.tls_probe import TlsProbe, parse_client_hello
from test_gateway import PASSWORD, USER, case, client, control, gateway, pki  # noqa: F401 — fixtures


def _rule(then: dict) -> dict:
    return {"name": "t", "rules": [{"when": {"type": "929", "function": "8"}, "then": then}]}


def _post(client, text: bytes) -> requests.Response:
    return client.session.post(client.gateway.endpoint_url, data=soap.send_request_body(text, USER, PASSWORD),
                               headers={"Content-Type": soap.CONTENT_TYPE, "SOAPAction": soap.SOAP_ACTION},
                               timeout=10, allow_redirects=False)


def test_redirect_answers_3xx_with_location_and_records_nothing(client, control, case):
    control.begin_case(case, _rule({"action": "redirect", "status": 307, "location": "/ecdi/moved"}))
    response = _post(client, client.message())
    assert response.status_code == 307 and response.headers["Location"] == "/ecdi/moved"
    row = control.exchanges(case)[-1]
    assert row.gateway_verdict["fault"]["action"] == "redirect" and row.reply_text is None


@pytest.mark.parametrize("status,fault,faultcode", [(500, "client", "soap:Client"), (413, "none", None),
                                                    (400, "none", None)])
def test_http_error_answers_the_status(client, control, case, status, fault, faultcode):
    control.begin_case(case, _rule({"action": "http_error", "status": status, "fault": fault}))
    response = _post(client, client.message())
    assert response.status_code == status
    if faultcode:
        with pytest.raises(soap.SoapFault) as caught:
            soap.parse_send_response(response.content)
        assert caught.value.faultcode == faultcode


@pytest.mark.parametrize("then,key", [({"action": "redirect", "status": 200}, "status"),
                                      ({"action": "redirect", "location": "moved"}, "location"),
                                      ({"action": "http_error", "status": 302}, "status"),
                                      ({"action": "http_error", "fault": "maybe"}, "fault")])
def test_bad_transport_actions_are_refused_naming_the_key(control, case, then, key):
    with pytest.raises(ScenarioRefused, match=rf"then\.{key}"):
        control.begin_case(case, _rule(then))


def test_wsdl_absent_answers_404_and_sends_still_work(client, control, case, gateway):
    control.begin_case(case, {"name": "no-wsdl", "wsdl": "absent"})
    assert client.session.get(gateway.wsdl_url, timeout=10).status_code == 404
    client.send(client.message())
    control.begin_case(case, {"name": "default"})
    assert client.session.get(gateway.wsdl_url, timeout=10).status_code == 200
    with pytest.raises(ScenarioRefused, match="wsdl"):
        control.begin_case(case, {"name": "bad", "wsdl": "maybe"})


# --- the TLS probe ------------------------------------------------------------------------------


def _connect(probe: TlsProbe, pki, *, legacy: bool = False) -> bytes | str:
    ctx = ssl.create_default_context(cafile=str(pki.tls_ca_pem))
    if legacy:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            ctx.minimum_version = ssl.TLSVersion.TLSv1_1
        ctx.set_ciphers("DEFAULT:@SECLEVEL=0")
    try:
        with ctx.wrap_socket(socket.create_connection(("127.0.0.1", probe.port), timeout=5),
                             server_hostname="127.0.0.1") as tls:
            tls.sendall(b"GET /ecdi/CISService?wsdl HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            return tls.recv(12)
    except (ssl.SSLError, OSError) as exc:
        return type(exc).__name__


@pytest.mark.parametrize("variant", ["expired", "self-signed", "wrong-host", "tls1.0", "tls1.1", "3des"])
def test_probe_refused_variants_see_no_http(pki, gateway, variant):
    probe = TlsProbe(variant, pki, gateway.endpoint_url)
    try:
        assert isinstance(_connect(probe, pki), str)
        [conn] = probe.connections()
        assert conn.http_bytes == 0 and conn.handshake in ("failed", "refused")
        assert "TLSv1.2" in conn.offered_versions and not conn.forbidden_offered
    finally:
        probe.stop()


@pytest.mark.parametrize("variant,cipher", [("ecdhe-rsa-aes128-gcm", "ECDHE-RSA-AES128-GCM-SHA256"),
                                            ("ecdhe-ecdsa-aes128-gcm", "ECDHE-ECDSA-AES128-GCM-SHA256")])
def test_probe_mandatory_suites_relay_to_the_gateway(pki, gateway, variant, cipher):
    probe = TlsProbe(variant, pki, gateway.endpoint_url)
    try:
        assert _connect(probe, pki) == b"HTTP/1.1 200"
        [conn] = probe.connections()
        assert (conn.handshake, conn.protocol, conn.cipher, conn.relayed) == ("ok", "TLSv1.2", cipher, True)
        assert conn.request_line.startswith("GET /ecdi/CISService?wsdl")
    finally:
        probe.stop()


def test_probe_records_a_legacy_client_that_completes_tls11(pki, gateway):
    probe = TlsProbe("tls1.1", pki, gateway.endpoint_url)
    try:
        _connect(probe, pki, legacy=True)
        [conn] = probe.connections()
        assert conn.handshake == "ok" and conn.protocol == "TLSv1.1" and conn.http_bytes > 0
    finally:
        probe.stop()


def test_plain_probe_records_any_octet(pki, gateway):
    probe = TlsProbe("plain", pki, gateway.endpoint_url)
    try:
        assert probe.endpoint.startswith("http://")
        with socket.create_connection(("127.0.0.1", probe.port), timeout=5) as sock:
            sock.sendall(b"POST /ecdi/CISService HTTP/1.1\r\n\r\n")
        [conn] = probe.connections()
        assert conn.http_bytes > 0 and conn.request_line == "POST /ecdi/CISService HTTP/1.1"
    finally:
        probe.stop()


def test_client_hello_parser_refuses_garbage():
    assert parse_client_hello(b"GET / HTTP/1.1\r\n") is None
    assert parse_client_hello(b"\x16\x03\x01\x00\x10\x01") is None


def test_tls_identities_are_issued_once_and_named_as_their_variant(pki):
    from cryptography import x509
    from cryptography.hazmat.primitives.asymmetric import ec

    first = {v: pki.tls_identity(v).cert.serial_number for v in pki.TLS_VARIANTS}
    assert first == {v: pki.tls_identity(v).cert.serial_number for v in pki.TLS_VARIANTS}   # reused
    wrong = pki.tls_identity("wrong-host").cert.extensions.get_extension_for_class(x509.SubjectAlternativeName)
    assert wrong.value.get_values_for_type(x509.DNSName) == ["wrong-host.ecdi.test"]
    assert pki.tls_identity("expired").cert.not_valid_after_utc < pki.start
    assert pki.tls_identity("self-signed").cert.issuer == pki.tls_identity("self-signed").cert.subject
    assert isinstance(pki.tls_identity("ecdsa").key, ec.EllipticCurvePrivateKey)
    with pytest.raises(ValueError, match="unknown TLS server variant"):
        pki.tls_identity("nope")
