"""The live page an operator watches during a manual run, rendered by headless Chromium."""

from __future__ import annotations

import re
import shutil
import subprocess

import pytest
from lxml import html

from test_gateway import USER, Client, case, client, control, gateway, pki  # noqa: F401

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"


def dump_dom(url: str, profile_dir) -> str:
    """The DOM after the page's scripts ran (virtual time: no real waiting for its polling).
    ``--ignore-certificate-errors`` stands in for importing the generated test CA into Chromium."""
    cmd = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
           "--disable-background-networking", "--disable-component-update", "--disable-sync",
           f"--user-data-dir={profile_dir}", "--ignore-certificate-errors", "--virtual-time-budget=3000",
           "--dump-dom", url]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=60).stdout


@pytest.mark.skipif(not shutil.which(CHROMIUM), reason="Chromium is not installed")
def test_live_page_shows_the_exchanges(gateway, client, control, case, tmp_path):
    control.begin_case(case, {"name": "reject-first", "rules": [{"when": {"attempt": 1}, "then": {
        "action": "reply", "function": "271", "errors": [{"code": "E9001"}]}}]})
    text = client.message()
    client.send(text)
    client.send(text)
    base = gateway.endpoint_url.rsplit("/ecdi/", 1)[0]
    dom = dump_dom(f"{base}/live?token={gateway.control_token}", tmp_path / "chromium")
    assert 'class="exchange rejected fault"' in dom and "E9001" in dom
    assert case in dom and USER in dom and "929/8" in dom
    assert '<p id="status">gateway time' in dom


@pytest.mark.skipif(not shutil.which(CHROMIUM), reason="Chromium is not installed")
@pytest.mark.parametrize("query, said", [("", "holds no control token"), ("?token=not-it", "token in this page's "
                                                                                          "address is wrong")])
def test_live_page_without_the_right_token_says_so(gateway, tmp_path, query, said):
    """The gateway is reachable: the page names the missing or wrong token, not a network failure."""
    base = gateway.endpoint_url.rsplit("/ecdi/", 1)[0]
    dom = dump_dom(f"{base}/live{query}", tmp_path / "chromium")
    status = html.fromstring(dom).get_element_by_id("status").text_content()
    assert said in status and "ecdi gateway" in status and "cannot reach" not in status
    assert 'class="exchange' not in dom


@pytest.mark.skipif(not shutil.which(CHROMIUM), reason="Chromium is not installed")
def test_live_page_shows_method_path_status_and_result_of_every_request(gateway, client, control, case, tmp_path):
    """A WSDL GET, a stray path and a malformed POST are requests too: each row names them, in one time format."""
    client.session.get(gateway.wsdl_url, timeout=10)
    base = gateway.endpoint_url.rsplit("/ecdi/", 1)[0]
    client.session.get(f"{base}/favicon.ico", timeout=10)
    client.post(b"not a SOAP envelope")
    client.send(client.message())
    url = f"{base}/live?token={gateway.control_token}"
    page = html.fromstring(dump_dom(url, tmp_path / "chromium"))
    assert page.get("lang") == "en"
    header = [th.text_content() for th in page.xpath("//table[1]//th")]
    rows = [dict(zip(header, (td.text_content() for td in tr.xpath("td")))) for tr in page.find_class("exchange")]
    shown = {(r["method"], r["path"].split("/")[-1], r["HTTP"]) for r in rows}
    assert {("GET", "CISService?wsdl", "200"), ("GET", "favicon.ico", "404"), ("POST", "CISService", "500"),
            ("POST", "CISService", "200")} <= shown
    results = {r["path"].split("/")[-1] + " " + r["HTTP"]: r["result"] for r in rows}
    assert results["favicon.ico 404"] == "Not Found" and results["CISService 500"].startswith("fault soap:Client")
    assert results["CISService 200"].startswith("29")
    assert all(re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d", r["received"]) for r in rows)
    assert not [r for r in rows if r["type/function"] == "?/?" or r["attempt"] == "0"]
    shot = tmp_path / "live.png"
    subprocess.run([CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", f"--user-data-dir={tmp_path / 'shot'}",
                    "--ignore-certificate-errors", "--virtual-time-budget=3000", "--window-size=1400,900",
                    f"--screenshot={shot}", url], capture_output=True, timeout=60)
    assert shot.exists() and shot.stat().st_size > 10_000, "a screenshot with content"


@pytest.mark.skipif(not shutil.which(CHROMIUM), reason="Chromium is not installed")
def test_live_page_shows_the_otp_mail_to_the_operator(gateway, client, control, case, pki, tmp_path):
    from test_gateway_flows import CENTRAL, declared, order_content, send

    _, number = declared(client, control)
    _, result = send(client, type_="701", office=CENTRAL, content=order_content(pki.tax_code, number))
    otp = control.latest_otp(result.payment_order_id)
    base = gateway.endpoint_url.rsplit("/ecdi/", 1)[0]
    dom = dump_dom(f"{base}/live?token={gateway.control_token}", tmp_path / "chromium")
    assert 'class="mail"' in dom and result.payment_order_id in dom and f"<td>{otp}</td>" in dom
