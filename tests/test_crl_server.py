"""The CRL distribution point the harness serves on loopback (SIG-12), and the PKI folder's CRL port."""

from __future__ import annotations

import shutil
import socket
import urllib.error
import urllib.request

import pytest
from cryptography import x509

from conformance import pki_matrix
from conformance.codec import certs
from conformance.crl_server import CrlServer
from conformance.pki import CRL_PORT_ENV, TestPKI

_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def fetch(url: str) -> bytes:
    with _OPENER.open(url, timeout=5) as resp:
        return resp.read()


@pytest.fixture(scope="module")
def pki(tmp_path_factory) -> TestPKI:
    return TestPKI.ensure(tmp_path_factory.mktemp("crl") / "pki")


@pytest.fixture
def server(pki):
    srv = CrlServer(pki.folder, pki.crl_port)
    assert srv.start() is None
    yield srv
    srv.stop()


def test_the_distribution_point_of_the_revoked_certificate_answers_a_crl_that_lists_it(pki, server):
    revoked = pki_matrix.identity(pki, pki_matrix.BY_NAME["revoked"]).cert
    [url] = certs.crl_urls(revoked)
    crl = x509.load_der_x509_crl(fetch(url))
    assert crl.get_revoked_certificate_by_serial_number(revoked.serial_number) is not None
    assert certs.revoked(revoked, [crl], issuer=pki.declarant_ca)
    assert server.verify(url, pki.crl_der) is None


def test_other_paths_are_not_found(pki, server):
    for path in ("/crl/rogue-ca.crl", "/crl/../pki.json", "/private/declarant-ca.key.pem", "/"):
        with pytest.raises(urllib.error.HTTPError) as info:
            fetch(f"http://127.0.0.1:{pki.crl_port}{path}")
        assert info.value.code == 404


def test_runs_sharing_a_pki_folder_share_its_port_and_one_stopping_leaves_it_served(pki, server):
    other = CrlServer(pki.folder, pki.crl_port)
    assert other.start() is None
    server.stop()
    assert fetch(pki.crl_url) == pki.crl_der.read_bytes()
    other.stop()


def test_a_port_held_by_another_program_is_reported_not_taken(pki, tmp_path):
    with socket.socket() as foreign:
        foreign.bind(("127.0.0.1", 0))
        foreign.listen()
        srv = CrlServer(pki.folder, foreign.getsockname()[1])
        problem = srv.start()
    assert problem and "cannot serve the CRL" in problem


def test_verify_names_a_port_that_answers_something_else(pki, server, tmp_path):
    other = tmp_path / "declarant-ca.crl"
    other.write_bytes(b"not this harness's CRL")
    assert "does not answer the harness's CRL" in server.verify(pki.crl_url, other)
    server.stop()
    assert "cannot be fetched" in server.verify(pki.crl_url, pki.crl_der)


def test_the_port_is_kept_across_regeneration_and_can_be_fixed(pki, tmp_path, monkeypatch):
    folder = tmp_path / "pki"
    shutil.copytree(pki.folder, folder)
    assert TestPKI.ensure(folder, tax_code="0301111111").crl_port == pki.crl_port    # regenerated, same port
    monkeypatch.setenv(CRL_PORT_ENV, "24999")
    fixed = TestPKI.ensure(folder)
    assert fixed.crl_port == 24999 and certs.crl_urls(fixed.declarant.cert) == ["http://127.0.0.1:24999/crl/declarant-ca.crl"]
    monkeypatch.setenv(CRL_PORT_ENV, "http")
    with pytest.raises(ValueError, match=CRL_PORT_ENV):
        TestPKI.ensure(folder)
