"""ECDI namespaces (spec §4.1)."""

ENV = "urn:ecdi:envelope:1"
DEC = "urn:ecdi:declaration:1"
PAY = "urn:ecdi:payment:1"
DS = "http://www.w3.org/2000/09/xmldsig#"
SVC = "urn:ecdi:service:1"
SOAP = "http://schemas.xmlsoap.org/soap/envelope/"


def q(ns: str, local: str) -> str:
    """Clark notation ``{ns}local`` as lxml wants it."""
    return f"{{{ns}}}{local}"
