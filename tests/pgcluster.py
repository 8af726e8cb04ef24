"""A throw-away PostgreSQL cluster for the tests and the benchmark: initdb in a temp folder, a free
port, its unix socket in that folder, stopped (and removed) at the end.

The distribution's binaries (Debian: ``/usr/lib/postgresql/<v>/bin``, installed by ``.ci/run``) are
found on PATH or there. PostgreSQL refuses to run as root: under root the server runs as the
``postgres`` user (created by the package), and the folder is given to it.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import uuid
from pathlib import Path


class Unavailable(Exception):
    """PostgreSQL cannot be started here (the reason is the message)."""


def _bin(name: str) -> str:
    found = shutil.which(name)
    if found:
        return found
    candidates = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"), reverse=True)
    if candidates:
        return candidates[0]
    raise Unavailable(f"{name} not found (install the postgresql package; .ci/run does)")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Cluster:
    def __init__(self, *, durable: bool = False):
        self.folder = Path(tempfile.mkdtemp(prefix="ecdi-pg-"))
        self.data = self.folder / "data"
        self.port = _free_port()
        self._durable = durable
        self._user: list[str] = []
        if os.geteuid() == 0:
            try:
                pw = pwd.getpwnam("postgres")
            except KeyError:
                raise Unavailable("running as root and there is no postgres user to run the server") from None
            os.chown(self.folder, pw.pw_uid, pw.pw_gid)
            self.folder.chmod(0o755)
            self._user = [shutil.which("runuser") or "runuser", "-u", "postgres", "--"]

    @property
    def url(self) -> str:
        return f"postgresql://postgres@/ecdi?host={self.folder}&port={self.port}"

    def database_url(self, name: str) -> str:
        return f"postgresql://postgres@/{name}?host={self.folder}&port={self.port}"

    def _run(self, *cmd: str, timeout: float = 60) -> None:
        done = subprocess.run([*self._user, *cmd], capture_output=True, text=True, timeout=timeout)
        if done.returncode != 0:
            raise Unavailable(f"{Path(cmd[0]).name} failed: {(done.stderr or done.stdout).strip()[-500:]}")

    def start(self) -> "Cluster":
        if not self.data.exists():
            self._run(_bin("initdb"), "-D", str(self.data), "-U", "postgres", "--auth=trust", "-E", "UTF8",
                      "--no-instructions")
        options = f"-p {self.port} -k {self.folder} -c listen_addresses='' -c max_connections=200"
        if not self._durable:             # a test cluster: a crash loses it anyway
            options += " -c fsync=off -c synchronous_commit=off -c full_page_writes=off"
        self._run(_bin("pg_ctl"), "-D", str(self.data), "-o", options, "-l", str(self.folder / "log"), "-w",
                  "-t", "30", "start")
        return self

    def stop(self, mode: str = "fast") -> None:
        self._run(_bin("pg_ctl"), "-D", str(self.data), "-m", mode, "-w", "stop")

    def create_database(self, name: str | None = None) -> str:
        """A fresh, empty database; returns its URL."""
        import psycopg

        name = name or "ecdi_" + uuid.uuid4().hex[:12]
        with psycopg.connect(self.database_url("postgres"), autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return self.database_url(name)

    def remove(self) -> None:
        try:
            self.stop("immediate")
        except Unavailable:
            pass
        shutil.rmtree(self.folder, ignore_errors=True)


def start_cluster(**kwargs) -> Cluster:
    """A running cluster, or ``Unavailable`` saying why not."""
    try:
        import psycopg  # noqa: F401
    except ImportError:
        raise Unavailable("psycopg is not installed (pip install 'psycopg[binary]')") from None
    cluster = Cluster(**kwargs)
    try:
        return cluster.start()
    except BaseException:
        shutil.rmtree(cluster.folder, ignore_errors=True)
        raise
