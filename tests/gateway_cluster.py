"""Two ``ecdi gateway --database`` processes behind HAProxy (docs/deployment/haproxy.cfg), for the tests and
the benchmark: each a real process that can be killed, the balancer a real HAProxy with the sample file."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

HAPROXY_CFG = Path(__file__).resolve().parent.parent / "docs" / "deployment" / "haproxy.cfg"
USER, PASSWORD = "nguyenvana", "Mật-khẩu 1"
TOKEN = "cluster-test-token-0123456789"


class Unavailable(Exception):
    pass


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def haproxy() -> str:
    found = shutil.which("haproxy") or ("/usr/sbin/haproxy" if os.access("/usr/sbin/haproxy", os.X_OK) else None)
    if not found:
        raise Unavailable("haproxy is not installed (.ci/run installs it)")
    return found


class GatewayProcess:
    def __init__(self, url: str | None, pki_dir: Path, folder: Path, port: int, public_url: str | None,
                 time_scale: float, *extra: str):
        """``url`` None: the embedded default (SQLite files in ``folder``)."""
        self.port, self.folder = port, folder
        folder.mkdir(parents=True, exist_ok=True)
        args = [sys.executable, "-m", "conformance.cli", "gateway", "--port", str(port),
                "--pki-dir", str(pki_dir), "--dir", str(folder), "--user", USER, "--password", PASSWORD,
                "--time-scale", f"{time_scale:g}", *(["--database", url] if url else []), *extra]
        if public_url:
            args += ["--public-url", public_url]
        self.log = open(folder / "gateway.log", "wb")
        self.process = subprocess.Popen(args, stdout=self.log, stderr=subprocess.STDOUT,
                                        env={**os.environ, "ECDI_CONTROL_TOKEN": TOKEN})

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.port}"

    def wait_ready(self, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            text = (self.folder / "gateway.log").read_bytes()
            if b"ready" in text:
                return
            if self.process.poll() is not None:
                raise RuntimeError(f"gateway on {self.port} ended: {text.decode(errors='replace')[-2000:]}")
            time.sleep(0.1)
        raise RuntimeError(f"gateway on {self.port} not ready in {timeout} s")

    def kill(self) -> None:
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(10)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)
        self.log.close()


class Balanced:
    """HAProxy on a free port in front of gateway processes on two others."""

    def __init__(self, url: str, pki_dir: Path, folder: Path, *, time_scale: float = 0.05):
        self.database = url
        self.port = free_port()
        ports = [free_port(), free_port()]
        self.gateways = [GatewayProcess(url, pki_dir, folder / f"gw{i + 1}", port, self.url, time_scale)
                         for i, port in enumerate(ports)]
        self._lb_log = open(folder / "haproxy.log", "wb")
        env = {**os.environ, "ECDI_LB_BIND": f"127.0.0.1:{self.port}",
               "ECDI_GW1": f"127.0.0.1:{ports[0]}", "ECDI_GW2": f"127.0.0.1:{ports[1]}"}
        self.balancer = None
        try:
            for gw in self.gateways:
                gw.wait_ready()
            self.balancer = subprocess.Popen([haproxy(), "-f", str(HAPROXY_CFG), "-db"], stdout=self._lb_log,
                                             stderr=subprocess.STDOUT, env=env)
            self._wait_port(self.port)
        except BaseException:
            self.stop()
            raise

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.port}"

    def _wait_port(self, port: int, timeout: float = 10) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
                return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError(f"haproxy did not listen on {port}")

    def stop(self) -> None:
        if self.balancer is not None and self.balancer.poll() is None:
            self.balancer.terminate()
            self.balancer.wait(10)
        for gw in self.gateways:
            gw.stop()
        self._lb_log.close()
