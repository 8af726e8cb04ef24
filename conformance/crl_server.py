"""The CRL distribution point the test certificates name, served over plain HTTP on loopback (SIG-12).

SIG-12 wants the DTS to check the issuing CA's CRL "when that CRL is reachable at signing time", so the
harness makes it reachable where a product looks for it: at the URL in the certificate,
``http://127.0.0.1:<crl_port>/crl/<name>.crl`` (``TestPKI.crl_url``). ``GET /crl/<name>.crl`` answers the
file of that name in the PKI folder as it is at that moment (a revocation added by a concurrent run is
served at once); anything else is 404.

Every run sharing a PKI folder serves the same files on the folder's one port: the listening socket is
bound with SO_REUSEPORT, so concurrent runs (pytest-xdist workers) each hold a listener and the port
stays served as long as any of them runs. A port held by some other program is not this harness's to
take: ``start`` then reports the cause and the revocation findings are INCONCLUSIVE (``problem``).
"""

from __future__ import annotations

import re
import threading
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

_NAME = re.compile(r"/crl/([A-Za-z0-9][A-Za-z0-9._-]{0,99}\.crl)")


class _Server(ThreadingHTTPServer):
    allow_reuse_address = True
    allow_reuse_port = True        # every run of the PKI folder listens on the folder's port
    daemon_threads = True


class CrlServer:
    """Serves ``<folder>/<name>.crl`` at ``http://127.0.0.1:<port>/crl/<name>.crl`` in a thread."""

    def __init__(self, folder: Path, port: int, host: str = "127.0.0.1"):
        self.folder, self.port, self.host = Path(folder), port, host
        self.fetches: list[str] = []          # paths requested of this listener, for the run log
        self._server: _Server | None = None

    def start(self) -> str | None:
        """Listen; None when serving, else why the CRL cannot be served (the port held by another program)."""
        folder, fetches = self.folder, self.fetches

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - http.server's name
                fetches.append(self.path)
                match = _NAME.fullmatch(self.path.split("?")[0])
                try:
                    body = (folder / match.group(1)).read_bytes() if match else None
                except OSError:
                    body = None
                if body is None:
                    self.send_error(404, "no such CRL")
                    return
                self.send_response(200)
                self.send_header("Content-Type", "application/pkix-crl")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format, *args) -> None:  # noqa: A002 - quiet: the run log is the evidence
                pass

        try:
            self._server = _Server((self.host, self.port), Handler)
        except OSError as exc:
            return f"the harness cannot serve the CRL on {self.host}:{self.port}: {exc.strerror or exc}"
        # a short poll: stop() waits for it, at the end of every run (the self-tests make ~100 runs)
        threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05},
                         name=f"crl-server-{self.port}", daemon=True).start()
        return None

    def verify(self, url: str, expected: Path) -> str | None:
        """None if ``url`` answers the octets of ``expected`` now, else why not: what the port answers
        may be another program's, so the harness checks before judging a product by it."""
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        try:
            before = expected.read_bytes()
            with opener.open(url, timeout=5) as resp:
                body = resp.read()
            after = expected.read_bytes()          # a concurrent run may have revoked one more meanwhile
        except OSError as exc:
            return f"the CRL at {url} cannot be fetched: {getattr(exc, 'reason', None) or exc}"
        if body not in (before, after):
            return f"{url} does not answer the harness's CRL ({len(body)} octets, not those of {expected.name})"
        return None

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
