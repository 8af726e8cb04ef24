"""The harness's own DTS client: what it sends to a gateway under test, and the evidence of it.

It builds request messages with the codec (Table 4-1 header, a sample's Content, signed per Table 8-1 with
an account's declarant pair from the gateway statement), posts them over HTTPS trusting the statement's
TLS anchor, and can send raw octets (malformed SOAP, another SOAPAction or Content-Type, oversized bodies)
for the framing cases. Every exchange it makes becomes a row of the harness-side evidence log, in the
format the mock gateway writes (``mock_server.evidence``: hash-chained, append-only, passwords and OTPs as
keyed fingerprints), so the report, the bundle, ``ecdi evidence verify``, ``ecdi replay`` and ``ecdi diff``
read a gateway run as they read a DTS run. It never imports the mock gateway's pipeline: the gateway under
test may be any CGW.
"""

from __future__ import annotations

import socket
import ssl
import threading
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path
from urllib.parse import urlsplit

import requests
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from lxml import etree

from ..codec import soap, xmlsig
from ..codec.envelope import Header, build_envelope, format_datetime, new_message_id, read_header
from ..codec.namespaces import ENV, SOAP, q
from ..codec.safexml import hardened_parser
from ..gateway_control import Exchange

RECEIVE_APPLICATION = "CGW"
INSTALLATION_ID = "6a1c0b7e-2d3f-4c5b-8e9a-0f1e2d3c4b5a"   # Subject/sendApplication of the harness (ENV-07)
SEND_APPLICATION = {                                        # ENV-08: the harness's own product entry
    "SendApplication/name": "ECDI-Conformance",
    "SendApplication/version": "1.0",
    "SendApplication/companyName": "ECDI Conformance harness",
    "SendApplication/companyIdentity": "0100000000",
}
UNCERTIFIED = "ECDI-0000-00000"     # ENV-08: a test CGW MUST accept it


def signer_of(account) -> xmlsig.Signer:
    """The account's declarant signing pair (certificate chain PEM + key PEM of the statement)."""
    chain = x509.load_pem_x509_certificates(Path(account.certificate).read_bytes())
    key = serialization.load_pem_private_key(Path(account.key).read_bytes(), password=None)
    return xmlsig.Signer(key, chain)


class DtsClient:
    """The harness playing the DTS against the gateway of ``statement`` for one lane's cases."""

    def __init__(self, statement, profile, evidence, *, timeout: float = 30.0, clock_offset=lambda: 0.0):
        self.statement = statement
        self.clock_offset = clock_offset     # the gateway's test clock less real time: messages are stamped by it
        self.profile = profile
        self.evidence = evidence
        self.timeout = timeout
        self.accounts = statement.accounts
        self._signers = {}
        self._attempts: dict[str, int] = {}
        self._lock = threading.Lock()
        self.session = requests.Session()
        self.session.trust_env = False                   # REQUESTS_CA_BUNDLE would override verify
        self.session.verify = str(statement.tls_anchor)

    def close(self) -> None:
        self.session.close()

    # --- messages ----------------------------------------------------------------------------
    def signer(self, account=None) -> xmlsig.Signer:
        account = account or self.accounts[0]
        if account.user not in self._signers:
            self._signers[account.user] = signer_of(account)
        return self._signers[account.user]

    def header_fields(self, *, type: str, function: str, reference: str | None = None, message_id: str | None = None,
                      issued: datetime | None = None, from_identity: str | None = None, office: str | None = None,
                      account=None) -> dict:
        """Table 4-1's fields for a request of this profile (1.1: ``certificationId`` the test value)."""
        account = account or self.accounts[0]
        payment = type in ("701", "702")
        to = self.statement.parameters["central_office"] if payment else (office or self.default_office())
        fields = {
            "procedureType": self.profile.permitted_requests[(type, function)].procedure_type,   # ENV-04
            "Reference/version": self.profile.version, "Reference/messageId": message_id or new_message_id(),
            **SEND_APPLICATION,
            "SendApplication/createMessageIssue": format_datetime(issued or self.now()),
            "From/name": "Doanh nghiệp thử nghiệm", "From/identity": from_identity or account.tax_code,
            "To/name": self.profile.offices.get(to, to), "To/identity": to,
            "Subject/type": type, "Subject/function": function,
            "Subject/reference": reference or f"HD-{new_message_id()[:8]}",
            "Subject/sendApplication": INSTALLATION_ID, "Subject/receiveApplication": RECEIVE_APPLICATION,
        }
        if self.profile.version != "1.0":
            fields["SendApplication/certificationId"] = UNCERTIFIED
        return fields

    def now(self) -> datetime:
        """The time by the gateway's clock (its test clock's offset applied, §2.1): ENV-03 is judged by it."""
        return datetime.now(timezone.utc) + timedelta(seconds=self.clock_offset())

    def default_office(self) -> str:
        offices = [o for o in self.statement.parameters["offices"] if o != self.statement.parameters["central_office"]]
        return offices[0] if offices else self.statement.parameters["central_office"]

    def message(self, content: bytes | etree._Element, *, type: str = "929", function: str = "8", account=None,
                signature_method: str = xmlsig.RSA_SHA256, digest_method: str = xmlsig.SHA256, **header) -> bytes:
        """A signed request message text with ``content`` as the Content child."""
        child = etree.fromstring(content, hardened_parser()) if isinstance(content, bytes) else content
        fields = self.header_fields(type=type, function=function, account=account, **header)
        root = build_envelope(Header(fields), child)
        return xmlsig.sign_envelope(root, self.signer(account), signature_method=signature_method,
                                    digest_method=digest_method)

    def query(self, submission_id: str, after: int = 0, *, type: str = "929", account=None) -> bytes:
        query = etree.Element(q(ENV, "Query"), nsmap={None: ENV})
        etree.SubElement(query, q(ENV, "afterSequence")).text = str(after)
        return self.message(query, type=type, function="13", reference=submission_id, account=account)

    def send_body(self, text: bytes, account=None) -> bytes:
        """The SOAP body of a well-framed ``Send`` of ``text`` (TRN-04) with the account's credentials."""
        account = account or self.accounts[0]
        return soap.send_request_body(text, account.user, account.password)

    def cdata_body(self, text: bytes, account=None) -> bytes:
        """A ``Send`` whose MessageXML holds ``text`` as one CDATA section (TRN-05: the CGW MUST accept it)."""
        from xml.sax.saxutils import escape

        account = account or self.accounts[0]
        return (b'<?xml version="1.0" encoding="utf-8"?><soap:Envelope xmlns:soap="' + SOAP.encode()
                + b'"><soap:Body><svc:Send xmlns:svc="urn:ecdi:service:1"><svc:MessageXML><![CDATA[' + text
                + b"]]></svc:MessageXML><svc:UserId>" + escape(account.user).encode() + b"</svc:UserId><svc:Password>"
                + escape(account.password).encode() + b"</svc:Password></svc:Send></soap:Body></soap:Envelope>")

    # --- the wire ----------------------------------------------------------------------------
    def send(self, case_id: str, text: bytes, *, account=None, user: str | None = None,
             password: str | None = None, body: bytes | None = None) -> Exchange:
        """Send ``text`` as a well-framed ``Send`` (TRN-03/04) with the account's credentials, or ``body``
        (the SOAP octets, e.g. MessageXML as CDATA) as given."""
        account = account or self.accounts[0]
        user = account.user if user is None else user
        password = account.password if password is None else password
        body = soap.send_request_body(text, user, password) if body is None else body
        return self.post(case_id, body, message_text=text, user_id=user, secrets=(password,))

    def post(self, case_id: str, body: bytes, *, headers: dict | None = None, path: str | None = None,
             message_text: bytes | None = None, user_id: str | None = None, secrets=()) -> Exchange:
        """POST ``body`` to the endpoint (or ``path`` on its host) with ECDI's headers unless ``headers``
        replaces them; recorded whatever happens."""
        headers = {"Content-Type": soap.CONTENT_TYPE, "SOAPAction": soap.SOAP_ACTION} if headers is None else headers
        return self._exchange(case_id, "POST", path, headers, body, message_text, user_id, secrets)

    def get(self, case_id: str, path: str) -> Exchange:
        """GET ``path`` (e.g. ``/ecdi/CISService?wsdl``) on the endpoint's host; recorded."""
        return self._exchange(case_id, "GET", path, {}, b"", None, None, ())

    # --- TLS (TRN-09) -------------------------------------------------------------------------
    def tls_offer(self, case_id: str, what: str, version: int, suites: list[int]) -> dict:
        """Offer only ``version`` and ``suites`` in a hand-written ClientHello (``tls_hello``); recorded."""
        from . import tls_hello

        parts = urlsplit(self.statement.endpoint)
        hello = tls_hello.client_hello(version, suites, parts.hostname)
        started = time.time()
        result, received = tls_hello.offer(parts.hostname, parts.port or 443, hello, timeout=self.timeout)
        self._tls_row(case_id, started, what, hello, received, result)
        return result

    def tls_session(self, case_id: str, suite: str) -> dict:
        """A TLS 1.2 handshake offering only the OpenSSL suite ``suite``, verifying the statement's anchor."""
        parts = urlsplit(self.statement.endpoint)
        context = ssl.create_default_context(cafile=str(self.statement.tls_anchor))
        context.minimum_version = context.maximum_version = ssl.TLSVersion.TLSv1_2
        started = time.time()
        try:
            context.set_ciphers(suite)
            with socket.create_connection((parts.hostname, parts.port or 443), timeout=self.timeout) as raw:
                with context.wrap_socket(raw, server_hostname=parts.hostname) as tls:
                    result = {"established": True, "version": tls.version(), "cipher": tls.cipher()[0]}
        except ssl.SSLError as exc:
            result = {"established": False, "error": f"{exc.reason or exc}"}
        except OSError as exc:
            result = {"established": False, "error": f"{type(exc).__name__}: {exc}"}
        self._tls_row(case_id, started, f"TLS 1.2 with {suite} only", b"", b"", result)
        return result

    def _tls_row(self, case_id, started, what, sent, received, result) -> None:
        self.evidence.record(dict(case_id=case_id, received_at=started, responded_at=time.time(),
                                  client="harness (playing the DTS)", method="TLS", path=what,
                                  request_headers={}, request_body=sent, response_body=received, attempt=0,
                                  gateway_verdict={"observer": "harness", "tls": result}, clock_offset=0.0))

    def _exchange(self, case_id, method, path, headers, body, message_text, user_id, secrets) -> Exchange:
        url = self.statement.endpoint if path is None else self.statement.base_url + path
        shown_path = url[len(self.statement.base_url):] or "/"
        facts = _request_facts(message_text)
        with self._lock:
            if facts.get("message_id"):
                self._attempts[facts["message_id"]] = self._attempts.get(facts["message_id"], 0) + 1
            attempt = self._attempts.get(facts.get("message_id"), 0)
        started = time.time()
        status, response_headers, response_body, error = None, {}, b"", None
        try:
            response = self.session.request(method, url, data=body or None, headers=headers, timeout=self.timeout,
                                            allow_redirects=False)
            status, response_headers, response_body = response.status_code, dict(response.headers), response.content
        except requests.RequestException as exc:
            error = f"{type(exc).__name__}: {exc}"
        ended = time.time()
        reply_text = _reply_text(status, response_body)
        reply = _reply_facts(reply_text)
        row = dict(case_id=case_id, received_at=started, responded_at=ended, client="harness (playing the DTS)",
                   method=method, path=shown_path, request_headers=dict(headers), request_body=body,
                   message_text=message_text, user_id=user_id, message_id=facts.get("message_id"),
                   type=facts.get("type"), function=facts.get("function"), reference=facts.get("reference"),
                   attempt=attempt, response_status=status, response_headers=response_headers,
                   response_body=response_body, reply_text=reply_text, reply_function=reply.get("function"),
                   reply_codes=reply.get("codes", []), rule=None,
                   gateway_verdict={"observer": "harness", **({"transport_error": error} if error else {})},
                   clock_offset=0.0)
        return self.evidence.record(row, secrets)


def _request_facts(text: bytes | None) -> dict:
    root = _tree(text)
    if root is None:
        return {}
    h = read_header(root)
    return {"message_id": h.get("Reference/messageId"), "type": h.get("Subject/type"),
            "function": h.get("Subject/function"), "reference": h.get("Subject/reference")}


def _reply_text(status: int | None, body: bytes) -> bytes | None:
    if status != 200 or not body:
        return None
    try:
        return soap.parse_send_response(body)
    except Exception:  # noqa: BLE001 — not a SendResponse: the cases judge the raw body (TRN-06)
        return None


def _reply_facts(text: bytes | None) -> dict:
    root = _tree(text)
    if root is None:
        return {}
    codes = [c.text or "" for c in root.iter(q(ENV, "code"))]
    return {"function": read_header(root).get("Subject/function"), "codes": codes}


def _tree(text: bytes | None):
    if not text:
        return None
    try:
        return etree.fromstring(text, hardened_parser())
    except etree.XMLSyntaxError:
        return None
