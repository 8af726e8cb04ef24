"""``ecdi gateway``: standalone start-up prints what a tester configures, serves, stops on Ctrl-C."""

from __future__ import annotations

import re
import signal
import subprocess
import sys

import requests

from conformance.cli import main


def standalone(pki_dir, folder, *options: str) -> tuple[subprocess.Popen, str]:
    """``ecdi gateway`` in a subprocess on a free port, and what it printed up to "ready"."""
    proc = subprocess.Popen([sys.executable, "-m", "conformance.cli", "gateway", "--port", "0", "--pki-dir",
                             str(pki_dir), "--dir", str(folder), *options],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    lines = []
    while not lines or not lines[-1].startswith("ready"):
        line = proc.stdout.readline()
        if not line:
            proc.kill()
            raise AssertionError(proc.stderr.read())
        lines.append(line.strip())
    return proc, "\n".join(lines)


def test_gateway_prints_its_settings_serves_the_wsdl_and_stops_on_ctrl_c(pki_dir, tmp_path):
    proc, text = standalone(pki_dir, tmp_path, "--time-scale", "0.1")
    try:
        wsdl = re.search(r"WSDL:\s+(\S+)", text).group(1)
        ca = re.search(r"TLS trust anchor to import \(test CA\): (\S+)", text).group(1)
        assert re.search(r"account: UserId nguoikhai  password: \S{12,}", text)
        assert "cgw_sign_anchor" in text and "/live?token=" in text
        session = requests.Session()
        session.trust_env = False
        response = session.get(wsdl, verify=ca, timeout=10)
        session.close()
        assert response.status_code == 200 and b"wsdl:definitions" in response.content
    finally:
        proc.send_signal(signal.SIGINT)
        out, _ = proc.communicate(timeout=60)
    assert proc.returncode == 0 and "gateway stopped" in out


def test_bad_options_are_one_clear_line(capsys):
    assert main(["gateway", "--profile", "ecdi-7"]) == 2
    assert "no such profile" in capsys.readouterr().err
    assert main(["gateway", "--time-scale", "2"]) == 2
    assert "--time-scale" in capsys.readouterr().err


def test_a_port_in_use_is_one_clear_line(pki_dir, tmp_path, capsys):
    import socket

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        assert main(["gateway", "--port", str(port), "--pki-dir", str(pki_dir), "--dir", str(tmp_path)]) == 2
    assert "could not start" in capsys.readouterr().err
