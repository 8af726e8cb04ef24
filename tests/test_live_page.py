"""The live page an operator watches during a manual run, rendered by headless Chromium."""

from __future__ import annotations

import shutil
import subprocess

import pytest

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
def test_live_page_without_the_token_shows_no_exchanges(gateway, tmp_path):
    base = gateway.endpoint_url.rsplit("/ecdi/", 1)[0]
    dom = dump_dom(f"{base}/live", tmp_path / "chromium")
    assert '<p id="status">cannot reach the gateway: HTTP 403' in dom and 'class="exchange' not in dom


@pytest.mark.skipif(not shutil.which(CHROMIUM), reason="Chromium is not installed")
def test_live_page_shows_the_otp_mail_to_the_operator(gateway, client, control, case, pki, tmp_path):
    from test_gateway_flows import CENTRAL, declared, order_content, send

    _, number = declared(client, control)
    _, result = send(client, type_="701", office=CENTRAL, content=order_content(pki.tax_code, number))
    otp = control.latest_otp(result.payment_order_id)
    base = gateway.endpoint_url.rsplit("/ecdi/", 1)[0]
    dom = dump_dom(f"{base}/live?token={gateway.control_token}", tmp_path / "chromium")
    assert 'class="mail"' in dom and result.payment_order_id in dom and f"<td>{otp}</td>" in dom
