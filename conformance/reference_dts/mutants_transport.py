"""Mutants of the transport cases (see ``mutants.py`` for what a mutant is): one hook override each."""

from __future__ import annotations

import base64
import copy
import ssl
import warnings

from lxml import etree

from ..codec import soap
from ..codec.namespaces import SVC
from .dts import ReferenceDTS, _Stop
from .mutants import MUTANTS, Mutant
from .transport import RETRYABLE, AttemptOutcome, TlsSettings


class SkipsTlsHostCheck(ReferenceDTS):
    def tls_settings(self) -> TlsSettings:
        return TlsSettings(check_host=False)       # TRN-10: any certificate under the anchor, whatever its host


class AcceptsTls11(ReferenceDTS):
    def tls_settings(self) -> TlsSettings:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            oldest = ssl.TLSVersion.TLSv1_1        # TRN-09: "for old gateways", with the legacy cipher list
        return TlsSettings(minimum_version=oldest, ciphers="DEFAULT:@SECLEVEL=0")


class UpgradesHttpEndpoint(ReferenceDTS):
    def usable_endpoint(self, endpoint: str) -> str:
        if endpoint.startswith("http://"):         # TRN-10: silently "fixes" http:// instead of refusing it
            endpoint = "https://" + endpoint[len("http://"):]
        return super().usable_endpoint(endpoint)


class BasicAuthHeader(ReferenceDTS):
    def soap_headers(self) -> dict[str, str]:
        token = base64.b64encode(f"{self.config.user_id}:{self.config.password}".encode()).decode()
        return {**super().soap_headers(), "Authorization": f"Basic {token}"}   # TRN-11: credentials in a header


class MessageXmlAsElements(ReferenceDTS):
    def send_body(self, text: bytes, user_id: str, password: str) -> bytes:
        envelope = etree.fromstring(soap.send_request_body(b"", user_id, password))
        holder = envelope.find(f".//{{{SVC}}}MessageXML")
        holder.text = None
        holder.append(etree.fromstring(text))      # TRN-05: the message as child elements, not escaped text
        return etree.tostring(envelope, xml_declaration=True, encoding="UTF-8")


class NeedsWsdl(ReferenceDTS):
    def service_description(self) -> None:
        import requests                            # TRN-02: refuses to send unless ?wsdl can be fetched
        try:
            status = requests.get(self.config.endpoint + "?wsdl", verify=str(self.config.tls_ca_pem), timeout=10,
                                  allow_redirects=False).status_code
        except requests.RequestException as exc:
            status = str(exc)
        if status != 200:
            raise _Stop("local-error", "local-error", "TRN-02",
                        f"The gateway's service description could not be loaded ({status}). Nothing was sent.")


class RetriesClientErrors(ReferenceDTS):
    def response_outcome(self, status: int, headers, body: bytes, now) -> AttemptOutcome:
        outcome = super().response_outcome(status, headers, body, now)
        if 300 <= status < 500:                    # REL-04: 3xx and 4xx taken for transient failures
            return AttemptOutcome(RETRYABLE, f"http-{status}", outcome.detail, status)
        return outcome



MUTANTS.update({m.name: m for m in [
    Mutant("skips-tls-host-check", "accepts a TLS certificate under the anchor whatever host it names",
           ["TRN-10"], "transport.refuses-untrusted-tls", SkipsTlsHostCheck),
    Mutant("accepts-tls-1-1", "negotiates TLS 1.1 (and the legacy cipher list) with an old server",
           ["TRN-09"], "transport.tls-versions-and-suites", AcceptsTls11),
    Mutant("upgrades-http-endpoint", "turns an http:// cgw_endpoint into https:// instead of refusing it",
           ["TRN-10"], "transport.https-only", UpgradesHttpEndpoint),
    Mutant("basic-auth-header", "also sends the credentials in an HTTP Basic Authorization header",
           ["TRN-11"], "transport.credentials-only-in-body", BasicAuthHeader),
    Mutant("message-xml-as-elements", "puts the message text into MessageXML as child elements, not escaped",
           ["TRN-05"], "transport.message-text-escaped", MessageXmlAsElements),
    Mutant("needs-wsdl", "fetches the WSDL before sending and sends nothing when it cannot",
           ["TRN-02"], "transport.wsdl-not-needed", NeedsWsdl),
    Mutant("retries-client-errors", "retransmits after an HTTP 3xx or 4xx as if it were transient",
           ["REL-04"], "transport.final-outcomes-not-retransmitted", RetriesClientErrors),
]})


# --- mutants for requirements no earlier mutant broke (TRN-01, TRN-04, TRN-14) ----------------------

class SendChildrenReordered(ReferenceDTS):
    def send_body(self, text: bytes, user_id: str, password: str) -> bytes:
        root = etree.fromstring(super().send_body(text, user_id, password))
        send = root.find(f".//{{{SVC}}}Send")
        send.append(send[0])                # TRN-04: UserId, Password, MessageXML — not the order of §3
        return etree.tostring(root, xml_declaration=True, encoding="utf-8")


class TwoSendsPerRequest(ReferenceDTS):
    def send_body(self, text: bytes, user_id: str, password: str) -> bytes:
        root = etree.fromstring(super().send_body(text, user_id, password))
        send = root.find(f".//{{{SVC}}}Send")
        send.addnext(copy.deepcopy(send))   # TRN-14: the same Send twice in one HTTP request
        return etree.tostring(root, xml_declaration=True, encoding="utf-8")


class TrailingSlashPath(ReferenceDTS):
    def usable_endpoint(self, endpoint: str) -> str:
        return super().usable_endpoint(endpoint).rstrip("/") + "/"   # TRN-01: the path is /ecdi/CISService


MUTANTS.update({m.name: m for m in [
    Mutant("send-children-reordered", "puts MessageXML after UserId and Password in the Send element",
           ["TRN-04"], "transport.valid-declaration-accepted", SendChildrenReordered),
    Mutant("two-sends-per-request", "repeats the Send element in the SOAP body of every request",
           ["TRN-14"], "transport.message-text-escaped", TwoSendsPerRequest),
    Mutant("trailing-slash-path", "posts to cgw_endpoint with a trailing slash (/ecdi/CISService/)",
           ["TRN-01"], "transport.valid-declaration-accepted", TrailingSlashPath),
]})
